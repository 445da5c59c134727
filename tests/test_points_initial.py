"""Job setting `initial_mesh`: Reconstruct starts from a point cloud's (or mesh's) surface instead of the hull."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh

from backend.io.job import load_job, write_job
from backend.io.validate import validate_settings
from backend.io.views import Scene, View
from backend.runtime.errors import JobError
from test_geometry_visual_hull import sphere_views

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12-view sphere job (radius 0.5) whose settings start from `start.npz`: a sphere of radius 0.42."""
    views = [View(f"cam_{i:03d}", np.full((*sv.mask.shape, 3), 0.6, np.float32) * sv.mask[..., None], sv.mask,
                  sv.K, sv.R, sv.t) for i, sv in enumerate(sphere_views(n=12, res=96, f=120.0))]
    root = write_job(Scene(views, (np.full(3, -0.7), np.full(3, 0.7))), tmp_path_factory.mktemp("init") / "job")
    d = np.random.default_rng(0).normal(size=(20_000, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    np.savez(root / "start.npz", points=0.42 * d)
    spec = json.loads((root / "job.json").read_text())
    spec["settings"].update(initial_mesh="start.npz", iterations=1, symmetry="off", texture_size=64)
    (root / "job.json").write_text(json.dumps(spec))
    return root


def reconstruct(job: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    """`python -m backend reconstruct JOB --out OUT --json ...`."""
    return subprocess.run([sys.executable, "-m", "backend", "reconstruct", str(job), "--out", str(out), "--json",
                           "--device", "cpu", *extra], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_setting_is_resolved_and_checked(job: Path, tmp_path: Path) -> None:
    scene = load_job(job)
    assert scene.settings["initial_mesh"] == str(job / "start.npz")
    assert validate_settings({})["initial_mesh"] is None
    for bad, words in ((5, "use null"), ("", "use null"), (str(tmp_path / "none.ply"), "does not exist")):
        with pytest.raises(JobError, match="initial_mesh") as err:
            validate_settings({"initial_mesh": bad})
        assert words in err.value.message + err.value.hint


def test_reconstruct_starts_from_the_point_surface(job: Path, tmp_path: Path) -> None:
    run = reconstruct(job, tmp_path / "out")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "initial mesh from points file" in run.stderr
    mesh = trimesh.load(tmp_path / "out" / "mesh.obj", process=False)
    r = np.linalg.norm(mesh.vertices, axis=1)
    assert abs(r.mean() - 0.42) < 0.015, r.mean()
    hull = reconstruct(job, tmp_path / "hull", "--initial-mesh", "")
    assert hull.returncode == 2 and "initial_mesh" in json.loads(hull.stdout.splitlines()[-1])["message"]


def test_start_mesh_file_and_one_outside_the_bbox(job: Path, tmp_path: Path) -> None:
    ico = trimesh.creation.icosphere(subdivisions=3, radius=0.45)
    ico.export(tmp_path / "start.obj")
    run = reconstruct(job, tmp_path / "out", "--initial-mesh", str(tmp_path / "start.obj"))
    assert run.returncode == 0, run.stderr[-2000:]
    assert "initial mesh from mesh file" in run.stderr
    r = np.linalg.norm(trimesh.load(tmp_path / "out" / "mesh.obj", process=False).vertices, axis=1)
    assert abs(r.mean() - 0.45) < 0.015
    ico.apply_translation([5.0, 0, 0])
    ico.export(tmp_path / "far.obj")
    far = reconstruct(job, tmp_path / "far", "--initial-mesh", str(tmp_path / "far.obj"))
    err = json.loads(far.stdout.splitlines()[-1])
    assert far.returncode == 2 and "outside the job's bounding box" in err["message"] and err["hint"]
    assert not (tmp_path / "far" / "result.json").exists()
