"""Remesh guard: a remesh that never returns or crashes is killed and the mesh kept."""
from __future__ import annotations

import os
import time

import gpytoolbox
import numpy as np
import trimesh

from backend.geometry.mesh_ops import collapse_degenerate, mean_edge_length
from backend.geometry.remesh import guarded_remesh


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
