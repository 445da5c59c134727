"""Phone-like Cycles captures: RGB JPEGs with EXIF only in photos/, and truth/ whose cameras and masks agree."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from scenegen import render_capture_subprocess
from scenegen.api import REPO_ROOT, capture_cli_args
from scenegen.photo_files import read_focal_exif
from scenegen.textures import OBJECT_PALETTE, detail_texture
from scenegen.walkaround import PhoneOptics, photos_per_ring, ring_elevations, walkaround_poses

RES = (160, 120)


def read_obj(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and triangles of an OBJ file written by scenegen."""
    lines = path.read_text().splitlines()
    v = np.array([ln.split()[1:4] for ln in lines if ln.startswith("v ")], dtype=np.float64)
    f = np.array([ln.split()[1:4] for ln in lines if ln.startswith("f ")], dtype=np.int64) - 1
    return v, f


def silhouette(view: dict, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Boolean image of the mesh projected by the view's K, R, t (each triangle filled on its own: their union).

    OpenCV also fills the pixels its edges touch, so this is about half a pixel wider than the Cycles mask.
    """
    K, R, t = (np.asarray(view[k], dtype=np.float64) for k in ("K", "R", "t"))
    x = vertices @ R.T + t
    assert np.all(x[:, 2] > 0), "object behind the camera"
    uv = (x @ K.T)[:, :2] / x[:, 2:3] - 0.5
    img = np.zeros((view["height"], view["width"]), np.uint8)
    shift = 4
    tris = np.round(uv[faces] * (1 << shift)).astype(np.int32)
    for tri in tris:
        cv2.fillConvexPoly(img, tri, 1, lineType=cv2.LINE_8, shift=shift)
    return img > 0


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean images."""
    return float((a & b).sum() / max(1, (a | b).sum()))


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight 160x120 photos of Suzanne on two rings, rendered by Cycles in a child process."""
    out = tmp_path_factory.mktemp("capture") / "suzanne"
    return render_capture_subprocess(out, mesh="suzanne", n_photos=8, rings=2, resolution=RES, samples=4)


def test_photos_are_rgb_jpegs_with_phone_exif(capture: Path) -> None:
    photos = sorted((capture / "photos").iterdir())
    assert [p.suffix for p in photos] == [".jpg"] * 8
    job = json.loads((capture / "truth/job/job.json").read_text())
    fx = job["views"][0]["K"][0][0]
    for p in photos:
        img = Image.open(p)
        assert img.format == "JPEG" and img.mode == "RGB" and img.size == RES
        exif = read_focal_exif(p)
        assert exif["make"] and exif["model"]
        assert exif["focal_length_mm"] == pytest.approx(PhoneOptics().lens_mm)
        f35_from_k = fx * math.hypot(36, 24) / math.hypot(*RES)
        assert abs(exif["focal_35mm"] - f35_from_k) <= 0.5
    assert set(p.name for p in (capture / "truth").iterdir()) == {"job", "mesh.obj", "truth.json"}


def test_truth_cameras_project_mesh_onto_masks(capture: Path) -> None:
    """The true mesh drawn through each true camera covers that view's Cycles mask; another view's camera does not."""
    job = json.loads((capture / "truth/job/job.json").read_text())
    vertices, faces = read_obj(capture / "truth/mesh.obj")
    views = job["views"]
    for i, view in enumerate(views):
        mask = np.asarray(Image.open(capture / "truth/job" / view["mask"])) > 127
        assert 0.03 < mask.mean() < 0.6, view["name"]
        assert iou(silhouette(view, vertices, faces), mask) > 0.93, view["name"]
        other = dict(views[(i + 1) % len(views)], width=view["width"], height=view["height"])
        assert iou(silhouette(other, vertices, faces), mask) < 0.8, view["name"]


def test_truth_job_loads_with_its_masks(capture: Path) -> None:
    from backend.io.job import load_job

    scene = load_job(capture / "truth/job")
    truth = json.loads((capture / "truth/truth.json").read_text())
    assert sorted(truth["photos"]) == sorted(p.name for p in (capture / "photos").iterdir())
    assert sorted(truth["photos"].values()) == sorted(v.name for v in scene.views)
    for v in scene.views:
        assert v.mask.any() and not v.mask.all()


def test_world_frame_object_on_floor_cameras_above(capture: Path) -> None:
    vertices, _ = read_obj(capture / "truth/mesh.obj")
    assert vertices[:, 2].min() == pytest.approx(0.0, abs=1e-6)
    assert np.allclose((vertices[:, :2].min(0) + vertices[:, :2].max(0)) / 2, 0.0, atol=1e-6)
    job = json.loads((capture / "truth/job/job.json").read_text())
    centre = np.array(json.loads((capture / "truth/truth.json").read_text())["world"]["object_centre"])
    for view in job["views"]:
        R, t = np.array(view["R"]), np.array(view["t"])
        C = -R.T @ t
        elevation = math.degrees(math.asin((C - centre)[2] / np.linalg.norm(C - centre)))
        assert 10 < elevation < 55, view["name"]


def test_same_seed_same_capture_other_seed_differs(tmp_path: Path) -> None:
    """Same seed: same photos and cameras. Another seed (here also without EXIF): other photos, no EXIF."""
    kw = dict(mesh="cube", n_photos=2, rings=1, resolution=(64, 48), samples=2)
    a = render_capture_subprocess(tmp_path / "a", seed=3, **kw)
    b = render_capture_subprocess(tmp_path / "b", seed=3, **kw)
    c = render_capture_subprocess(tmp_path / "c", seed=4, exif_focal=False, **kw)
    assert read_focal_exif(c / "photos" / "IMG_0001.jpg") == {}
    assert read_focal_exif(a / "photos" / "IMG_0001.jpg")["focal_35mm"] > 0
    for name in ("IMG_0001.jpg", "IMG_0002.jpg"):
        pa, pb, pc = (np.asarray(Image.open(d / "photos" / name), dtype=np.int16) for d in (a, b, c))
        assert np.abs(pa - pb).max() <= 2, name
        assert np.abs(pa - pc).mean() > 10, name
    ja, jb = (json.loads((d / "truth/job/job.json").read_text()) for d in (a, b))
    assert ja["views"] == jb["views"]


def test_capture_cli_refuses_job_options(tmp_path: Path) -> None:
    args = capture_cli_args(tmp_path / "x", n_photos=2) + ["--filter", "x>0"]
    proc = subprocess.run([sys.executable, "-m", "scenegen", *args], cwd=REPO_ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and "--filter" in proc.stderr


def test_walkaround_rings_look_at_object() -> None:
    target, radius, vfov = np.array([0.0, 0.0, 0.8]), 1.2, math.radians(52)
    poses = walkaround_poses(30, 3, 7, target, radius, vfov)
    assert len(poses) == 30 and photos_per_ring(30, 3) == [10, 10, 10]
    elev = []
    for m in poses:
        assert np.allclose(m[:3, :3] @ m[:3, :3].T, np.eye(3), atol=1e-9)
        to_target = target - m[:3, 3]
        dist = np.linalg.norm(to_target)
        forward = -m[:3, 2]
        assert math.degrees(math.acos(forward @ to_target / dist)) < 6
        assert abs(m[2, 0]) < 0.2 and m[2, 1] > 0, "phone held upright, little roll"
        elev.append(math.degrees(math.asin(-to_target[2] / dist)))
    rings = np.array(elev).reshape(3, 10).mean(axis=1)
    assert np.all(np.diff(rings) > 8) and np.allclose(rings, ring_elevations(3), atol=2)
    again = walkaround_poses(30, 3, 7, target, radius, vfov)
    assert all(np.array_equal(a, b) for a, b in zip(poses, again))


def test_phone_optics() -> None:
    optics = PhoneOptics()
    assert 64 < optics.horizontal_fov_deg() < 70
    assert optics.focal_35mm(640, 480) == 26


def test_detail_texture_is_rich_and_deterministic() -> None:
    """Thousands of SIFT corners in a 512 px texture (soft procedural noise gives a few hundred)."""
    tex = detail_texture(512, 5, OBJECT_PALETTE, feature_px=(5, 90))
    assert tex.shape == (512, 512, 3) and tex.dtype == np.uint8
    assert np.array_equal(tex, detail_texture(512, 5, OBJECT_PALETTE, feature_px=(5, 90)))
    keypoints = cv2.SIFT_create().detect(cv2.cvtColor(tex, cv2.COLOR_RGB2GRAY))
    assert len(keypoints) > 2000
