"""Remesh guard: a remesh that never returns or crashes is killed and the mesh kept; one whose output is not a
remesh of its input (far too many faces or too much area) is redone without creases or not taken."""
from __future__ import annotations

import os
import time

import gpytoolbox
import numpy as np
import trimesh

from backend.geometry.mesh_ops import collapse_degenerate, mean_edge_length
from backend.geometry.remesh import PLAUSIBLE_FACES, botsch_remesh, guarded_remesh, implausible


def never_returns(vertices: np.ndarray, faces: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray]:
    """A remesh that hangs forever."""
    while True:
        time.sleep(0.1)


def crashes(vertices: np.ndarray, faces: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray]:
    """A remesh that kills its own process, as a segfault would."""
    os._exit(11)


def test_hanging_remesh_is_killed_and_mesh_kept() -> None:
    m = trimesh.creation.icosphere(2)
    t0 = time.monotonic()
    res = guarded_remesh(m.vertices, m.faces, 0.1, timeout_s=1.0, remesh_fn=never_returns)
    assert time.monotonic() - t0 < 4.0
    assert not res.ok and "within" in res.message
    assert np.array_equal(res.vertices, m.vertices) and np.array_equal(res.faces, m.faces)


def test_crashing_remesh_is_reported_and_mesh_kept() -> None:
    m = trimesh.creation.icosphere(2)
    res = guarded_remesh(m.vertices, m.faces, 0.1, timeout_s=20.0, remesh_fn=crashes)
    assert not res.ok and "died" in res.message
    assert np.array_equal(res.vertices, m.vertices)


def test_real_remesh_halves_edge_length() -> None:
    m = trimesh.creation.icosphere(3)
    h = mean_edge_length(m.vertices, m.faces) / 2
    res = guarded_remesh(m.vertices, m.faces, h, timeout_s=60.0)
    assert res.ok, res.message
    assert abs(mean_edge_length(res.vertices, res.faces) - h) < 0.25 * h
    assert trimesh.Trimesh(res.vertices, res.faces).is_watertight


def test_collapse_degenerate_removes_zero_area_triangles() -> None:
    m = trimesh.creation.icosphere(2)
    v = m.vertices.copy()
    a, b = m.faces[0, :2]
    v[b] = v[a] + 1e-9
    assert trimesh.Trimesh(v, m.faces, process=False).area_faces.min() < 1e-8
    v2, f2 = collapse_degenerate(v, m.faces)
    out = trimesh.Trimesh(v2, f2, process=False)
    assert out.area_faces.min() > 1e-6
    assert len(v2) == len(v) - 1 and len(f2) == len(m.faces) - 2
    assert out.is_watertight


