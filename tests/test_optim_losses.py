"""Losses and shader: values on known inputs and gradients that point the right way."""
from __future__ import annotations

import numpy as np
import torch
import trimesh

from backend.optim.losses import (Topology, laplacian_loss, mask_loss, normal_consistency_loss, shading_loss,
                                  vertex_normals)
from backend.optim.schedule import make_schedule
from backend.optim.shader import NeuralShader, positional_encoding


def sphere(subdiv: int = 2) -> tuple[torch.Tensor, torch.Tensor, Topology]:
    m = trimesh.creation.icosphere(subdiv)
    return (torch.tensor(m.vertices, dtype=torch.float32), torch.tensor(m.faces, dtype=torch.int64),
            Topology.build(m.faces, len(m.vertices), torch.device("cpu")))


def test_mask_and_shading_losses() -> None:
    a = torch.tensor([[0.0, 1.0], [1.0, 0.5]])
    assert mask_loss(a, torch.ones(2, 2)).item() == 0.375
    assert shading_loss(torch.zeros(4, 3), torch.full((4, 3), 0.5)).item() == 0.5
    assert shading_loss(torch.zeros(0, 3), torch.zeros(0, 3)).item() == 0.0


def test_regularisers_zero_on_flat_and_smooth_and_grow_with_noise() -> None:
    grid = trimesh.creation.box().subdivide().subdivide()
    flat_v = torch.tensor(grid.vertices, dtype=torch.float32)
    topo = Topology.build(grid.faces, len(flat_v), torch.device("cpu"))
    # a cube's sides are flat: only pairs across its 12 edges (at 90 degrees) pay (1 - cos)^2 = 1
    assert len(topo.face_pairs) == 3 * len(grid.faces) // 2
    nc = normal_consistency_loss(flat_v, torch.tensor(grid.faces), topo).item()
    assert 0 < nc < 0.2
    v, f, topo = sphere(3)
    smooth_lap = laplacian_loss(v, topo).item()
    smooth_nc = normal_consistency_loss(v, f, topo).item()
    noisy = v + 0.02 * torch.randn(v.shape, generator=torch.Generator().manual_seed(0))
    assert laplacian_loss(noisy, topo).item() > 3 * smooth_lap
    assert normal_consistency_loss(noisy, f, topo).item() > 3 * smooth_nc
    # a gradient step on the Laplacian smooths the noise
    x = noisy.clone().requires_grad_(True)
    laplacian_loss(x, topo).backward()
    assert laplacian_loss(noisy - 0.05 * x.grad / x.grad.abs().max(), topo).item() < laplacian_loss(noisy, topo).item()


def test_crease_aware_normal_term_leaves_a_cube_sharp() -> None:
    from backend.geometry.remesh import crease_edges

    grid = trimesh.creation.box().subdivide().subdivide()
    v, f = torch.tensor(grid.vertices, dtype=torch.float32), torch.tensor(grid.faces)
    creases = crease_edges(grid.vertices, grid.faces, 35.0)
    assert len(creases) == 12 * 4
    plain = Topology.build(grid.faces, len(v), torch.device("cpu"))
    sharp = Topology.build(grid.faces, len(v), torch.device("cpu"), creases)
    # the plain normal term pulls the cube's edges round; told its creases, the cube is at rest
    assert len(plain.face_pairs) - len(sharp.face_pairs) == len(creases)
    assert normal_consistency_loss(v, f, plain).item() > 0.1
    assert normal_consistency_loss(v, f, sharp).item() < 1e-9
    # a bump on a face still costs, and the Laplacian is the plain one
    noisy = v + 0.02 * torch.randn(v.shape, generator=torch.Generator().manual_seed(0))
    assert normal_consistency_loss(noisy, f, sharp).item() > 1e-4
    assert torch.equal(sharp.laplacian.to_dense(), plain.laplacian.to_dense())


def test_vertex_normals_point_outward_on_sphere() -> None:
    v, f, _ = sphere(2)
    n = vertex_normals(v, f)
    cos = (n * torch.nn.functional.normalize(v, dim=1)).sum(1)
    assert cos.min().item() > 0.98


def test_shader_fits_a_colour_function() -> None:
    torch.manual_seed(0)
    shader = NeuralShader(n_freqs=2, hidden=32, layers=2)
    opt = torch.optim.Adam(shader.parameters(), lr=1e-2)
    pos = torch.rand(512, 3) * 2 - 1
    nrm = torch.nn.functional.normalize(pos, dim=1)
    target = torch.stack([0.5 + 0.4 * nrm[:, 2], 0.5 + 0.3 * pos[:, 0], torch.full_like(pos[:, 0], 0.2)], 1)
    first = None
    for _ in range(200):
        loss = shading_loss(shader(pos, nrm, nrm), target)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.25 * first and loss.item() < 0.03
    assert positional_encoding(pos, 3).shape == (512, 3 + 18)


