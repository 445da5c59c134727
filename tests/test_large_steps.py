"""Large Steps parameterisation, its optimiser, the pixel-footprint edge floor and the weighted shading loss."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch
import trimesh

from backend.io.views import View
from backend.optim.large_steps import SmoothParam, UniformAdam, system_matrix
from backend.optim.losses import shading_loss
from backend.optim.schedule import make_schedule, pixel_footprint
from backend.post.geometry import offset_along_normals


def _sphere() -> trimesh.Trimesh:
    return trimesh.creation.icosphere(subdivisions=3)


def test_system_matrix_is_identity_plus_scaled_laplacian() -> None:
    m = _sphere()
    rows, cols, vals = system_matrix(m.faces, len(m.vertices), 7.0)
    a = sp.coo_matrix((vals, (rows, cols)), shape=(len(m.vertices),) * 2).tocsr()
    assert abs(a - a.T).max() < 1e-12
    np.testing.assert_allclose(a @ np.ones(len(m.vertices)), 1.0, atol=1e-9)  # L 1 = 0
    np.testing.assert_allclose(a.diagonal(), 1 + 7.0 * np.bincount(m.edges_unique.ravel()))


def test_parameterisation_round_trip_and_gradient() -> None:
    m = _sphere()
    x = torch.tensor(m.vertices, dtype=torch.float32)
    param = SmoothParam(x, m.faces, 19.0)
    torch.testing.assert_close(param.vertices().detach(), x, atol=2e-5, rtol=0)
    w = torch.randn_like(x)
    (param.vertices() * w).sum().backward()
    rows, cols, vals = system_matrix(m.faces, len(x), 19.0)
    a = sp.coo_matrix((vals, (rows, cols)), shape=(len(x),) * 2).tocsc()
    expected = spla.spsolve(a, w.numpy().astype(np.float64))
    np.testing.assert_allclose(param.u.grad.numpy(), expected, atol=1e-4)


def test_gradient_is_smoothed() -> None:
    """A gradient on one vertex spreads to its neighbours instead of pulling a spike."""
    m = _sphere()
    param = SmoothParam(torch.tensor(m.vertices, dtype=torch.float32), m.faces, 19.0)
    opt = UniformAdam([param.u], lr=0.01)
    x0 = param.vertices().detach().clone()
    loss = -(param.vertices()[0] * torch.tensor(m.vertices[0], dtype=torch.float32)).sum()
    loss.backward()
    opt.step()
    move = (param.vertices().detach() - x0).norm(dim=1)
    neighbours = m.vertex_neighbors[0]
    assert move[0] > 0
    assert move[neighbours].min() > 0.3 * move[0]  # plain gradient descent would move vertex 0 only


def test_uniform_adam_step_is_bounded_by_lr_and_converges() -> None:
    target = torch.linspace(-1, 1, 30).reshape(10, 3)
    p = torch.nn.Parameter(torch.zeros(10, 3))
    opt = UniformAdam([p], lr=0.05)
    ((p - target) ** 2).sum().backward()
    opt.step()
    assert p.detach().abs().max() <= 0.05 * (1 + 1e-4)
    for _ in range(400):
        opt.zero_grad()
        ((p - target) ** 2).sum().backward()
        opt.step()
    assert (p.detach() - target).abs().max() < 0.02


def test_pixel_footprint_is_distance_over_focal() -> None:
    r = np.eye(3)
    views = [View(f"v{i}", np.zeros((100, 200, 3)), np.ones((100, 200), bool),
                  np.array([[f, 0, 100], [0, f, 50], [0, 0, 1.0]]), r, np.array([0, 0, 4.0]))
             for i, f in enumerate((100.0, 200.0, 400.0))]
    assert abs(pixel_footprint(views, 200) - 4.0 / 200.0) < 1e-12
    assert abs(pixel_footprint(views, 100) - 4.0 / 100.0) < 1e-12  # rendered at half size: pixels twice as big
    sch = make_schedule(100, 200, "cpu").with_footprint(views)
    assert abs(sch.min_edge - sch.px_per_edge * pixel_footprint(views, sch.max_sides[-1])) < 1e-12
    assert abs(sch.silhouette_offset() - sch.silhouette_bias_px * pixel_footprint(views, sch.max_sides[-1])) < 1e-12
    assert sch.edge_length(1e-6, 1.0) >= sch.min_edge


def test_offset_along_normals_moves_a_sphere_inwards() -> None:
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=1.0)
    v = offset_along_normals(np.asarray(sphere.vertices), np.asarray(sphere.faces), -0.01)
    r = np.linalg.norm(v, axis=1)
    assert np.allclose(r, 0.99, atol=1e-4)


def test_weighted_shading_loss_ignores_weighted_out_pixels() -> None:
    color = torch.rand(50, 3)
    target = torch.rand(50, 3)
    weight = (torch.arange(50) % 3 == 0).float()
    keep = weight > 0
    torch.testing.assert_close(shading_loss(color, target, weight), shading_loss(color[keep], target[keep]))


def test_vertex_step_anneals_over_the_last_phase_only() -> None:
    from dataclasses import replace

    sch = replace(make_schedule(1000, 256, "cpu"), final_lr_ratio=0.1)
    last = sch.remesh_steps[-1]
    assert sch.lr_factor(0) == 1.0 and sch.lr_factor(last - 1) == 1.0
    assert abs(sch.lr_factor(last) - 1.0) < 1e-12
    factors = [sch.lr_factor(s) for s in range(last, 1000)]
    assert all(a >= b for a, b in zip(factors, factors[1:]))
    assert abs(factors[-1] - 0.1) < 0.01
