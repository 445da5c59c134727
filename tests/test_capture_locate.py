"""Locating the object of a photo capture: synthetic cameras orbiting an ellipsoid above a plane of points."""
from __future__ import annotations

import numpy as np
import pytest

from backend.capture.locate import (apply_similarity, camera_vectors, locate_object, transform_points,
                                    vertical_from_cameras)
from backend.runtime.errors import JobError

SEMI_AXES = np.array([0.6, 0.35, 0.4])  # largest side of the object's box: 1.2
CENTRE = np.array([0.0, 0.0, 0.4])  # it stands on the floor z = 0


def look_at(eye: np.ndarray, target: np.ndarray, roll_deg: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV world-to-camera (R, t) of a camera at `eye` looking at `target`, z up, optional roll."""
    fwd = target - eye
    fwd /= np.linalg.norm(fwd)
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    a = np.radians(roll_deg)
    right, down = np.cos(a) * right + np.sin(a) * down, -np.sin(a) * right + np.cos(a) * down
    R = np.stack([right, down, fwd])
    return R, -R @ eye


def ring_cameras(n: int, azimuths_deg: tuple[float, float] = (0, 360), rng=None) -> tuple[np.ndarray, np.ndarray]:
    """Cameras on rings at 20 and 45 degrees of elevation, 4 units away, aimed near the object, a little rolled."""
    rng = rng or np.random.default_rng(0)
    Rs, ts = [], []
    for i in range(n):
        az = np.radians(azimuths_deg[0] + (azimuths_deg[1] - azimuths_deg[0]) * (i + 0.5) / n)
        el = np.radians(20 if i % 2 else 45)
        eye = CENTRE + 4.0 * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
        R, t = look_at(eye, CENTRE + rng.normal(0, 0.05, 3), roll_deg=rng.normal(0, 3))
        Rs.append(R)
        ts.append(t)
    return np.array(Rs), np.array(ts)


def scene_points(rng, floor: bool = True, only_front: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Sparse points: the ellipsoid's surface (label True), a noisy floor disc and scattered outliers."""
    d = rng.normal(size=(1500, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    obj = CENTRE + d * SEMI_AXES
    if only_front:
        obj = obj[obj[:, 0] > -0.3]
    parts = [obj]
    labels = [np.ones(len(obj), dtype=bool)]
    if floor:
        r = 2.5 * np.sqrt(rng.uniform(size=3000))
        a = rng.uniform(0, 2 * np.pi, 3000)
        flo = np.stack([r * np.cos(a), r * np.sin(a), rng.normal(0, 0.003, 3000)], axis=1)
        flo = flo[np.linalg.norm((flo - CENTRE) / (SEMI_AXES + 0.03), axis=1) > 1]
        parts.append(flo)
        labels.append(np.zeros(len(flo), dtype=bool))
    out = rng.uniform(-6, 6, (40, 3))
    parts.append(out)
    labels.append(np.zeros(len(out), dtype=bool))
    return np.concatenate(parts), np.concatenate(labels)


def random_similarity(rng) -> np.ndarray:
    """A 4x4 similarity with a random rotation, scale 3.7 and a translation: the SfM world's arbitrary gauge."""
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    T = np.eye(4)
    T[:3, :3] = 3.7 * q
    T[:3, 3] = rng.normal(0, 5, 3)
    return T


def to_sfm_world(T: np.ndarray, Rs: np.ndarray, ts: np.ndarray, points: np.ndarray):
    """Cameras and points of the true world re-expressed in the gauge T."""
    cams = [apply_similarity(T, R, t) for R, t in zip(Rs, ts)]
    return np.array([c[0] for c in cams]), np.array([c[1] for c in cams]), transform_points(T, points)


def run_case(floor: bool, azimuths=(0, 360), only_front: bool = False, seed: int = 1):
    """Locate the object in a randomly gauged synthetic capture; returns (frame, T, labels, Rs, ts, points)."""
    rng = np.random.default_rng(seed)
    Rs, ts = ring_cameras(24, azimuths, rng)
    points, labels = scene_points(rng, floor=floor, only_front=only_front)
    T = random_similarity(rng)
    Rw, tw, pw = to_sfm_world(T, Rs, ts, points)
    tracks = [np.arange(2 if i >= len(points) - 40 else 3 + i % 5) for i in range(len(points))]  # outliers: 2 views
    frame = locate_object(*camera_vectors(Rw, tw), pw, tracks)
    return frame, T, labels, Rs, ts, points


def true_to_job(frame, T: np.ndarray) -> np.ndarray:
    """The similarity from the true world to the job frame."""
    return frame.transform @ T


@pytest.mark.parametrize("floor", [True, False])
def test_locate_recovers_centre_up_scale_and_points(floor: bool) -> None:
    frame, T, labels, _, _, points = run_case(floor)
    M = true_to_job(frame, T)
    s = np.cbrt(np.linalg.det(M[:3, :3]))
    assert s == pytest.approx(1 / 1.2, rel=0.03)  # the object's largest side (1.2) becomes 1 unit
    z_true_up = M[:3, :3] @ np.array([0.0, 0.0, 1.0]) / s
    assert np.degrees(np.arccos(np.clip(z_true_up[2], -1, 1))) < (1.0 if floor else 4.0)
    assert np.linalg.norm(transform_points(M, CENTRE[None])[0]) < 0.03  # the box's middle is the origin
    picked = frame.object_points
    assert (picked & labels).sum() / labels.sum() > 0.9
    assert (picked & labels).sum() / picked.sum() > 0.97
    obj_job = transform_points(M, points[labels])
    assert np.all(obj_job >= frame.bbox_min - 0.01) and np.all(obj_job <= frame.bbox_max + 0.01)
    assert np.max(frame.bbox_max - frame.bbox_min) < 1.35
    if floor:
        normal, offset = frame.floor
        np.testing.assert_allclose(normal, [0, 0, 1], atol=1e-9)
        floor_job = transform_points(M, np.array([[1.5, -0.7, 0.0]]))[0]
        assert floor_job[2] == pytest.approx(offset, abs=0.01)
        assert frame.bbox_min[2] < offset < frame.bbox_min[2] + 0.05
    else:
        assert frame.floor is None


def test_one_sided_capture_box_reaches_the_hidden_back() -> None:
    frame, T, _, Rs, ts, _ = run_case(True, azimuths=(-60, 60), only_front=True, seed=3)
    M = true_to_job(frame, T)
    # the whole ellipsoid, its unseen back included, lies in the box
    d = np.random.default_rng(0).normal(size=(2000, 3))
    whole = CENTRE + d / np.linalg.norm(d, axis=1, keepdims=True) * SEMI_AXES
    inside = np.all((transform_points(M, whole) >= frame.bbox_min) & (transform_points(M, whole) <= frame.bbox_max), 1)
    assert inside.mean() > 0.99
    # the cameras stand on the -y side of the job frame
    centres = transform_points(M, -np.einsum("nji,nj->ni", Rs, ts))
    assert np.all(centres[:, 1] < 0)


def test_apply_similarity_keeps_pixels() -> None:
    rng = np.random.default_rng(5)
    Rs, ts = ring_cameras(3, rng=rng)
    T = random_similarity(rng)
    X = rng.normal(0, 0.5, (20, 3)) + CENTRE
    K = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
    for R, t in zip(Rs, ts):
        R2, t2 = apply_similarity(T, R, t)
        a = (X @ R.T + t) @ K.T
        b = (transform_points(T, X) @ R2.T + t2) @ K.T
        np.testing.assert_allclose(a[:, :2] / a[:, 2:], b[:, :2] / b[:, 2:], atol=1e-7)
        np.testing.assert_allclose(R2 @ R2.T, np.eye(3), atol=1e-9)


def test_vertical_from_pitched_cameras_on_an_arc() -> None:
    Rs, ts = ring_cameras(10, (0, 90))
    _, axes, ups = camera_vectors(Rs, ts)
    up = vertical_from_cameras(axes, ups)
    assert np.degrees(np.arccos(up[2])) < 3.0
    mean_up = ups.mean(axis=0) / np.linalg.norm(ups.mean(axis=0))
    assert np.degrees(np.arccos(mean_up[2])) > 10  # the plain mean of the pitched cameras' ups leans a lot


def test_vertical_tolerates_a_few_portrait_shots() -> None:
    Rs, ts = ring_cameras(24, (-60, 60))
    quarter_turn = np.array([[0.0, 1, 0], [-1, 0, 0], [0, 0, 1]])
    for i in (1, 6, 11, 17):
        Rs[i] = quarter_turn @ Rs[i]
    up = vertical_from_cameras(*camera_vectors(Rs, ts)[1:])
    assert np.degrees(np.arccos(up[2])) < 2.0


def test_no_object_is_a_job_error() -> None:
    rng = np.random.default_rng(2)
    Rs, ts = ring_cameras(12, rng=rng)
    with pytest.raises(JobError, match="sparse points"):
        locate_object(*camera_vectors(Rs, ts), rng.uniform(-20, 20, (30, 3)))


@pytest.mark.parametrize("turn", [1.0, -1.0])
def test_vertical_of_a_capture_held_rolled_a_quarter_turn(turn: float) -> None:
    """Every photo rolled 90 degrees (portrait shots stored sideways): the y axes are level, the up is still z."""
    Rs, ts = ring_cameras(16, (-70, 70))
    quarter_turn = np.array([[0.0, turn, 0], [-turn, 0, 0], [0, 0, 1]])
    Rs = np.array([quarter_turn @ R for R in Rs])
    axes, ups = camera_vectors(Rs, ts)[1:]
    up = vertical_from_cameras(axes, ups)
    assert np.degrees(np.arccos(up[2])) < 3.0


def test_locate_finds_the_floor_of_a_rolled_capture() -> None:
    rng = np.random.default_rng(5)
    Rs, ts = ring_cameras(20, rng=rng)
    Rs = np.array([np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]]) @ R for R in Rs])
    points, _ = scene_points(rng)
    frame = locate_object(*camera_vectors(Rs, ts), points)
    assert frame.floor is not None
    assert abs(frame.floor[0][2]) > 0.99  # the floor's normal is the world's z
    world_up = frame.transform[:3, :3].T @ np.array([0.0, 0, 1])  # the job frame's z in the world
    assert world_up[2] / np.linalg.norm(world_up) > 0.99


def test_a_table_with_the_room_floor_below_its_edge_is_the_floor() -> None:
    """The object stands on a small table; past the table's edge the cameras see the room's floor 0.8 below.
    Those points are under the table's plane but far from the object: the table is still the floor."""
    rng = np.random.default_rng(7)
    Rs, ts = ring_cameras(24, rng=rng)
    points, _ = scene_points(rng)
    table = points[:, 2] > -0.05
    points = points[table & (np.linalg.norm(points[:, :2], axis=1) < 1.3) | (points[:, 2] > 0.05)]
    r = 2.0 + 3.0 * np.sqrt(rng.uniform(size=2500))
    a = rng.uniform(0, 2 * np.pi, 2500)
    room = np.stack([r * np.cos(a), r * np.sin(a), -0.8 + rng.normal(0, 0.003, 2500)], axis=1)
    frame = locate_object(*camera_vectors(Rs, ts), np.concatenate([points, room]))
    assert frame.floor is not None
    table_height = transform_points(frame.transform, np.array([[0.0, 0.0, 0.0]]))[0, 2]
    assert abs(frame.floor[1] - table_height) < 0.02
