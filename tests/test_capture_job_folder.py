"""The photos command's job folder: the frame change keeps every projection, the folder is complete or absent."""
from __future__ import annotations

import json

import numpy as np
import pytest

from backend.capture.job_folder import points_ply_bytes, write_photo_job
from backend.capture.locate import apply_similarity, transform_points
from backend.io.job import load_job
from backend.runtime.errors import JobError


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random rotation matrix."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def similarity(rng: np.random.Generator, scale: float) -> np.ndarray:
    """A 4x4 similarity with a random rotation and offset."""
    m = np.eye(4)
    m[:3, :3] = scale * random_rotation(rng)
    m[:3, 3] = rng.normal(size=3)
    return m


def project(K, R, t, X):
    """Pixels of world points."""
    x = X @ R.T + t
    return (x @ K.T)[:, :2] / x[:, 2:3]


def test_frame_change_keeps_projections():
    rng = np.random.default_rng(3)
    K = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
    R, t = random_rotation(rng), np.array([0.1, -0.2, 6.0])
    X = rng.normal(size=(50, 3))
    m = similarity(rng, 0.37)
    R2, t2 = apply_similarity(m, R, t)
    assert np.allclose(R2 @ R2.T, np.eye(3)) and np.linalg.det(R2) == pytest.approx(1.0)
    assert np.allclose(project(K, R2, t2, transform_points(m, X)), project(K, R, t, X), atol=1e-9)
    centre = -R.T @ t
    assert np.allclose(-R2.T @ t2, transform_points(m, centre[None])[0])


def test_points_ply_round_trip():
    import trimesh

    rng = np.random.default_rng(0)
    p = rng.normal(size=(20, 3)).astype(np.float32)
    c = rng.integers(0, 256, size=(20, 3), dtype=np.uint8)
    cloud = trimesh.load(trimesh.util.wrap_as_stream(points_ply_bytes(p, c)), file_type="ply")
    assert np.allclose(np.asarray(cloud.vertices), p, atol=1e-6)
    assert np.array_equal(np.asarray(cloud.colors)[:, :3], c)


def test_write_photo_job_loads_and_replaces(tmp_path):
    import imageio.v3 as iio

    rng = np.random.default_rng(1)
    src = tmp_path / "undistorted"
    src.mkdir()
    views, images, masks = [], [], []
    for i in range(3):
        img = rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
        path = src / f"p{i}.jpg"
        iio.imwrite(path, img)
        R = random_rotation(rng)
        views.append({"name": f"p{i}", "K": [[60, 0, 32], [0, 60, 24], [0, 0, 1]], "R": R,
                      "t": [0, 0, 4.0], "width": 64, "height": 48})
        images.append(path)
        m = np.zeros((48, 64), bool)
        m[10:30, 20:40] = True
        masks.append(m)
    out = tmp_path / "out" / "job"
    report = {"registered": ["p0.jpg", "p1.jpg", "p2.jpg"], "unregistered": [],
              "floor": {"normal": [0.0, 0.0, 2.0], "offset": -1.0}}
    for _ in range(2):  # a second write replaces the first whole
        write_photo_job(out, views, images, masks, (np.full(3, -0.6), np.full(3, 0.6)), {"iterations": 50},
                        rng.normal(size=(10, 3)), None, report, {"normal": [0.0, 0.0, 1.0], "offset": -0.4})
    assert sorted(p.name for p in out.parent.iterdir()) == ["job"]
    scene = load_job(out)
    assert [v.name for v in scene.views] == ["p0", "p1", "p2"]
    assert scene.views[0].mask.sum() == 400
    assert scene.settings["iterations"] == 50
    assert json.loads((out / "sfm.json").read_text())["registered"][0] == "p0.jpg"
    assert (out / "points.ply").read_bytes().startswith(b"ply\n")
    assert np.allclose(scene.floor[0], [0, 0, 1]) and scene.floor[1] == pytest.approx(-0.4)  # job.json's wins
    job = json.loads((out / "job.json").read_text())
    del job["floor"]
    (out / "job.json").write_text(json.dumps(job))
    assert load_job(out).floor[1] == pytest.approx(-0.5)  # an older job: sfm.json's, made unit length
    job["floor"] = {"normal": [0, 0, 0], "offset": 1.0}
    (out / "job.json").write_text(json.dumps(job))
    with pytest.raises(JobError, match="floor"):
        load_job(out)


def test_a_mesh_is_set_down_on_the_floor_and_nothing_above_it_moves():
    from backend.geometry.floor import floor_from_dict, rest_on_floor

    n = np.array([0.0, 0.6, 0.8])
    v = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0], [1.0, 2.0, 3.0], [0.0, -1.0, 0.0]])
    moved, count = rest_on_floor(v, (n, 0.2))
    assert count == 2  # heights 0.8, -0.8, 3.6, -0.6 against 0.2
    assert np.allclose(moved @ n, [0.8, 0.2, 3.6, 0.2])
    assert np.allclose(moved[[0, 2]], v[[0, 2]])
    assert np.allclose(np.cross(moved[1] - v[1], n), 0)  # straight up along the normal
    assert floor_from_dict(None) is None and floor_from_dict({"normal": [0, 0, 0], "offset": 1}) is None
    assert floor_from_dict({"normal": "up"}) is None
