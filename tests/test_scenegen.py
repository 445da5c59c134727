"""Cycles test scenes: the job folder is complete and its cameras match what Cycles rendered."""
from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from scipy.ndimage import binary_dilation

from scenegen import render_job_subprocess
from scenegen.api import cli_args
from scenegen.rig import fibonacci_directions, look_at, parse_filter


def read_obj_vertices(path: Path) -> np.ndarray:
    """Vertex positions of an OBJ file."""
    rows = [line.split()[1:4] for line in path.read_text().splitlines() if line.startswith("v ")]
    return np.asarray(rows, dtype=np.float64)


def projected_inside_fraction(job_dir: Path, view: dict, vertices: np.ndarray) -> float:
    """Fraction of vertices whose projection falls on the (1 px dilated) alpha mask of the view."""
    K, R, t = (np.asarray(view[k], dtype=np.float64) for k in ("K", "R", "t"))
    alpha = iio.imread(job_dir / view["image"])[..., 3] > 0
    mask = binary_dilation(alpha, iterations=1)
    x = vertices @ R.T + t
    assert np.all(x[:, 2] > 0), "object behind the camera"
    uv = x @ K.T
    uv = uv[:, :2] / uv[:, 2:3]
    col, row = np.floor(uv[:, 0]).astype(int), np.floor(uv[:, 1]).astype(int)
    h, w = mask.shape
    inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
    hit = np.zeros(len(uv), dtype=bool)
    hit[inside] = mask[row[inside], col[inside]]
    return float(hit.mean())


@pytest.fixture(scope="module")
def tiny_job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four 64x64 views of Suzanne rendered by Cycles in a child process."""
    out = tmp_path_factory.mktemp("scenegen") / "job"
    return render_job_subprocess(out, mesh="suzanne", n_views=4, resolution=64, samples=4,
                                 settings={"iterations": 50})


def test_job_folder_complete(tiny_job: Path) -> None:
    job = json.loads((tiny_job / "job.json").read_text())
    assert job["version"] == 1
    assert set(job) == {"version", "views", "bbox", "settings"}
    assert len(job["views"]) == 4
    assert job["settings"]["iterations"] == 50 and job["settings"]["symmetry"] == "detect"
    lo, hi = np.array(job["bbox"]["min"]), np.array(job["bbox"]["max"])
    verts = read_obj_vertices(tiny_job / "reference.obj")
    assert np.all(verts >= lo) and np.all(verts <= hi)
    assert np.isclose(np.max(verts.max(0) - verts.min(0)), 2.0)
    for v in job["views"]:
        img = iio.imread(tiny_job / v["image"])
        assert img.shape == (64, 64, 4) and img.dtype == np.uint8
        assert (v["width"], v["height"]) == (64, 64)
        alpha = img[..., 3]
        assert 0.05 < (alpha > 127).mean() < 0.9, "object should cover part of the frame"
        assert alpha[0].max() == 0 and alpha[-1].max() == 0, "object should not touch the border"
        R = np.array(v["R"])
        assert np.allclose(R @ R.T, np.eye(3), atol=1e-9) and np.isclose(np.linalg.det(R), 1)


def test_reference_projects_inside_alpha(tiny_job: Path) -> None:
    job = json.loads((tiny_job / "job.json").read_text())
    verts = read_obj_vertices(tiny_job / "reference.obj")
    for v in job["views"]:
        assert projected_inside_fraction(tiny_job, v, verts) > 0.995, v["name"]


def test_non_square_filtered_obj_job(tmp_path: Path, shared_meshes: Path) -> None:
    out = render_job_subprocess(tmp_path / "spot", mesh=str(shared_meshes / "spot.obj"), n_views=6,
                                resolution=(72, 40), samples=2, views_filter="x>0")
    job = json.loads((out / "job.json").read_text())
    assert job["views"], "filter kept no camera"
    verts = read_obj_vertices(out / "reference.obj")
    meta = json.loads((out / "scenegen.json").read_text())
    assert meta["source_to_world"]["scale"] > 0
    for v in job["views"]:
        assert (-np.array(v["R"]).T @ np.array(v["t"]))[0] > 0
        assert iio.imread(out / v["image"]).shape == (40, 72, 4)
        assert projected_inside_fraction(out, v, verts) > 0.99, v["name"]


def test_subprocess_reports_bad_mesh(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="neither one of"):
        render_job_subprocess(tmp_path / "bad", mesh="no_such_shape", n_views=2, resolution=16)


def test_rig_geometry() -> None:
    d = fibonacci_directions(24)
    assert np.allclose(np.linalg.norm(d, axis=1), 1)
    assert d[:, 2].max() < 0.95 and d[:, 2].min() > -0.8
    m = look_at(np.array([3.0, 0.0, 1.0]), np.zeros(3))
    forward = -m[:3, 2]
    assert np.allclose(forward, -np.array([3.0, 0.0, 1.0]) / np.sqrt(10))
    assert np.allclose(m[:3, :3] @ m[:3, :3].T, np.eye(3))
    assert m[2, 1] > 0, "camera up should point up"
    keep = parse_filter("x>0")
    assert keep(np.array([1.0, 0, 0])) and not keep(np.array([-1.0, 0, 0]))
    with pytest.raises(ValueError):
        parse_filter("x => 0")
    assert "--filter" in cli_args(Path("o"), views_filter="y<=0.5")


def test_roughness_makes_highlights(tmp_path: Path) -> None:
    """A glossy sphere shows specular highlights (near-white pixels) that a rough one under the same lights lacks."""
    white = {}
    for roughness in (0.15, 1.0):
        out = render_job_subprocess(tmp_path / f"r{roughness}", mesh="sphere", n_views=2, resolution=96,
                                    samples=4, roughness=roughness)
        assert json.loads((out / "scenegen.json").read_text())["roughness"] == roughness
        count = 0
        for name in ("cam_000", "cam_001"):
            img = iio.imread(out / "images" / f"{name}.png").astype(np.float64)
            count += int((img[..., :3].mean(axis=-1)[img[..., 3] == 255] > 230).sum())
        white[roughness] = count
    assert white[0.15] > 10 and white[0.15] > 5 * white[1.0], white


@pytest.mark.parametrize("shape", ["sphere", "torus", "cube"])
def test_procedural_shapes(tmp_path: Path, shape: str) -> None:
    out = render_job_subprocess(tmp_path / shape, mesh=shape, n_views=2, resolution=32, samples=1)
    job = json.loads((out / "job.json").read_text())
    verts = read_obj_vertices(out / "reference.obj")
    assert np.isclose(np.max(verts.max(0) - verts.min(0)), 2.0)
    for v in job["views"]:
        assert projected_inside_fraction(out, v, verts) > 0.99, v["name"]
