"""nvdiffrast set-up on CPU: the plugin import fix, the auto fallback with its reason, and `check`.

No GPU here, so the failures are the real ones this machine gives (nvdiffrast missing or no CUDA), and
the plugin build is simulated by putting a module where torch's cpp_extension would build it.
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from backend.cli import check_exit_code
from backend.raster import TorchRasterizer, auto_rasterizer, get_rasterizer
from backend.raster.nvdiffrast_raster import load_built_plugin, make_plugin_importable, plugin_build_dir, plugin_name
from backend.raster.probe import probe
from backend.raster.self_test import covers_centre

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def ext_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """TORCH_EXTENSIONS_DIR in a temporary folder; sys.path restored afterwards."""
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "ext"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    return tmp_path / "ext"


def test_plugin_name_is_the_one_nvdiffrast_imports() -> None:
    """The name in the issue's error message, from diffrp-nvdiffrast 0.3.3.1 with torch 2.11.0+cu130."""
    assert plugin_name("0.3.3.1", "2.11.0+cu130") == "nvdiffrast_plugin_0_3_3_1_torch2_11_0_cu130"


def test_built_plugin_becomes_importable(ext_dir: Path) -> None:
    """Simulated failure: the plugin is built but its folder is off sys.path, so import by name fails."""
    name = plugin_name("0.0.0.test", torch.__version__)
    folder = plugin_build_dir(name)
    assert folder.is_relative_to(ext_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text("RASTERIZE = 'ok'\n")
    importlib.invalidate_caches()
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(name)
    assert make_plugin_importable(name) == folder
    try:
        assert importlib.import_module(name).RASTERIZE == "ok"
    finally:
        sys.modules.pop(name, None)


def test_built_library_is_loaded_directly(ext_dir: Path) -> None:
    """The second remedy: a compiled extension in the build folder is loaded into sys.modules by name."""
    candidates = ("xxlimited", "_testbuffer", "_lsprof", "_bisect", "_csv", "mmap", "_queue")
    specs = [importlib.util.find_spec(n) for n in candidates if n not in sys.modules]
    spec = next(s for s in specs if s is not None and s.origin and s.origin.endswith(".so"))
    folder = plugin_build_dir(spec.name)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(spec.origin, folder / f"{spec.name}.so")
    try:
        assert load_built_plugin(spec.name)
        assert sys.modules[spec.name].__file__ == str(folder / f"{spec.name}.so")
        assert not load_built_plugin(spec.name)
    finally:
        sys.modules.pop(spec.name, None)


def test_auto_falls_back_with_the_reason() -> None:
    """nvdiffrast cannot run here (missing, or no CUDA): auto gives ours and says why, to warn too."""
    seen: list[str] = []
    r = auto_rasterizer(torch.device("cpu"), warn=seen.append)
    assert isinstance(r, TorchRasterizer)
    assert r.fallback_reason and r.fallback_reason.startswith("nvdiffrast unusable")
    assert ("diffrp-nvdiffrast" in r.fallback_reason) or ("needs a CUDA device" in r.fallback_reason)
    assert seen == [r.fallback_reason]
    assert covers_centre(r)
    assert get_rasterizer("auto", "cpu").fallback_reason is None


def test_probe_says_why_a_rasterizer_does_not_render() -> None:
    assert probe("torch", "cpu") is None
    reason = probe("nvdiffrast", "cpu")
    assert reason and "RasterizerUnavailable" in reason


def test_check_strict_exit_codes() -> None:
    good = {"ok": True, "rasterizers": {"torch": True, "nvdiffrast": False}, "rasterizer_device": "cpu",
            "nvdiffrast_installed": False}
    assert check_exit_code(good, strict=True) == 0
    broken = {**good, "rasterizer_device": "cuda", "nvdiffrast_installed": True}
    assert check_exit_code(broken, strict=True) == 1 and check_exit_code(broken, strict=False) == 0
    assert check_exit_code({"ok": False}, strict=True) == 1


def test_check_command_renders() -> None:
    proc = subprocess.run([sys.executable, "-m", "backend", "check", "--strict"], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["rasterizers"]["torch"] is True and info["auto_rasterizer"] == "torch"
    assert info["rasterizer_device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    if not info["nvdiffrast_installed"]:
        assert info["rasterizers"]["nvdiffrast"] is False and "nvdiffrast" not in info["rasterizer_errors"]
