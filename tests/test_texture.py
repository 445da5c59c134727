"""Texture baking: colours reproduced from synthetic views, occlusion, push-pull fill, row orientation."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from backend.io.views import View
from backend.post.texture import (bake_texture, clip_positions, depth_map, push_pull, render_textured,
                                  uv_texels, view_contribution)
from backend.post.uv import UVMesh, compute_uv
from backend.raster import get_rasterizer


@pytest.fixture(scope="module")
def rasterizer():
    """Our CPU rasterizer."""
    return get_rasterizer("torch", "cpu")


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray = np.array([0.0, 0.0, 1.0])) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV world-to-camera (R, t) for a camera at eye looking at target (y down in the image)."""
    z = target - eye
    z = z / np.linalg.norm(z)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-6:
        x = np.cross(z, np.array([0.0, 1.0, 0.0]))
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])
    return R, -R @ eye


def vertex_colour_view(name: str, vertices: np.ndarray, faces: np.ndarray, colours: np.ndarray,
                       eye: np.ndarray, rasterizer, size: int = 128) -> View:
    """A synthetic photograph: the mesh with per-vertex colours, rendered by our rasterizer."""
    K = np.array([[size * 1.2, 0, size / 2], [0, size * 1.2, size / 2], [0, 0, 1.0]])
    R, t = look_at(eye, np.zeros(3))
    view = View(name, np.zeros((size, size, 3), np.float32), np.zeros((size, size), bool), K, R, t)
    _, clip = clip_positions(vertices, view)
    tri = torch.as_tensor(faces, dtype=torch.int32)
    rast = rasterizer.rasterize(torch.as_tensor(clip, dtype=torch.float32)[None], tri, (size, size))
    image = rasterizer.interpolate(torch.as_tensor(colours, dtype=torch.float32)[None], rast, tri)[0]
    view.image = image.numpy().astype(np.float32)
    view.mask = (rast[0, ..., 3] > 0).numpy()
    return view


def colour_field(points: np.ndarray) -> np.ndarray:
    """A smooth RGB pattern over space."""
    return np.stack([0.5 + 0.4 * np.sin(3 * points[:, 0]), 0.5 + 0.4 * np.cos(2 * points[:, 1]),
                     0.5 + 0.4 * np.sin(2 * points[:, 2] + 1)], axis=1)


def orbit(n: int, radius: float = 4.0) -> list[np.ndarray]:
    """Camera centres around the origin at two heights."""
    return [radius * np.array([np.cos(a) * np.cos(e), np.sin(a) * np.cos(e), np.sin(e)])
            for a, e in zip(np.linspace(0, 2 * np.pi, n, endpoint=False), [0.5, -0.4] * n)]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two [0, 1] arrays."""
    return float(10 * np.log10(1.0 / max(np.mean((a - b) ** 2), 1e-12)))


def test_bake_reproduces_colours_of_held_out_view(rasterizer) -> None:
    sphere = trimesh.creation.icosphere(subdivisions=4)
    v, f = np.asarray(sphere.vertices) * np.array([1.0, 0.8, 0.7]), np.asarray(sphere.faces)
    colours = colour_field(v)
    views = [vertex_colour_view(f"v{i}", v, f, colours, eye, rasterizer) for i, eye in enumerate(orbit(8))]
    mesh = compute_uv(v, f)
    calls = []
    texture = bake_texture(mesh, views, 256, rasterizer, progress=lambda i, n: calls.append((i, n)))
    assert texture.shape == (256, 256, 3) and texture.dtype == np.uint8
    assert calls[-1] == (8, 8)
    held_out = vertex_colour_view("held", v, f, colours, np.array([2.0, 2.5, 2.2]), rasterizer)
    image, covered = render_textured(mesh, texture, held_out, rasterizer)
    inside = covered & held_out.mask
    assert psnr(image[inside], held_out.image[inside]) > 30


def test_texture_rows_put_v_up_at_the_top(rasterizer) -> None:
    quad_v = np.array([[-1.0, -1.0, 0.0], [1.0, -1.0, 0.0], [1.0, 1.0, 0.0], [-1.0, 1.0, 0.0]])
    quad_f = np.array([[0, 1, 2], [0, 2, 3]])
    mesh = UVMesh(quad_v, quad_f, (quad_v[:, :2] + 1) / 2, np.arange(4))
    colours = np.where(quad_v[:, 1:2] > 0, [[1.0, 0.0, 0.0]], [[0.0, 0.0, 1.0]])
    view = vertex_colour_view("top", quad_v, quad_f, colours, np.array([0.0, 0.01, 3.0]), rasterizer)
    texture = bake_texture(mesh, [view], 64, rasterizer)
    assert texture[4, 32, 0] > 200 and texture[4, 32, 2] < 50
    assert texture[-5, 32, 2] > 200 and texture[-5, 32, 0] < 50


def occluded_scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A large green back quad at z = 0 and a small red front quad at z = 1, both facing +z."""
    back = np.array([[-1.0, -1.0, 0.0], [1.0, -1.0, 0.0], [1.0, 1.0, 0.0], [-1.0, 1.0, 0.0]])
    front = back * [0.4, 0.4, 0.0] + [0.0, 0.0, 1.0]
    v = np.concatenate([back, front])
    f = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]])
    colours = np.array([[0.0, 1.0, 0.0]] * 4 + [[1.0, 0.0, 0.0]] * 4)
    return v, f, colours


