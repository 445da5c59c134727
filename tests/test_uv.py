"""UV maps: coverage, range, overlap, seams on the symmetry plane, mirrored charts, OBJ round trip."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh

from backend.post.geometry import vertex_normals
from backend.post.symmetry import SymmetryPlane
from backend.post.uv import UVMesh, compute_uv, cut_by_plane
from backend.runtime.result import write_mtl, write_obj

X_PLANE = SymmetryPlane(np.zeros(3), np.array([1.0, 0.0, 0.0]), 0.0)


def bumpy_sphere() -> tuple[np.ndarray, np.ndarray]:
    """Icosphere with a mirror-symmetric (about x = 0) bump pattern; topology mirrors too."""
    sphere = trimesh.creation.icosphere(subdivisions=3)
    v = np.asarray(sphere.vertices) * np.array([1.0, 0.8, 0.6])
    v = v * (1 + 0.2 * np.exp(-np.sum((np.abs(v) - [0.6, 0.4, 0.0]) ** 2, axis=1) / 0.1))[:, None]
    return v, np.asarray(sphere.faces)


def tilted_box() -> tuple[np.ndarray, np.ndarray]:
    """A subdivided box, rotated so no plane of ours is axis-aligned with its grid."""
    box = trimesh.creation.box(extents=(2.0, 1.0, 0.6)).subdivide().subdivide()
    return np.asarray(box.vertices), np.asarray(box.faces)


def overlap_fraction(uvmesh: UVMesh, res: int = 400) -> float:
    """Share of covered texel centres that lie inside more than one UV triangle."""
    counts = np.zeros((res, res), dtype=np.int32)
    tri = uvmesh.uv[uvmesh.faces] * res
    for a, b, c in tri:
        lo = np.floor(np.minimum(np.minimum(a, b), c)).astype(int).clip(0, res - 1)
        hi = np.ceil(np.maximum(np.maximum(a, b), c)).astype(int).clip(0, res - 1)
        xs, ys = np.meshgrid(np.arange(lo[0], hi[0] + 1) + 0.5, np.arange(lo[1], hi[1] + 1) + 0.5)
        p = np.stack([xs.ravel(), ys.ravel()], axis=1)
        d1 = np.cross(b - a, p - a)
        d2 = np.cross(c - b, p - b)
        d3 = np.cross(a - c, p - c)
        inside = ((d1 >= 0) & (d2 >= 0) & (d3 >= 0)) | ((d1 <= 0) & (d2 <= 0) & (d3 <= 0))
        np.add.at(counts, (p[inside, 1].astype(int), p[inside, 0].astype(int)), 1)
    covered = counts > 0
    return float((counts > 1).sum() / max(covered.sum(), 1))


def check_basic(uvmesh: UVMesh, v: np.ndarray) -> None:
    """Every face has UVs in [0, 1]; split vertices keep their source positions; UV area is used."""
    assert uvmesh.uv.shape == (len(uvmesh.vertices), 2)
    assert uvmesh.faces.max() < len(uvmesh.vertices)
    assert np.all(uvmesh.uv >= 0) and np.all(uvmesh.uv <= 1)
    uv_tri = uvmesh.uv[uvmesh.faces]
    area = 0.5 * np.abs(np.cross(uv_tri[:, 1] - uv_tri[:, 0], uv_tri[:, 2] - uv_tri[:, 0]))
    assert (area > 0).mean() > 0.99
    assert area.sum() > 0.3
    assert overlap_fraction(uvmesh) < 0.01


def test_plain_uv_map() -> None:
    v, f = bumpy_sphere()
    uvmesh = compute_uv(v, f)
    check_basic(uvmesh, v)
    assert len(uvmesh.faces) == len(f)
    np.testing.assert_allclose(uvmesh.vertices, v[uvmesh.source_vertex])


def test_cut_by_plane_splits_crossing_faces() -> None:
    v, f = tilted_box()
    plane = SymmetryPlane(np.array([0.1, 0.0, 0.0]), np.array([0.8, 0.6, 0.0]), 0.0)
    cv, cf, side, _ = cut_by_plane(v, f, plane)
    s = cv @ plane.normal - plane.offset()
    tol = 1e-9
    assert np.all(s[cf[side]] >= -tol) and np.all(s[cf[~side]] <= tol)
    tri = cv[cf]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1).sum()
    assert area == pytest.approx(trimesh.Trimesh(v, f, process=False).area, rel=1e-9)


def test_seam_on_plane_and_mirrored_charts() -> None:
    v, f = bumpy_sphere()
    uvmesh = compute_uv(v, f, X_PLANE)
    check_basic(uvmesh, v)
    centroid_x = uvmesh.vertices[uvmesh.faces].mean(1)[:, 0]
    pos_vertices = set(uvmesh.faces[centroid_x > 0].ravel().tolist())
    neg_vertices = set(uvmesh.faces[centroid_x < 0].ravel().tolist())
    assert not pos_vertices & neg_vertices
    flip = np.array([-1.0, 1.0, 1.0])
    face_at = {tuple(np.round(c, 6)): k for k, c in enumerate(uvmesh.vertices[uvmesh.faces].mean(1))}
    mirrored_pairs = 0
    for k, face in enumerate(uvmesh.faces):
        if centroid_x[k] <= 0:
            continue
        j = face_at[tuple(np.round(uvmesh.vertices[face].mean(0) * flip, 6))]
        uv_at_mirror = {tuple(np.round(uvmesh.vertices[i] * flip, 6)): uvmesh.uv[i] for i in face}
        partner_uv = np.array([uv_at_mirror[tuple(np.round(uvmesh.vertices[i], 6))] for i in uvmesh.faces[j]])
        own_uv = uvmesh.uv[uvmesh.faces[j]]
        np.testing.assert_allclose((own_uv - own_uv[0]) * [-1, 1], partner_uv - partner_uv[0], atol=1e-5)
        mirrored_pairs += 1
    assert mirrored_pairs == (centroid_x > 0).sum() == (centroid_x < 0).sum()


def test_seam_plane_on_asymmetric_topology() -> None:
    v, f = tilted_box()
    plane = SymmetryPlane(np.zeros(3), np.array([0.8, 0.6, 0.0]), 0.0)
    uvmesh = compute_uv(v, f, plane)
    check_basic(uvmesh, v)
    s = uvmesh.vertices @ plane.normal
    face_side = s[uvmesh.faces].sum(1) > 0
    assert not set(uvmesh.faces[face_side].ravel()) & set(uvmesh.faces[~face_side].ravel())


def test_obj_round_trip(tmp_path: Path) -> None:
    v, f = bumpy_sphere()
    uvmesh = compute_uv(v, f, X_PLANE)
    write_obj(tmp_path / "mesh.obj", uvmesh.vertices, uvmesh.faces, uv=uvmesh.uv, mtl_name="mesh.mtl",
              normals=vertex_normals(uvmesh.vertices, uvmesh.faces))
    write_mtl(tmp_path / "mesh.mtl", "texture.png")
    mtl = (tmp_path / "mesh.mtl").read_text()
    assert "map_Kd texture.png" in mtl
    loaded = trimesh.load(tmp_path / "mesh.obj", process=False, maintain_order=True)
    assert len(loaded.faces) == len(uvmesh.faces)
    got = loaded.visual.uv[loaded.faces]
    want = uvmesh.uv[uvmesh.faces]
    np.testing.assert_allclose(loaded.vertices[loaded.faces], uvmesh.vertices[uvmesh.faces], atol=1e-5)
    np.testing.assert_allclose(got, want, atol=1e-6)
