"""The GPU comparison's parts that run without a GPU: the NDS job writer, the stand-ins, the run machinery."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backend.io.detect import load_any
from backend.io.job import load_job
from scenegen import render_job_subprocess

ROOT = Path(__file__).resolve().parents[1]
GPU = ROOT / "benchmarks" / "gpu"


def load_shim(name: str):
    """A stand-in module loaded from its file (the real package may be installed here)."""
    path = GPU / "shims" / name / "__init__.py"
    if not path.is_file():
        path = GPU / "shims" / f"{name.replace('.', '/')}.py"
    spec = importlib.util.spec_from_file_location(f"shim_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def nds_job(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 4-view Cycles job and its NDS-layout copy."""
    base = tmp_path_factory.mktemp("gpu_scripts")
    job = render_job_subprocess(base / "job", n_views=4, resolution=(64, 48), samples=2)
    subprocess.run([sys.executable, str(GPU / "make_nds_job.py"), str(job), str(base / "nds")], check=True,
                   cwd=ROOT, capture_output=True)
    return job, base / "nds"


def test_nds_copy_reads_like_the_job(nds_job: tuple[Path, Path]) -> None:
    job, nds = nds_job
    a, b = load_job(job), load_any(nds)
    assert (nds / "reference.obj").is_file() and (nds / "bbox.txt").is_file()
    assert [v.name for v in a.views] == [v.name for v in b.views]
    for va, vb in zip(a.views, b.views):
        np.testing.assert_allclose(va.K, vb.K, rtol=1e-12)
        np.testing.assert_allclose(va.R, vb.R, atol=1e-12)
        np.testing.assert_allclose(va.t, vb.t, atol=1e-12)
        assert (va.mask == vb.mask).all()
    np.testing.assert_allclose(np.loadtxt(nds / "bbox.txt"), np.array(a.bbox), atol=1e-12)


def test_cv2_stand_in_decomposes_like_opencv() -> None:
    cv2 = load_shim("cv2")
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    rot = q * np.sign(np.linalg.det(q))
    k = np.array([[1500.0, 0.5, 810.0], [0, 1490.0, 590.0], [0, 0, 1]])
    t = np.array([0.2, -0.1, 3.0])
    p = 0.37 * np.hstack([k @ rot, (k @ t)[:, None]])
    k2, r2, c, *_ = cv2.decomposeProjectionMatrix(p)
    np.testing.assert_allclose(k2 / k2[2, 2], k, atol=1e-9)
    np.testing.assert_allclose(r2, rot, atol=1e-12)
    np.testing.assert_allclose(-r2 @ (c[:3, 0] / c[3, 0]), t, atol=1e-12)
    img = rng.uniform(size=(6, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(cv2.resize(img, (8, 6)), img, atol=1e-6)
    half = cv2.resize(img, (4, 3))
    np.testing.assert_allclose(half[0, 0], img[:2, :2].mean((0, 1)), atol=1e-6)


def test_pyplot_stand_in_saves_images(tmp_path: Path) -> None:
    plt = load_shim("matplotlib.pyplot")
    fig, axs = plt.subplots(2, 2)
    axs[0][1].imshow(np.zeros((2, 2)))
    axs.flatten()[3].axis("off")
    plt.savefig(tmp_path / "nothing.png")
    plt.close(fig)
    plt.imsave(tmp_path / "img.png", np.full((4, 5, 3), 0.5))
    from PIL import Image
    assert Image.open(tmp_path / "img.png").size == (5, 4) and not (tmp_path / "nothing.png").exists()


def test_cpu_smoke_run_through_the_comparison(nds_job: tuple[Path, Path], tmp_path: Path) -> None:
    """Ours on the CPU through compare_gpu.py's run machinery: JSON with stages and metrics, and the table PNG."""
    _, nds = nds_job
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(GPU / "compare_gpu.py"), "--device", "cpu", "--runs", "torch",
                           "--iterations", "10", "--job", str(nds), "--out", str(out), "--work", str(tmp_path / "w"),
                           "--timeout", "400"], cwd=ROOT, capture_output=True, text=True, timeout=500)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads((out / "compare_gpu.json").read_text())
    run = report["runs"][0]
    assert run["status"] == "ok" and run["name"] == "torch"
    assert run["stages"]["rasterizer"] == "torch" and run["stages"]["timings"]["optimize"] > 0
    assert 0 < run["metrics"]["chamfer_l1_norm"] < 0.2 and run["metrics"]["faces"] > 100
    assert (out / "compare_gpu.png").stat().st_size > 1000 and (out / "compare_torch.log").is_file()
