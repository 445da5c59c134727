"""Bilateral normal denoising of the returned mesh: removes small bumps, keeps creases, size and place."""
from __future__ import annotations

import numpy as np
import trimesh

from backend.post.denoise import bilateral_normal_denoise, face_neighbours
from backend.post.geometry import face_normals_and_areas, vertex_normals


def bumpy(v: np.ndarray, f: np.ndarray, amplitude: float, seed: int = 0) -> np.ndarray:
    """Vertices moved along their normals by uniform noise of +-amplitude."""
    rng = np.random.default_rng(seed)
    return v + rng.uniform(-amplitude, amplitude, size=(len(v), 1)) * vertex_normals(v, f)


def cube(subdivisions: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """A 2x2x2 box with its faces subdivided (sharp 90 degree creases)."""
    box = trimesh.creation.box(extents=(2.0, 2.0, 2.0))
    v, f = box.vertices, box.faces
    for _ in range(subdivisions):
        v, f = trimesh.remesh.subdivide(v, f)
    return np.asarray(v, dtype=np.float64), np.asarray(f, dtype=np.int64)


def test_face_neighbours_share_a_vertex() -> None:
    f = np.array([[0, 1, 2], [1, 3, 2], [3, 4, 5]])
    i, j = face_neighbours(f, 6)
    assert sorted(zip(i.tolist(), j.tolist())) == [(0, 1), (1, 0), (1, 2), (2, 1)]


def test_noisy_sphere_gets_round_again_without_shrinking() -> None:
    sphere = trimesh.creation.icosphere(subdivisions=4)
    v, f = np.asarray(sphere.vertices), np.asarray(sphere.faces)
    edge = float(sphere.edges_unique_length.mean())
    noisy = bumpy(v, f, 0.3 * edge)
    out = bilateral_normal_denoise(noisy, f)
    err_before = np.abs(np.linalg.norm(noisy, axis=1) - 1).mean()
    err_after = np.abs(np.linalg.norm(out, axis=1) - 1).mean()
    assert err_after < 0.6 * err_before
    assert abs(np.linalg.norm(out, axis=1).mean() - 1) < 0.002, "no shrinkage"
    n_before, _ = face_normals_and_areas(noisy, f)
    n_after, _ = face_normals_and_areas(out, f)
    radial = out[f].mean(axis=1)
    radial /= np.linalg.norm(radial, axis=1, keepdims=True)
    assert np.mean(np.sum(n_after * radial, axis=1)) > np.mean(np.sum(n_before * radial, axis=1)) + 0.01


def test_creases_stay_sharp_and_a_clean_mesh_stays_put() -> None:
    v, f = cube()
    assert np.abs(bilateral_normal_denoise(v, f) - v).max() < 1e-6
    edge = float(np.linalg.norm(v[f[:, 0]] - v[f[:, 1]], axis=1).mean())
    noisy = bumpy(v, f, 0.15 * edge, seed=1)
    out = bilateral_normal_denoise(noisy, f)
    axes = np.abs(face_normals_and_areas(out, f)[0]).max(axis=1)
    axes_noisy = np.abs(face_normals_and_areas(noisy, f)[0]).max(axis=1)
    assert np.mean(axes > np.cos(np.radians(3))) > max(0.9, np.mean(axes_noisy > np.cos(np.radians(3))) + 0.2)
    corner = out[np.argmax(v.sum(axis=1))]
    assert np.allclose(corner, [1, 1, 1], atol=0.1 * edge + 0.02), "the corner is not rounded off"


def test_scale_free() -> None:
    sphere = trimesh.creation.icosphere(subdivisions=3)
    v, f = np.asarray(sphere.vertices), np.asarray(sphere.faces)
    noisy = bumpy(v, f, 0.02)
    assert np.allclose(bilateral_normal_denoise(noisy * 7.0, f), 7.0 * bilateral_normal_denoise(noisy, f), atol=1e-9)
    assert np.array_equal(bilateral_normal_denoise(noisy, f, normal_iterations=0), noisy)