def test_hidden_points_take_nothing_from_the_view(rasterizer) -> None:
    v, f, colours = occluded_scene()
    view = vertex_colour_view("front", v, f, colours, np.array([0.0, 0.01, 4.0]), rasterizer)
    mesh = UVMesh(v, f, np.zeros((len(v), 2)), np.arange(len(v)))
    points = np.array([[0.0, 0.0, 0.0], [0.1, -0.1, 0.0], [0.85, 0.85, 0.0], [0.0, 0.0, 1.0]])
    normals = np.tile([0.0, 0.0, 1.0], (4, 1))
    weight, colour = view_contribution(points, normals, view, depth_map(mesh, view, rasterizer), 0.02)
    assert weight[0] == 0 and weight[1] == 0
    assert weight[2] > 0 and colour[2, 1] > 0.9 and colour[2, 0] < 0.1
    assert weight[3] > 0 and colour[3, 0] > 0.9


def test_occluded_texels_baked_from_the_view_that_sees_them(rasterizer) -> None:
    v, f, colours = occluded_scene()
    uv = np.concatenate([(v[:4, :2] + 1) / 4, (v[4:, :2] / 0.4 + 1) / 4 + [0.5, 0.0]])
    mesh = UVMesh(v, f, uv, np.arange(len(v)))
    front = vertex_colour_view("front", v, f, colours, np.array([0.0, 0.01, 4.0]), rasterizer)
    side = vertex_colour_view("side", v, f, colours, np.array([3.0, 0.0, 1.0]), rasterizer)
    side.image = np.where(side.mask[..., None], np.float32([0.0, 0.0, 1.0]), side.image)
    texture = bake_texture(mesh, [front, side], 64, rasterizer)
    centre = texture[64 - 16, 16]
    assert centre[0] < 30, centre
    assert centre[2] > 200, centre


def test_uv_texels_cover_the_chart(rasterizer) -> None:
    v, f, _ = occluded_scene()
    uv = np.concatenate([(v[:4, :2] + 1) / 4, (v[4:, :2] / 0.4 + 1) / 4 + [0.5, 0.0]])
    covered, points, normals = uv_texels(UVMesh(v, f, uv, np.arange(len(v))), 64, rasterizer)
    assert covered.sum() == pytest.approx(2 * 32 * 32, rel=0.05)
    assert np.allclose(np.abs(normals[:, 2]), 1.0)
    assert points[:, 2].min() == pytest.approx(0.0) and points[:, 2].max() == pytest.approx(1.0)


def test_push_pull_fills_every_texel_from_neighbours() -> None:
    colour = np.zeros((37, 50, 3))
    weight = np.zeros((37, 50))
    colour[5:10, 5:10] = [1.0, 0.5, 0.0]
    weight[5:10, 5:10] = 1.0
    filled = push_pull(colour, weight)
    assert np.allclose(filled, [1.0, 0.5, 0.0])
    colour[30:35, 40:45] = [0.0, 0.0, 1.0]
    weight[30:35, 40:45] = 1.0
    filled = push_pull(colour, weight)
    assert np.allclose(filled[5:10, 5:10], [1.0, 0.5, 0.0])
    assert filled[11, 11, 0] > filled[11, 11, 2] and filled[29, 39, 2] > filled[29, 39, 0]
