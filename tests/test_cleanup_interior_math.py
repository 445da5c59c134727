"""backend/mesh/winding.py and backend/mesh/interior.py: the tree agrees with exact winding numbers; the interior test
keeps every face of closed shapes with crevices and tunnels and finds nested shells and internal walls."""
from __future__ import annotations

import numpy as np
import pytest

import cleanup_shapes as shapes
from backend.mesh import interior as inside
from backend.mesh import winding


def incidence(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(edge vertices, edge id per polygon corner, face id per polygon corner) for a regular (m, k) face array."""
    faces = np.asarray(faces)
    a, b = faces.ravel(), np.roll(faces, -1, axis=1).ravel()
    edge_verts, edge = np.unique(np.sort(np.stack([a, b], axis=1), axis=1), axis=0, return_inverse=True)
    return edge_verts, edge.reshape(-1), np.repeat(np.arange(len(faces)), faces.shape[1])


def interior(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    """interior.interior_faces on a regular face array."""
    tris, tri_face = shapes.triangles(f)
    edge_verts, edge, face = incidence(f)
    return inside.interior_faces(v, tris, tri_face, edge_verts, edge, face, len(f))


def test_solid_angle_signs_and_the_in_plane_convention() -> None:
    a, b, c = (np.array([[0.0, 0.0, 0.0]]), np.array([[1.0, 0.0, 0.0]]), np.array([[0.0, 1.0, 0.0]]))
    behind = winding.solid_angles(np.array([[0.2, 0.2, -1e-9]]), a, b, c)
    front = winding.solid_angles(np.array([[0.2, 0.2, 1e-9]]), a, b, c)
    assert behind[0] == pytest.approx(2 * np.pi, rel=1e-6) and front[0] == pytest.approx(-2 * np.pi, rel=1e-6)
    assert winding.solid_angles(np.array([[0.2, 0.2, 0.0]]), a, b, c)[0] == 0.0


@pytest.mark.parametrize("make", [shapes.torus_knot, shapes.cup, shapes.nested_shells])
def test_tree_matches_the_exact_sum(make) -> None:
    v, f = make()
    tris, _ = shapes.triangles(f)
    rng = np.random.default_rng(1)
    lo, hi = v.min(axis=0), v.max(axis=0)
    pts = rng.uniform(lo - 0.1, hi + 0.1, (150, 3))
    exact = winding.brute_force_winding(pts, v, tris)
    approx = winding.WindingTree(v, tris).winding(pts)
    err = np.abs(exact - approx)
    assert err.max() < 0.05 and err.mean() < 0.005, "well inside the interior test's margin of 0.25"
    assert set(np.round(exact, 6)) <= {0.0, 1.0, 2.0}, "closed shapes have integer winding numbers"


@pytest.mark.parametrize("make", [shapes.comb, shapes.torus_knot, shapes.cup, shapes.uv_sphere])
def test_closed_shapes_with_crevices_lose_no_face(make) -> None:
    v, f = make()
    tris, tri_face = shapes.triangles(f)
    w = winding.face_winding(v, tris, tri_face, len(f))
    assert np.abs(w - 0.5).max() < 0.1, "every face of a closed oriented surface has 0.5 mean winding"
    assert not interior(v, f).any()


def test_a_comb_with_its_teeth_in_separate_parts_keeps_them() -> None:
    v, f = shapes.comb()
    rng = np.random.default_rng(2)
    f = f[rng.permutation(len(f))]
    assert not interior(v, f).any()


@pytest.mark.parametrize("scramble", [False, True])
def test_nested_shell_is_interior(scramble) -> None:
    v, f = shapes.nested_shells()
    if scramble:
        flip = np.random.default_rng(4).random(len(f)) < 0.5
        f = np.where(flip[:, None], f[:, ::-1], f)
    mask = interior(v, f)
    inner = np.linalg.norm(v[f].mean(axis=1), axis=1) < 0.75
    assert inner.sum() == 360 and np.array_equal(mask, inner)


def test_a_part_resting_on_an_inward_patch_is_kept() -> None:
    v, f = shapes.assembly((2, 1, 1))
    flip = v[f].mean(axis=1)[:, 2] > 0.4 - 1e-9
    f = np.where(flip[:, None], f[:, ::-1], f)
    vb, fb = shapes.uv_sphere(0.05, rings=8, segments=12, centre=(0.4, 0.2, 0.47))
    tris = np.vstack([shapes.triangles(f)[0], fb + len(v)])
    assert not interior(np.vstack([v, vb]), tris)[-len(fb):].any(), "the flipped top must not enclose it"


@pytest.mark.parametrize("parts", [(4, 1, 1), (3, 2, 2), (2, 2, 2), (4, 4, 4)])
def test_internal_walls_of_a_merged_assembly_are_interior(parts) -> None:
    v, f = shapes.assembly(parts)
    c = v[f].mean(axis=1)
    walls = ((c > v.min(axis=0) + 1e-9) & (c < v.max(axis=0) - 1e-9)).all(axis=1)
    assert walls.sum() > 0
    assert np.array_equal(interior(v, f), walls)


def test_walls_are_found_whatever_the_orientation_and_not_through_a_hole() -> None:
    v, f = shapes.assembly((3, 2, 2))
    c = v[f].mean(axis=1)
    walls = ((c > v.min(axis=0) + 1e-9) & (c < v.max(axis=0) - 1e-9)).all(axis=1)
    flip = np.random.default_rng(3).random(len(f)) < 0.5
    scrambled = np.where(flip[:, None], f[:, ::-1], f)
    assert np.array_equal(interior(v, scrambled), walls)
    v, f = shapes.assembly((2, 1, 1))
    c = v[f].mean(axis=1)
    holed = np.delete(f, np.flatnonzero(c[:, 0] < 1e-9)[0], axis=0)
    assert interior(v, f).any() and not interior(v, holed).any(), "through a hole the wall's side is outside"


def test_partly_buried_closed_part_is_kept_whole() -> None:
    va, fa = shapes.uv_sphere(1.0)
    vb, fb = shapes.uv_sphere(0.5, centre=(0.9, 0.0, 0.0))
    v, f = np.vstack([va, vb]), np.vstack([fa, fb + len(va)])
    assert not interior(v, f).any(), "deleting the buried half would open the small sphere"


def test_components_and_manifold_flags() -> None:
    v, f = shapes.assembly((2, 1, 1))
    vb, fb = shapes.comb()
    f = np.vstack([f, fb + len(v)])
    _, edge, face = incidence(f)
    comp = inside.face_components(edge, face, len(f))
    assert comp.max() == 1 and len(set(comp[:len(f) - len(fb)])) == 1


def test_regions_whose_removal_would_open_the_mesh_are_kept() -> None:
    v, f = shapes.assembly((2, 1, 1))
    _, edge, face = incidence(f)
    c = v[f].mean(axis=1)
    walls = ((c > v.min(axis=0) + 1e-9) & (c < v.max(axis=0) - 1e-9)).all(axis=1)
    assert np.array_equal(inside.without_opening(walls, edge, face), walls)
    outer_patch = walls | ((c[:, 0] > 0.3) & (c[:, 0] < 0.4))
    assert np.array_equal(inside.without_opening(outer_patch, edge, face), np.zeros(len(f), dtype=bool))
    vs, fs = shapes.nested_shells()
    _, edge, face = incidence(fs)
    inner = np.linalg.norm(vs[fs].mean(axis=1), axis=1) < 0.75
    half = inner & (vs[fs].mean(axis=1)[:, 2] > 0)
    assert np.array_equal(inside.without_opening(inner, edge, face), inner)
    assert not inside.without_opening(half, edge, face).any()