def test_late_view_shader_fits_a_view_dependent_highlight() -> None:
    """The view direction joins late but still reaches the colour: a highlight along +z is learned."""
    torch.manual_seed(0)
    shader = NeuralShader(n_freqs=2, hidden=32, layers=3, late_view=True)
    opt = torch.optim.Adam(shader.parameters(), lr=1e-2)
    pos = torch.rand(512, 3) * 2 - 1
    nrm = torch.nn.functional.normalize(pos, dim=1)
    view = torch.nn.functional.normalize(torch.randn(512, 3), dim=1)
    target = (0.3 + 0.5 * view[:, 2:3].clamp(min=0) ** 2).expand(-1, 3)
    for _ in range(300):
        loss = shading_loss(shader(pos, nrm, view), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.04
    up = shader(pos, nrm, torch.tensor([[0.0, 0.0, 1.0]]).expand(512, 3)).mean()
    down = shader(pos, nrm, torch.tensor([[0.0, 0.0, -1.0]]).expand(512, 3)).mean()
    assert up - down > 0.3


def test_schedule_scales_with_iterations() -> None:
    s = make_schedule(2000, 256, "cpu")
    assert s.remesh_steps == [500, 1000, 1500]
    assert make_schedule(100, 256, "cpu").remesh_steps == [25, 50, 75]
    assert s.phase(0) == 0 and s.phase(1000) == 2 and s.phase(1999) == 3
    assert s.edge_length(0.1, area=1.0) == 0.05
    assert s.edge_length(0.001, area=1.0) > 0.0005
    assert np.all(np.array(s.max_sides) <= 256)


def test_shader_extra_steps_update_the_shader_only() -> None:
    import dataclasses

    from backend.io.views import View
    from backend.optim.viewset import ViewSet
    from backend.pipelines.reconstruct import Optimizer
    from backend.raster import get_rasterizer

    rng = np.random.default_rng(0)
    views = []
    for i in range(4):
        a = 2 * np.pi * i / 4
        c = np.array([3 * np.cos(a), 3 * np.sin(a), 0.5])
        z = -c / np.linalg.norm(c)
        x = np.cross(z, [0.0, 0.0, 1.0])
        x /= np.linalg.norm(x)
        R = np.stack([x, np.cross(z, x), z])
        K = np.array([[40.0, 0, 16], [0, 40.0, 16], [0, 0, 1]])
        yy, xx = np.mgrid[:32, :32]
        mask = (xx - 15.5) ** 2 + (yy - 15.5) ** 2 < 64
        views.append(View(f"v{i}", rng.random((32, 32, 3), dtype=np.float32), mask, K, R, -R @ c))
    m = trimesh.creation.icosphere(2, radius=0.5)
    counts = {}
    for extra in (0, 2):
        sch = dataclasses.replace(make_schedule(20, 32, "cpu"), shader_extra_steps=extra)
        opt = Optimizer(ViewSet(views, torch.device("cpu")), get_rasterizer("torch", "cpu"), sch, 0, "off")
        opt.set_mesh(np.asarray(m.vertices), np.asarray(m.faces))
        before = [p.detach().clone() for p in opt.shader.parameters()]
        opt.step(0)
        shader_steps = {int(opt.shader_opt.state[p]["step"]) for p in opt.shader.parameters()}
        vertex_steps = {int(st["step"]) for st in opt.v_opt.state.values()}
        counts[extra] = (shader_steps, vertex_steps)
        assert any(not torch.equal(b, p) for b, p in zip(before, opt.shader.parameters()))
    assert counts == {0: ({1}, {1}), 2: ({3}, {1})}


def test_first_phase_vertex_step_is_scaled_until_the_first_remesh() -> None:
    """The coarse phase's vertex step is first_phase_lr x lr_vertices; the first remesh drops that factor and
    applies the usual decay, later remeshes only the decay. The coarse phase samples half the shading pixels, the
    later phases 3/4 (CPU). With camera refinement no factor is used."""
    import dataclasses

    import pytest

    from backend.io.views import View
    from backend.optim.camera_refine import RefineSettings
    from backend.optim.viewset import ViewSet
    from backend.pipelines.reconstruct import Optimizer

    views = []
    for i in range(2):
        c = np.array([3.0 * (-1) ** i, 0.0, 0.0])
        z = -c / np.linalg.norm(c)
        x = np.cross(z, [0.0, 0.0, 1.0])
        R = np.stack([x, np.cross(z, x), z])
        K = np.array([[40.0, 0, 16], [0, 40.0, 16], [0, 0, 1]])
        views.append(View(f"v{i}", np.zeros((32, 32, 3), np.float32), np.ones((32, 32), bool), K, R, -R @ c))
    sch = dataclasses.replace(make_schedule(20, 32, "cpu"), first_phase_lr=2.5)
    assert (sch.first_phase_shade, sch.later_shade) == (0.5, 0.75)
    gpu = make_schedule(20, 512, "cuda")
    assert (gpu.first_phase_shade, gpu.later_shade) == (1.0, 1.0)
    opt = Optimizer(ViewSet(views, torch.device("cpu")), None, sch, 0, "off")
    assert opt.lr_v == pytest.approx(2.5 * sch.lr_vertices)
    assert (opt.shade_budget(0), opt.shade_budget(1)) == (sch.shade_pixels // 2, sch.shade_pixels * 3 // 4)
    opt.after_remesh()
    assert opt.lr_v == pytest.approx(sch.lr_vertices * sch.lr_decay)
    opt.after_remesh()
    assert opt.lr_v == pytest.approx(sch.lr_vertices * sch.lr_decay ** 2)
    refined = Optimizer(ViewSet(views, torch.device("cpu")), None, sch, 0, "off")
    refined.enable_refinement(RefineSettings())
    assert refined.lr_v == pytest.approx(sch.lr_vertices)
    assert refined.shade_budget(0) == refined.shade_budget(2) == sch.shade_pixels
    refined.after_remesh()
    assert refined.lr_v == pytest.approx(sch.lr_vertices * sch.lr_decay)
