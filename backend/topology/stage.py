"""The topology stage: the surface becomes the zero level set of a signed distance grid optimised through the
mesh stage's own renderer, shader and image losses (MeshSDF's rule), so it may open or close handles."""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from backend.geometry.remesh import guarded_remesh
from backend.optim.large_steps import UniformAdam
from backend.topology.carve import apply_carving, carved_nodes
from backend.topology.extract import extract_surface, field_normals, grid_gradient
from backend.topology.sdf_grid import GRID_RES, GridSpec, close_border, signed_distance

REMESH_TIMEOUT_S = 120.0
REDISTANCE_CHUNK = 1 << 15  # points per signed-distance call, so a cancel is seen between chunks
REDISTANCE_BAND = 4.0  # node spacings around the surface that redistancing recomputes


class ImageLossSource(Protocol):
    """What the stage needs of the mesh stage's optimiser (pipelines.reconstruct.Optimizer)."""

    views: Any  # ViewSet: the views in the normalised frame
    weights: dict[str, float]
    shader_opt: torch.optim.Optimizer
    device: torch.device

    def image_losses(self, verts: torch.Tensor, faces: torch.Tensor, step: int) -> Any: ...

    def shader_update(self, image: Any) -> None: ...


@dataclass
class TopologySettings:
    """How the stage spends its steps."""

    steps: int = 100
    lr_spacings: float = 0.1  # the grid's Adam step, in node spacings
    redistance_every: int = 10
    carve_fraction: float = 0.1
    grad_sigma: float = 1.0  # the grid gradient is Gaussian-smoothed over this many node spacings before the step
    uniform: bool = True  # one Adam step size for the whole grid (UniformAdam) instead of one per node
    grid_res: int = GRID_RES  # the grid's nodes per axis
    checkpoints: tuple[int, ...] = (1, 25, 50, 75)  # steps (and the last) whose surface a `judge` compares
    smooth_weight: float = 0.05  # the field blended with its one-spacing Gaussian blur by this weight every step ...
    level_sigma: float = 3.0  # ... less the blur's mean change near the surface within this many spacings ...
    level_band: float = 1.0  # ... over the nodes within this many spacings of the surface


@dataclass
class TopologyOutcome:
    """The stage's mesh (normalised frame, remeshed to the edge length), its surface as extracted (the grid's
    zero level set, finer than the remeshed mesh's chords), and what happened."""

    vertices: np.ndarray
    faces: np.ndarray
    surface: tuple[np.ndarray, np.ndarray]
    steps: int
    seconds: float
    remesh_ok: bool
    message: str = ""
    grid_res: int = 0
    chosen_step: int = 0  # the step whose surface this is (the judge's pick among the checkpoints)


def chunked_distance(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray,
                     poll: Callable[[], None]) -> np.ndarray:
    """Signed distance of many points, in chunks with a cancel check between them."""
    out = np.empty(len(points))
    for start in range(0, len(points), REDISTANCE_CHUNK):
        poll()
        out[start:start + REDISTANCE_CHUNK] = signed_distance(points[start:start + REDISTANCE_CHUNK], vertices, faces)
    return out


def initial_field(vertices: np.ndarray, faces: np.ndarray, spec: GridSpec, poll: Callable[[], None]) -> np.ndarray:
    """Signed distance grid of the current mesh."""
    field = chunked_distance(spec.points(), vertices, faces, poll)
    return close_border(field.reshape(spec.res, spec.res, spec.res), spec.spacing)


def redistance(values: np.ndarray, spec: GridSpec, poll: Callable[[], None],
               band: float = REDISTANCE_BAND) -> np.ndarray:
    """Nodes within `band` spacings of the zero level set get their exact signed distance to it (the updates
    only reach nodes near the surface; farther ones keep their values); unchanged when there is no surface."""
    v, f = extract_surface(values, spec)
    if len(f) == 0:
        return values
    near = np.abs(values).ravel() < band * spec.spacing
    out = np.array(values, dtype=np.float64).ravel()
    out[near] = chunked_distance(spec.points()[near], v, f, poll)
    return close_border(out.reshape(values.shape), spec.spacing)


def smooth_field(field: np.ndarray, weight: float, level_sigma: float, spacing: float,
                 band: float = 1.0) -> np.ndarray:
    """The field blended with its one-spacing Gaussian blur, less the blur's local mean change over the nodes
    within `band` spacings of the surface (a Gaussian window of `level_sigma` spacings): noise finer than the
    window is smoothed, while a thin part's uniform shrinking (curvature flow) is taken back."""
    change = weight * (gaussian_filter(field, 1.0, mode="nearest") - field)
    near = (np.abs(field) < band * spacing).astype(np.float64)
    local = gaussian_filter(change * near, level_sigma, mode="nearest") / np.maximum(
        gaussian_filter(near, level_sigma, mode="nearest"), 1e-6)
    return field + change - local


