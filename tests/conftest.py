"""Shared pytest set-up: repository root on sys.path, GPU marker skipping."""
from __future__ import annotations

import os
import sys
from pathlib import Path

# Idle OpenMP threads of torch sleep instead of spinning (they starve numba's threads otherwise).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_MESHES = ROOT.parent / "shared" / "meshes"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip `gpu` tests cleanly on machines without CUDA."""
    if _cuda_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_meshes() -> Path:
    """Folder of the shared test meshes; tests that need it skip when it is absent."""
    if not SHARED_MESHES.is_dir():
        pytest.skip(f"{SHARED_MESHES} not present")
    return SHARED_MESHES


@pytest.fixture(scope="session")
def photo_capture(tmp_path_factory, shared_meshes) -> Path:
    """A phone-like Cycles capture (RGB JPEGs, truth apart): Spot on a textured table, 20 photos on two rings at
    480x360; rendered once per session for the photos tests of the backend and the add-on."""
    from scenegen.api import render_capture_subprocess

    return render_capture_subprocess(tmp_path_factory.mktemp("capture"), mesh=str(shared_meshes / "spot.obj"),
                                     n_photos=20, rings=2, resolution=(480, 360), samples=8, seed=1)


_EXIT_STATUS: list[int] = [0]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remember the run's exit status for pytest_unconfigure."""
    _EXIT_STATUS[0] = int(exitstatus)


def pytest_unconfigure(config: pytest.Config) -> None:
    """bpy 4.2 as a module segfaults in interpreter teardown once an operator was registered: leave first."""
    bpy = sys.modules.get("bpy")
    if bpy is not None and tuple(bpy.app.version[:2]) == (4, 2):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS[0])
