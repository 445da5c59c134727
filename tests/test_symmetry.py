"""Symmetry-plane detection on moved meshes, asymmetric rejection, and the mirror loss."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from scipy.spatial.transform import Rotation

from backend.post.symmetry import SymmetryPlane, detect_symmetry, mirror_loss, symmetry_score

MONKEY_SCRIPT = """
import json, sys, bpy
bpy.ops.mesh.primitive_monkey_add()
me = bpy.context.active_object.data
me.calc_loop_triangles()
json.dump({"v": [list(x.co) for x in me.vertices], "f": [list(t.vertices) for t in me.loop_triangles]},
          open(sys.argv[1], "w"))
"""


@pytest.fixture(scope="module")
def suzanne(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, np.ndarray]:
    """Blender's Suzanne (symmetric about x = 0), made by bpy in a subprocess."""
    out = tmp_path_factory.mktemp("monkey") / "monkey.json"
    subprocess.run([sys.executable, "-c", MONKEY_SCRIPT, str(out)], check=True, capture_output=True, timeout=120)
    data = json.loads(out.read_text())
    return np.array(data["v"], dtype=np.float64), np.array(data["f"], dtype=np.int64)


def symmetric_blob() -> tuple[np.ndarray, np.ndarray]:
    """An ellipsoid with bumps, mirror-symmetric about x = 0 only."""
    sphere = trimesh.creation.icosphere(subdivisions=4)
    v = np.asarray(sphere.vertices) * np.array([1.0, 0.75, 0.55])
    mirrored = np.abs(v[:, :1])
    bumps = [((0.6, 0.3, 0.3), 0.25), ((0.0, -0.6, 0.2), 0.3), ((0.5, -0.2, -0.4), 0.15)]
    x = np.concatenate([mirrored, v[:, 1:]], axis=1)
    for centre, amp in bumps:
        v = v + amp * np.exp(-np.sum((x - centre) ** 2, axis=1) / 0.08)[:, None] * v / np.linalg.norm(v, axis=1)[:, None]
    return v, np.asarray(sphere.faces)


def one_sided_bump() -> tuple[np.ndarray, np.ndarray]:
    """The symmetric blob with a large bump on one side only."""
    v, f = symmetric_blob()
    c = np.array([0.7, 0.4, 0.3]) / np.linalg.norm([0.7, 0.4, 0.3])
    radial = v / np.linalg.norm(v, axis=1)[:, None]
    return v + 0.8 * np.exp(-np.sum((radial - c) ** 2, axis=1) / 0.15)[:, None] * v, f


def lumpy_blob(seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """A sphere with random bumps: no reflection symmetry."""
    sphere = trimesh.creation.icosphere(subdivisions=4)
    v = np.asarray(sphere.vertices) * np.array([1.0, 0.8, 0.6])
    rng = np.random.default_rng(seed)
    for _ in range(5):
        c = rng.normal(size=3)
        c /= np.linalg.norm(c)
        v = v + rng.uniform(0.4, 0.7) * np.exp(-np.sum((v - c) ** 2, axis=1) / 0.3)[:, None] * v
    return v, np.asarray(sphere.faces)


def moved(v: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertices under a random rigid motion, with the rotation and translation."""
    rot = Rotation.random(random_state=seed).as_matrix()
    shift = np.random.default_rng(seed).uniform(-3, 3, size=3)
    return v @ rot.T + shift, rot, shift


def check_plane(plane: SymmetryPlane, v: np.ndarray, rot: np.ndarray, shift: np.ndarray,
                normal: np.ndarray, offset: float) -> None:
    """Plane within 1 degree and 0.5 % of the bbox diagonal of the true plane normal . x = offset (local)."""
    true_n = rot @ normal
    true_point = rot @ (normal * offset) + shift
    angle = np.degrees(np.arccos(min(1.0, abs(float(plane.normal @ true_n)))))
    diag = np.linalg.norm(v.max(0) - v.min(0))
    assert angle < 1.0, angle
    assert abs(float((plane.point - true_point) @ true_n)) < 0.005 * diag


@pytest.mark.parametrize("seed", [1, 2])
def test_suzanne_plane_found_after_rigid_motion(suzanne: tuple[np.ndarray, np.ndarray], seed: int) -> None:
    v, f = suzanne
    v2, rot, shift = moved(v, seed)
    plane, symmetric = detect_symmetry(v2, f)
    assert symmetric
    check_plane(plane, v2, rot, shift, np.array([1.0, 0.0, 0.0]), 0.0)
    assert plane.to_dict().keys() == {"point", "normal", "score"}


def test_procedural_symmetric_shape() -> None:
    v, f = symmetric_blob()
    v2, rot, shift = moved(v, 7)
    plane, symmetric = detect_symmetry(v2, f)
    assert symmetric and plane.score < 0.002
    check_plane(plane, v2, rot, shift, np.array([1.0, 0.0, 0.0]), 0.0)


@pytest.mark.parametrize("make", [lumpy_blob, one_sided_bump])
def test_asymmetric_shape_is_not_symmetric(make) -> None:
    v, f = make()
    plane, symmetric = detect_symmetry(v, f)
    assert not symmetric
    assert plane.score > 0.01
    assert abs(symmetry_score(v, f, plane) - plane.score) < 0.3 * plane.score


@pytest.mark.parametrize("name,normal", [("suzanne", (1, 0, 0)), ("spot", (1, 0, 0))])
def test_shared_meshes(shared_meshes: Path, name: str, normal: tuple) -> None:
    mesh = trimesh.load(shared_meshes / f"{name}.obj", force="mesh", process=False)
    v, f = np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces)
    v2, rot, shift = moved(v, 11)
    plane, symmetric = detect_symmetry(v2, f)
    assert symmetric
    n = np.array(normal, dtype=np.float64)
    check_plane(plane, v2, rot, shift, n, float(n @ (v.max(0) + v.min(0)) / 2))


def test_mirror_loss_zero_when_symmetric_and_differentiable() -> None:
    v, _ = symmetric_blob()
    plane = SymmetryPlane(np.zeros(3), np.array([1.0, 0.0, 0.0]), 0.0)
    verts = torch.tensor(v, dtype=torch.float32, requires_grad=True)
    assert mirror_loss(verts, plane).item() < 1e-10
    bent = v.copy()
    bent[bent[:, 0] > 0.2, 0] += 0.1
    verts = torch.tensor(bent, dtype=torch.float32, requires_grad=True)
    loss = mirror_loss(verts, plane.to_dict())
    loss.backward()
    assert loss.item() > 1e-3
    assert torch.isfinite(verts.grad).all() and verts.grad.abs().sum() > 0
    opt = torch.optim.Adam([verts], lr=0.005)
    for _ in range(60):
        opt.zero_grad()
        step_loss = mirror_loss(verts, plane)
        step_loss.backward()
        opt.step()
    assert mirror_loss(verts, plane).item() < 0.3 * loss.item()
