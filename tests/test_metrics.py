"""Backend metrics and alignment: known values on boxes and spheres, bad input, file comparison."""
from __future__ import annotations

import numpy as np
import pytest
import trimesh

from backend.mesh.align import align_meshes
from backend.mesh.distance import sample_surface
from backend.mesh.metrics import chamfer, compare_files, compare_meshes, is_closed
from backend.runtime.errors import JobError


def _box(z: float = 1.0) -> trimesh.Trimesh:
    return trimesh.creation.box(extents=(1.0, 1.0, z))


def test_identical_meshes_have_zero_distance() -> None:
    s = trimesh.creation.icosphere(3)
    r = compare_meshes(s.vertices, s.faces, s.vertices, s.faces, n_samples=20000)
    assert r["chamfer_l1"] < 1e-9 and r["hausdorff"] < 1e-9
    assert r["fscore"] == 1.0 and r["normal_consistency"] > 0.999999
    assert r["iou"] == pytest.approx(1.0)


def test_box_against_taller_box() -> None:
    a, b = _box(), _box(1.1)
    r = compare_meshes(a.vertices, a.faces, b.vertices, b.faces, n_samples=50000)
    assert r["hausdorff"] == pytest.approx(0.05, rel=1e-6)
    assert r["diag"] == pytest.approx(np.sqrt(3.0))
    assert r["chamfer_l1_norm"] == pytest.approx(r["chamfer_l1"] / np.sqrt(3.0))
    assert r["iou"] == pytest.approx(1 / 1.1, abs=0.01)
    assert 0.0 < r["fscore"] < 1.0 and r["closed_a"] and r["closed_b"]


def test_sampling_is_area_weighted_and_seeded() -> None:
    b = _box(4.0)
    p1, f1 = sample_surface(b.vertices, b.faces, 40000, seed=3)
    p2, _ = sample_surface(b.vertices, b.faces, 40000, seed=3)
    assert np.array_equal(p1, p2)
    on_side = np.mean(np.abs(np.abs(p1[:, 2]) - 2.0) > 1e-9)
    assert on_side == pytest.approx(16 / 18, abs=0.01)


def test_point_set_chamfer() -> None:
    a = np.zeros((1, 3))
    b = np.array([[0.0, 0.0, 3.0]])
    r = chamfer(a, b, diag=3.0)
    assert r["chamfer_l1"] == pytest.approx(3.0) and r["chamfer_l2_norm"] == pytest.approx(1.0)


def test_open_mesh_skips_iou_and_keeps_the_rest() -> None:
    s = trimesh.creation.icosphere(2)
    open_f = s.faces[1:]
    assert not is_closed(s.vertices, open_f)
    r = compare_meshes(s.vertices, s.faces, s.vertices, open_f, n_samples=5000)
    assert r["iou"] is None and "closed" in r["iou_note"] and "compared" in r["iou_note"]
    assert r["chamfer_l1"] >= 0 and r["fscore"] > 0.9


def test_point_cloud_and_empty_mesh_are_reported() -> None:
    s = trimesh.creation.icosphere(1)
    with pytest.raises(JobError, match="point cloud"):
        compare_meshes(s.vertices, s.faces, s.vertices, np.zeros((0, 3), dtype=int))
    with pytest.raises(JobError, match="empty"):
        compare_meshes(np.zeros((0, 3)), np.zeros((0, 3), dtype=int), s.vertices, s.faces)


def test_alignment_recovers_a_rigid_motion() -> None:
    m = trimesh.creation.capsule(height=1.0, radius=0.3)
    m.vertices[:, 0] *= 1.6
    motion = trimesh.transformations.rotation_matrix(0.6, [1.0, 2.0, 3.0])
    motion[:3, 3] = [0.3, -0.2, 0.5]
    moved = trimesh.transform_points(m.vertices, motion)
    t = align_meshes(moved, m.faces, m.vertices, m.faces)
    assert np.allclose(t @ motion, np.eye(4), atol=2e-3)


def test_alignment_with_scale() -> None:
    m = trimesh.creation.box(extents=(1.0, 0.6, 0.3))
    motion = trimesh.transformations.rotation_matrix(0.3, [0.0, 0.0, 1.0])
    motion[:3, :3] *= 1.5
    moved = trimesh.transform_points(m.vertices, motion)
    t = align_meshes(moved, m.faces, m.vertices, m.faces, scale=True)
    assert np.allclose(trimesh.transform_points(moved, t), m.vertices, atol=5e-3)


def test_compare_files(tmp_path) -> None:
    a, b = tmp_path / "a.obj", tmp_path / "b.ply"
    _box().export(a)
    m = _box(1.1)
    m.apply_translation([0.2, 0.0, 0.0])
    m.export(b)
    plain = compare_files(a, b, n_samples=20000)
    aligned = compare_files(a, b, align=True, n_samples=20000)
    assert plain["hausdorff"] > 0.2
    assert aligned["hausdorff"] < 0.06 and aligned["aligned"]
    with pytest.raises(JobError, match="not found"):
        compare_files(tmp_path / "missing.obj", b)


def test_genus_from_euler_characteristic_per_component() -> None:
    import trimesh

    from backend.mesh.metrics import genus

    torus = trimesh.creation.torus(1.0, 0.3)
    sphere = trimesh.creation.icosphere(2)
    assert genus(torus.vertices, torus.faces) == 1
    assert genus(sphere.vertices, sphere.faces) == 0
    both = trimesh.util.concatenate([torus, torus.copy().apply_translation([5.0, 0, 0]),
                                     sphere.copy().apply_translation([0, 9.0, 0])])
    assert genus(both.vertices, both.faces) == 2, "two tori and a sphere: the genera add up"
    assert genus(torus.vertices, torus.faces[1:]) == 1, "a torus with a face missing (one boundary loop)"
    split = trimesh.Trimesh(torus.vertices[torus.faces].reshape(-1, 3), np.arange(3 * len(torus.faces)).reshape(-1, 3),
                            process=False)
    assert genus(split.vertices, split.faces) == 1, "unwelded copies of the vertices are welded by position"
    assert genus(np.zeros((0, 3)), np.zeros((0, 3), dtype=int)) == 0