def remesh_too_fine_with_creases(vertices: np.ndarray, faces: np.ndarray, h: float,
                                 feature_edges: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The real remesh, but given creases it returns a mesh 2.25x too fine (as a crease-keeping remesh that folded
    sheets into the surface returned 1.35x the faces the area holds)."""
    return botsch_remesh(vertices, faces, h / 1.5 if feature_edges is not None else h)


def remesh_always_too_fine(vertices: np.ndarray, faces: np.ndarray, h: float,
                           feature_edges: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A remesh that always returns 2.25x the faces the area holds at h."""
    return botsch_remesh(vertices, faces, h / 1.5)


def test_implausible_crease_remesh_is_redone_without_creases() -> None:
    from backend.optim.creases import CreaseRule

    m = trimesh.creation.box(extents=(1, 1, 1)).subdivide().subdivide().subdivide()
    res = guarded_remesh(m.vertices, m.faces, 0.1, timeout_s=60.0, remesh_fn=remesh_too_fine_with_creases,
                         creases=CreaseRule(50.0))
    assert res.ok and res.crease_edges == 0
    assert "implausible" in res.message and "without creases" in res.message
    assert abs(mean_edge_length(res.vertices, res.faces) - 0.1) < 0.25 * 0.1
    assert len(res.faces) < PLAUSIBLE_FACES * 6.0 / (0.433 * 0.1 ** 2)


def test_implausible_remesh_keeps_the_mesh() -> None:
    m = trimesh.creation.icosphere(3)
    h = mean_edge_length(m.vertices, m.faces)
    res = guarded_remesh(m.vertices, m.faces, h, timeout_s=60.0, remesh_fn=remesh_always_too_fine)
    assert not res.ok and "implausible" in res.message and "faces where" in res.message
    assert np.array_equal(res.vertices, m.vertices) and np.array_equal(res.faces, m.faces)


def test_real_remeshes_are_plausible() -> None:
    from backend.optim.creases import CreaseRule

    sphere = trimesh.creation.icosphere(4)
    box = trimesh.creation.box(extents=(1, 2, 0.5)).subdivide().subdivide().subdivide()
    for mesh, creases in ((sphere, None), (box, None), (box, CreaseRule(50.0))):
        for scale in (0.5, 1.0, 3.0):
            h = scale * mean_edge_length(mesh.vertices, mesh.faces)
            res = guarded_remesh(mesh.vertices, mesh.faces, h, timeout_s=60.0, creases=creases)
            assert res.ok and res.message == "", (scale, res.message)
            assert implausible(mesh.vertices, mesh.faces, res.vertices, res.faces, h) is None


def cube_edge_points(n: int = 40) -> np.ndarray:
    """Points along the twelve edges of the unit cube centred at the origin (its corners left out)."""
    t = np.linspace(-0.45, 0.45, n)
    out = []
    for axis in range(3):
        a, b = [i for i in range(3) if i != axis]
        for sa in (-0.5, 0.5):
            for sb in (-0.5, 0.5):
                p = np.zeros((n, 3))
                p[:, axis], p[:, a], p[:, b] = t, sa, sb
                out.append(p)
    return np.concatenate(out)


def test_crease_keeping_remesh_keeps_the_cube_edges() -> None:
    from backend.geometry.remesh import crease_edges
    from backend.optim.creases import CreaseRule
    from backend.mesh.distance import point_to_surface

    m = trimesh.creation.box(extents=(1, 1, 1)).subdivide().subdivide().subdivide()
    assert len(crease_edges(m.vertices, m.faces, 50.0)) == 12 * 8  # each cube edge split into 8 segments
    edges = cube_edge_points()
    plain = guarded_remesh(m.vertices, m.faces, 0.1, timeout_s=60.0)
    kept = guarded_remesh(m.vertices, m.faces, 0.1, timeout_s=60.0, creases=CreaseRule(50.0))
    assert plain.ok and kept.ok and plain.crease_edges == 0 and kept.crease_edges == 96
    # the plain remesh cuts the edges off (about a quarter of an edge length deep), the crease-keeping one not
    assert point_to_surface(edges, plain.vertices, plain.faces)[0].mean() > 0.02
    assert point_to_surface(edges, kept.vertices, kept.faces)[0].max() < 1e-6
    theta = np.degrees(gpytoolbox.dihedral_angles(kept.vertices, kept.faces.astype(np.int32)))
    assert int((theta > 80).sum()) // 2 >= 12 * 8  # the crease edges still turn by ~90 degrees
    assert np.nanmax(theta[theta < 80]) < 1.0  # and the faces stay flat
    assert trimesh.Trimesh(kept.vertices, kept.faces).is_watertight
    assert abs(mean_edge_length(kept.vertices, kept.faces) - 0.1) < 0.25 * 0.1



def test_filtered_crease_rule_ignores_noise_and_finds_true_creases() -> None:
    from backend.optim.creases import CreaseRule

    rng = np.random.default_rng(0)
    sphere = trimesh.creation.icosphere(4)
    noisy = sphere.vertices + 0.01 * rng.standard_normal(sphere.vertices.shape)
    raw, filtered = CreaseRule(35.0), CreaseRule(35.0, denoise=6, sigma=0.5)
    assert len(raw.edges(noisy, sphere.faces)) > 200  # noise kinks a raw dihedral rule would freeze
    assert len(filtered.edges(noisy, sphere.faces)) == 0
    box = trimesh.creation.box(extents=(1, 1, 1)).subdivide().subdivide().subdivide()
    noisy_box = box.vertices + 0.01 * rng.standard_normal(box.vertices.shape)
    truth = {tuple(e) for e in CreaseRule(50.0).edges(box.vertices, box.faces)}
    found = {tuple(e) for e in filtered.edges(noisy_box, box.faces)}
    assert found == truth and len(truth) == 96