def carving_views(views: list, pixel_weights: list[np.ndarray | None]) -> list:
    """The views with the pixels the mask consensus repaired (mask-loss weight under 1) counted inside the mask:
    a hole that the other views contradict carves nothing."""
    return [v if w is None else dataclasses.replace(v, mask=np.asarray(v.mask, bool) | (np.asarray(w) < 1.0))
            for v, w in zip(views, pixel_weights)]


def better(best: tuple | None, step: int, surface: tuple[np.ndarray, np.ndarray],
           judge: Callable[[np.ndarray, np.ndarray], tuple[bool, float]]) -> tuple | None:
    """The better of the best so far and this step's surface: (not changing the genus, disagreement, step,
    surface), smallest first; an empty surface never wins."""
    if len(surface[1]) == 0:
        return best
    changes, score = judge(*surface)
    entry = (not changes, float(score), step, surface)
    return entry if best is None or entry[:2] < best[:2] else best


def run_topology_stage(opt: ImageLossSource, vertices: np.ndarray, faces: np.ndarray, edge_length: float,
                       step: int, poll: Callable[[], None],
                       progress: Callable[[int, int, dict[str, float]], None] | None = None,
                       settings: TopologySettings = TopologySettings(),
                       spec: GridSpec | None = None,
                       judge: Callable[[np.ndarray, np.ndarray], tuple[bool, float]] | None = None) -> TopologyOutcome:
    """Optimise a signed distance grid (`spec`, or `settings.grid_res` nodes per axis) initialised from the mesh
    through the image losses of schedule step `step`; returns its zero level set remeshed to `edge_length` (the
    input mesh if the surface vanished). With a `judge` ((surface) -> (changes the genus, silhouette disagreement)),
    the surface is the best of the checkpoints: one that changes the genus first, then the lowest disagreement (the
    grid's first steps already drop a handle below its resolution, and later steps can drift)."""
    t0 = time.monotonic()
    spec = spec if spec is not None else GridSpec(res=settings.grid_res)
    weights = getattr(opt.views, "pixel_weights", None) or [None] * len(opt.views.views)
    carved = carved_nodes(carving_views(opt.views.views, weights), spec, settings.carve_fraction, poll=poll)
    field = apply_carving(initial_field(vertices, faces, spec, poll), carved, spec.spacing)
    values = torch.nn.Parameter(torch.tensor(field, dtype=torch.float32, device=opt.device))
    grid_opt = (UniformAdam if settings.uniform else torch.optim.Adam)([values], lr=settings.lr_spacings * spec.spacing)
    done = 0
    best: tuple | None = None
    for i in range(settings.steps):
        poll()
        v_np, f_np = extract_surface(values.detach().cpu().numpy(), spec)
        if len(f_np) == 0:
            break
        verts = torch.tensor(v_np, dtype=torch.float32, device=opt.device, requires_grad=True)
        faces_t = torch.tensor(f_np, dtype=torch.int32, device=opt.device)
        image = opt.image_losses(verts, faces_t, step)
        loss = opt.weights["mask"] * image.mask + opt.weights["shading"] * image.shading
        opt.shader_opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.shader_update(image)
        with torch.no_grad():
            normals = field_normals(values.detach(), verts.detach(), spec)
            grid_opt.zero_grad(set_to_none=True)
            grad = grid_gradient(verts.grad, verts.detach(), normals, spec)
            if settings.grad_sigma > 0:
                grad = torch.tensor(gaussian_filter(grad.cpu().numpy(), settings.grad_sigma, mode="constant"),
                                    device=opt.device)
            values.grad = grad
        grid_opt.step()
        field = values.detach().cpu().numpy().astype(np.float64)
        if settings.smooth_weight > 0:
            field = smooth_field(field, settings.smooth_weight, settings.level_sigma, spec.spacing,
                                 settings.level_band)
        if (i + 1) % settings.redistance_every == 0:
            field = redistance(field, spec, poll)
        field = apply_carving(close_border(field, spec.spacing), carved, spec.spacing)
        with torch.no_grad():
            values.copy_(torch.tensor(field, dtype=torch.float32))
        done = i + 1
        if progress is not None:
            progress(done, settings.steps, {"mask": float(image.mask.detach()), "shading": float(image.shading.detach())})
        if judge is not None and done in settings.checkpoints and done < settings.steps:
            best = better(best, done, extract_surface(field, spec), judge)
    v_np, f_np = extract_surface(values.detach().cpu().numpy(), spec)
    done_at = done
    if judge is not None:
        best = better(best, done, (v_np, f_np), judge)
        if best is not None:
            done_at, (v_np, f_np) = best[2], best[3]
    if len(f_np) == 0:
        return TopologyOutcome(vertices, faces, (vertices, faces), done, time.monotonic() - t0, False,
                               "the surface vanished", spec.res)
    res = guarded_remesh(v_np, f_np, edge_length, REMESH_TIMEOUT_S, poll=poll)
    return TopologyOutcome(res.vertices, res.faces, (v_np, f_np), done, time.monotonic() - t0, res.ok, res.message,
                           spec.res, done_at)
