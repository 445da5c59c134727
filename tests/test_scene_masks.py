"""Automatic masks for a job whose images have no alpha and no mask files: a Cycles render composited onto a
busy background, its alpha kept apart as the truth; `fill_missing_masks` and `reconstruct` on it."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from backend.capture.scene_masks import fill_missing_masks
from backend.io.detect import load_any
from backend.runtime.protocol import Reporter

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rgb_job(tmp_path_factory) -> tuple[Path, dict[str, np.ndarray]]:
    """16 Cycles views of Suzanne as RGB-only PNGs over per-view random colour noise; the true masks by name."""
    from scenegen import render_job_subprocess

    rendered = render_job_subprocess(tmp_path_factory.mktemp("rgba") / "job", mesh="suzanne", n_views=16,
                                     resolution=200, samples=4)
    job = tmp_path_factory.mktemp("rgb") / "job"
    (job / "images").mkdir(parents=True)
    spec = json.loads((rendered / "job.json").read_text())
    rng = np.random.default_rng(0)
    truth = {}
    for view in spec["views"]:
        rgba = cv2.imread(str(rendered / view["image"]), cv2.IMREAD_UNCHANGED)
        h, w = rgba.shape[:2]
        background = cv2.resize(rng.uniform(0, 255, (h // 4 + 1, w // 4 + 1, 3)).astype(np.float32), (w, h),
                                interpolation=cv2.INTER_CUBIC)
        alpha = rgba[:, :, 3:4].astype(np.float32) / 255.0
        rgb = np.clip(rgba[:, :, :3] * alpha + background * (1 - alpha), 0, 255).astype(np.uint8)
        cv2.imwrite(str(job / view["image"]), rgb)
        truth[view["name"]] = rgba[:, :, 3] > 127
    (job / "job.json").write_text(json.dumps(spec))
    (job / "reference.obj").write_bytes((rendered / "reference.obj").read_bytes())
    return job, truth


def mean_iou(scene, truth: dict[str, np.ndarray]) -> float:
    """Mean intersection over union of the scene's masks with the true ones."""
    scores = [float((v.mask & truth[v.name]).sum() / max((v.mask | truth[v.name]).sum(), 1)) for v in scene.views]
    return float(np.mean(scores))


def quiet_reporter() -> Reporter:
    """A reporter whose protocol lines go nowhere."""
    return Reporter(open("/dev/null", "w"), json_mode=True)


def reference_points(job: Path, n: int = 3000) -> np.ndarray:
    """n vertices of the rendered mesh: stand-in sparse points of a structure-from-motion model."""
    vertices = np.array([[float(x) for x in line.split()[1:4]] for line in (job / "reference.obj").read_text()
                         .splitlines() if line.startswith("v ")])
    return vertices[np.random.default_rng(0).choice(len(vertices), min(n, len(vertices)), replace=False)]


def test_views_load_without_masks(rgb_job) -> None:
    job, _ = rgb_job
    scene = load_any(job)
    assert all(v.mask is None for v in scene.views)


def test_masks_from_the_bbox_match_the_alpha(rgb_job) -> None:
    job, truth = rgb_job
    scene = load_any(job)
    warnings = fill_missing_masks(scene, quiet_reporter())
    assert len(scene.views) == 16 and all(v.mask is not None for v in scene.views)
    assert all(v.mask_auto for v in scene.views), "made masks are automatic: trusted less where views disagree"
    assert mean_iou(scene, truth) > 0.9
    assert "made automatically for 16 view(s)" in warnings[0]


def test_masks_from_model_points_without_a_bbox(rgb_job) -> None:
    job, truth = rgb_job
    scene = load_any(job)
    scene.bbox = None
    scene.points = reference_points(job)
    warnings = fill_missing_masks(scene, quiet_reporter())
    assert mean_iou(scene, truth) > 0.85  # point seeds fill some concave pockets (e.g. between ear and head)
    assert "seeded by the object points" in warnings[0]


def test_views_with_masks_keep_them(rgb_job) -> None:
    job, truth = rgb_job
    scene = load_any(job)
    given = np.zeros_like(truth[scene.views[0].name])
    given[50:150, 50:150] = True
    scene.views[0].mask = given.copy()
    scene.points = reference_points(job)
    warnings = fill_missing_masks(scene, quiet_reporter())
    assert np.array_equal(scene.views[0].mask, given)
    assert not scene.views[0].mask_auto and all(v.mask_auto for v in scene.views[1:])
    assert "for 15 view(s)" in warnings[0]


@pytest.mark.slow
def test_reconstruct_makes_the_masks_and_says_so(rgb_job, tmp_path) -> None:
    job, _ = rgb_job
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "backend", "reconstruct", str(job), "--out", str(out), "--json",
                           "--device", "cpu", "--iterations", "20", "--texture-size", "64"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    stages = [o["name"] for o in lines if o["type"] == "stage"]
    assert stages[:3] == ["load", "masks", "visual_hull"]
    result = json.loads((out / "result.json").read_text())
    assert any("masks were made automatically for 16 view(s)" in w for w in result["warnings"])
    assert (out / "mesh.obj").is_file()
