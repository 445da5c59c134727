"""The reconstruction pipeline: visual hull, neural deferred shading optimisation, post-processing, write."""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from backend.cameras.projection import normalization, normalize_extrinsics
from backend.geometry.floor import floor_to_dict, rest_on_floor
from backend.geometry.mesh_ops import face_areas, mean_edge_length
from backend.geometry.remesh import guarded_remesh
from backend.geometry.visual_hull import derive_bbox, empty_hull_error, silhouettes, visual_hull
from backend.io.quality import quality_level
from backend.io.views import DEFAULT_SETTINGS, Scene, View
from backend.mesh.metrics import genus as mesh_genus
from backend.optim.alignment import (alignment_warning, camera_entries, refined_views, silhouette_iou, unaligned,
                                     view_weights)
from backend.optim.camera_refine import CameraRefiner, RefineSettings
from backend.optim.large_steps import SmoothParam, UniformAdam
from backend.optim.losses import Topology, laplacian_loss, mask_loss, normal_consistency_loss, shading_loss
from backend.optim.mask_trust import MaskTrust, weigh_masks
from backend.optim.memory import (available_bytes, halve_budget, is_oom, oom_error, plan_memory,
                                  release_cached)
from backend.optim.render import GBuffer, render_gbuffer
from backend.optim.convergence import PhaseMonitor, StopRule, first_phase_extension, phase_budget
from backend.optim.schedule import Schedule, converge_schedule, make_schedule, with_overrides
from backend.optim.stopping import PhasePlan
from backend.optim.shader import NeuralShader
from backend.optim.viewset import ViewLevel, ViewSet
from backend.pipelines.finish import commit_result, post_process
from backend.pipelines.topology_run import TopologyHook
from backend.topology.stage import TopologySettings
from backend.post.denoise import bilateral_normal_denoise
from backend.post.geometry import offset_along_normals
from backend.runtime.protocol import Reporter
from backend.runtime.result import ResultWriter

REMESH_TIMEOUT_S = 120.0
HULL_BOX = (np.full(3, -1.05), np.full(3, 1.05))  # the visual hull's box in the normalised frame


@dataclass
class RunState:
    """Mutable state of one run: timings, warnings, remesh log, previews."""

    t0: float = field(default_factory=time.monotonic)
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    remeshes: list[dict] = field(default_factory=list)
    previews: list[dict] = field(default_factory=list)

    def elapsed(self) -> float:
        """Seconds since the run started."""
        return time.monotonic() - self.t0


def normalized_views(views: list[View], c: np.ndarray, s: float) -> list[View]:
    """Views with translations moved into the normalised frame X' = (X - c) / s."""
    return [View(v.name, v.image, v.mask, v.K, v.R, normalize_extrinsics(v.R, v.t, c, s), v.mask_auto) for v in views]


def scene_bbox(scene: Scene, refine_cameras: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The job's bbox, or one derived from the masks' viewing cones."""
    if scene.bbox is not None:
        return np.asarray(scene.bbox[0], float), np.asarray(scene.bbox[1], float)
    tol = hull_tolerance(scene.views, refine_cameras)
    sils = silhouettes(scene.views, tol.get("dilate_px", 1))
    bbox = derive_bbox(sils, tolerance=tol.get("tolerance", 0))
    if bbox is None:
        raise empty_hull_error(sils, tol.get("tolerance", 0))
    return bbox


def hull_tolerance(views: list[View], refine_cameras: bool, hull_vote: float = 0.0) -> dict:
    """visual_hull's tolerance arguments: with camera refinement a voxel survives outside the masks of ~10 %
    of the views, masks dilated by ~1 % of the image side (the cameras are not trusted); else outside the masks
    of `hull_vote` x the views (0: strict, the masks dilated by a pixel)."""
    if not refine_cameras:
        return {"vote_tolerance": hull_vote}
    side = max(max(v.width, v.height) for v in views)
    return {"tolerance": max(1, round(0.1 * len(views))), "dilate_px": max(2, math.ceil(0.01 * side))}


def initial_mesh(views: list[View], reporter: Reporter, schedule: Schedule, state: RunState,
                 source: str | None = None, c: np.ndarray | None = None,
                 s: float = 1.0, refine_cameras: bool = False,
                 repairs: list[np.ndarray | None] | None = None) -> tuple[np.ndarray, np.ndarray, float, dict]:
    """Visual hull (misalignment-tolerant when refining cameras; `repairs` filled into the masks), or the mesh /
    point-cloud surface of the `initial_mesh` file `source`, in normalised space, remeshed to the first phase's
    edge length."""
    if source:
        from backend.points.start_mesh import check_inside, load_start_mesh

        v, f, kind = load_start_mesh(Path(source), reporter)
        v = (v - (np.zeros(3) if c is None else c)) / s
        check_inside(v, Path(source).name)
        reporter.log(f"initial mesh from {kind} file {source}: {len(v)} vertices, {len(f)} faces")
    else:
        v, f = visual_hull(views, HULL_BOX, res=128, repairs=repairs,
                           **hull_tolerance(views, refine_cameras, schedule.hull_vote))
    reporter.check_cancel()
    area = float(face_areas(v, f).sum())
    h0 = max(math.sqrt(area / (0.433 * min(schedule.initial_faces, schedule.max_faces))), schedule.min_edge)
    res = guarded_remesh(v, f, h0, REMESH_TIMEOUT_S, poll=reporter.check_cancel)
    info = {"step": 0, "ok": res.ok, "seconds": round(res.seconds, 3), "edge_length": h0,
            "vertices": len(res.vertices), "faces": len(res.faces), "message": res.message}
    if not res.ok:
        state.warnings.append(f"initial remesh failed, using the unremeshed start mesh: {res.message}")
        reporter.log(f"warning: {state.warnings[-1]}")
    state.remeshes.append(info)
    return res.vertices, res.faces, h0, {"vertices": v, "faces": f}


@dataclass
class ImageLosses:
    """One step's image losses of a mesh, and the shading samples (detached) the shader's extra steps reuse."""

    mask: torch.Tensor
    shading: torch.Tensor
    samples: list[tuple] = field(default_factory=list)
    fracs: list[float] = field(default_factory=list)  # each view group's share of the step's views


class Optimizer:
    """Neural deferred shading over vertex positions and shader weights, with remeshing."""

    def __init__(self, views: ViewSet, rasterizer: object, schedule: Schedule, seed: int,
                 symmetry_mode: str) -> None:
        self.views = views
        self.rasterizer = rasterizer
        self.schedule = schedule
        self.device = views.device
        self.gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        self.shader = NeuralShader(schedule.shader_freqs, schedule.shader_hidden,
                                   late_view=schedule.shader_late_view).to(self.device)
        self.shader_opt = torch.optim.Adam(self.shader.parameters(), lr=schedule.lr_shader)
        self.weights = dict(schedule.weights)
        self.first_lr = schedule.first_phase_lr
        self.lr_v = schedule.lr_vertices * self.first_lr
        self.symmetry_mode = symmetry_mode
        self.plane = None
        self.order: list[int] = []
        self.last_shape: tuple[tuple[int, int], int] = ((0, 0), 0)
        self.oom_retries = 0
        self.mask_fraction = float(np.mean([v.mask.mean() for v in views.views]))
        self.refiner: CameraRefiner | None = None
        self.refine_from = 0
        self.flags = np.zeros(len(views), dtype=bool)
        self.ious: np.ndarray | None = None

    def enable_refinement(self, settings: RefineSettings) -> None:
        """Optimise per-view pose corrections from settings.start_fraction of the iterations on."""
        vs = self.views.views
        self.refiner = CameraRefiner(np.stack([v.R for v in vs]), np.stack([v.center for v in vs]), self.device,
                                     settings)
        self.refine_from = int(round(settings.start_fraction * self.schedule.iterations))
        # While the cameras align, the surface keeps the plain step: a coarse phase moving faster left a view of
        # the add-on's refinement test unaligned (BENCHMARKS.md, "The coarse phase's step"); the cameras are
        # aligned on all the shading samples (with 3/4 of them the add-on's turned test camera was corrected
        # 0.47 degrees instead of over 0.5).
        self.drop_first_phase_step()

    def drop_first_phase_step(self) -> None:
        """The vertex step loses the first phase's factor (at the first remesh, or as camera refinement starts)."""
        self.lr_v /= self.first_lr
        self.first_lr = 1.0

    def shade_budget(self, phase: int) -> int:
        """Shading pixels sampled per step in a phase (the coarse first phase samples first_phase_shade of them,
        the later ones later_shade; all of them while cameras are refined)."""
        sch = self.schedule
        share = 1.0 if self.refiner is not None else sch.first_phase_shade if phase == 0 else sch.later_shade
        return max(1, int(round(sch.shade_pixels * share)))

    def refining(self, step: int) -> bool:
        """Whether the camera corrections are optimised (and used) at this step."""
        return self.refiner is not None and step >= self.refine_from

    def batch_cameras(self, level: ViewLevel, members: list[int], refined: bool,
                      ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """World-to-clip matrices and camera centres of the views `members` (refined: from the corrections);
        `ids` is `members` as a tensor on the device when the caller has it already."""
        ids = torch.tensor(members, device=self.device) if ids is None else ids
        if refined:
            proj = torch.stack([level.projections[i] for i in members])
            return self.refiner.mvps(ids, proj), self.refiner.centres(ids)
        return torch.stack([level.mvps[i] for i in members]), self.views.centers[ids]

    @torch.no_grad()
    def check_alignment(self, step: int) -> np.ndarray:
        """Silhouette IoU of every view with the current mesh and cameras; down-weight the outliers."""
        sch = self.schedule
        level = self.views.level(sch.max_sides[min(sch.phase(step), len(sch.max_sides) - 1)])
        verts = self.vertices()
        ious = np.zeros(len(self.views))
        for i in range(len(self.views)):
            mvp, _ = self.batch_cameras(level, [i], self.refining(step))
            gb = render_gbuffer(self.rasterizer, verts, self.f, mvp, level.sizes[i])
            ious[i] = silhouette_iou(gb.hit[0].cpu().numpy(), level.masks[i][..., 0].cpu().numpy() > 0.5)
        self.ious = ious
        self.flags = unaligned(ious)
        self.refiner.weights.copy_(torch.tensor(view_weights(self.flags), device=self.device))
        return ious

    @torch.no_grad()
    def correction_pixels(self, step: int) -> np.ndarray:
        """Per view, the mean distance in full-resolution pixels between the mesh's vertices (up to about
        2000 of them) projected by the given and by the refined camera."""
        verts = self.vertices()
        pts = verts[:: max(1, len(verts) // 2000)]
        homo = torch.cat([pts, torch.ones_like(pts[:, :1])], dim=1)
        sch = self.schedule
        level = self.views.level(sch.max_sides[min(sch.phase(step), len(sch.max_sides) - 1)])
        ids = torch.arange(len(self.views), device=self.device)
        given = torch.stack(level.mvps)
        refined = self.refiner.mvps(ids, torch.stack(level.projections))
        half = torch.tensor([[v.width / 2, v.height / 2] for v in self.views.views], device=self.device)

        def pixels(m: torch.Tensor) -> torch.Tensor:
            clip = torch.einsum("bij,pj->bpi", m, homo)
            return clip[..., :2] / clip[..., 3:].clamp_min(1e-9) * half[:, None, :]

        return (pixels(refined) - pixels(given)).norm(dim=-1).mean(dim=1).cpu().numpy()

    def settle_cameras(self, step: int) -> int:
        """Hold the views whose correction stays under `settle_px` pixels on their given cameras; returns how
        many views are held."""
        small = self.correction_pixels(step) < self.refiner.settings.settle_px
        self.refiner.hold(torch.tensor(small, device=self.device))
        return self.refiner.n_held

    def set_mesh(self, vertices: np.ndarray, faces: np.ndarray, creases: np.ndarray | None = None) -> None:
        """Start optimising a new mesh (fresh vertex optimiser state and topology; the normal term leaves the
        crease edges sharp)."""
        x = torch.tensor(vertices, dtype=torch.float32, device=self.device)
        self.f = torch.tensor(faces, dtype=torch.int32, device=self.device)
        self.f_long = self.f.long()
        self.topo = Topology.build(faces, len(vertices), self.device, creases)
        if self.schedule.smoothing > 0:
            self.param = SmoothParam(x, faces, self.schedule.smoothing)
            opt_class = UniformAdam if self.schedule.uniform_adam else torch.optim.Adam
            self.v_opt = opt_class([self.param.u], lr=self.lr_v)
        else:
            self.param = None
            self.x = torch.nn.Parameter(x)
            self.v_opt = torch.optim.Adam([self.x], lr=self.lr_v)

    @torch.no_grad()
    def positions(self) -> torch.Tensor:
        """Current vertex positions, detached."""
        return self.vertices().detach()

    def vertices(self) -> torch.Tensor:
        """Current vertex positions, differentiable in the optimised parameter."""
        return self.x if self.param is None else self.param.vertices()

    def mesh(self) -> tuple[np.ndarray, np.ndarray]:
        """Current mesh as numpy (normalised space)."""
        with torch.no_grad():
            v = self.vertices()
        return v.detach().cpu().numpy().astype(np.float64), self.f_long.cpu().numpy()

    def next_views(self, count: int) -> list[int]:
        """Views for this step: shuffled passes over all views."""
        out = []
        while len(out) < count:
            if not self.order:
                self.order = torch.randperm(len(self.views), generator=self.gen).tolist()
            out.append(self.order.pop())
        return out

    def image_losses(self, verts: torch.Tensor, faces: torch.Tensor, step: int) -> ImageLosses:
        """Mask and shading losses of a mesh (vertices differentiable, faces int32) in this step's views, as the
        mesh stage and the topology stage both render it."""
        sch = self.schedule
        phase = sch.phase(step)
        level = self.views.level(sch.max_sides[min(phase, len(sch.max_sides) - 1)])
        h, w = level.sizes[0]
        ids = self.next_views(sch.views_per_step(h * w, len(self.views), phase))
        self.last_shape = ((h, w), len(ids))
        groups: dict[tuple[int, int], list[int]] = {}
        for i in ids:
            groups.setdefault(level.sizes[i], []).append(i)
        refined = self.refining(step)
        shade_pixels = self.shade_budget(phase)
        out = ImageLosses(torch.zeros((), device=self.device), torch.zeros((), device=self.device))
        for size, members in groups.items():
            member_ids = torch.tensor(members, device=self.device)
            mvps, cam = self.batch_cameras(level, members, refined, member_ids)
            gb = render_gbuffer(self.rasterizer, verts, faces, mvps, size)
            target_mask = torch.stack([level.masks[i] for i in members])
            target_rgb = torch.stack([level.images[i] for i in members])
            frac = len(members) / len(ids)
            vw = None if self.refiner is None else self.refiner.weights[member_ids]
            out.mask = out.mask + frac * mask_loss(gb.coverage, target_mask, vw, level.mask_weights(members))
            out.shading = out.shading + frac * self.shade(gb, target_mask, target_rgb, cam,
                                                          max(1, int(shade_pixels * frac)), vw, out.samples)
            out.fracs.append(frac)
        return out

    def shader_update(self, image: ImageLosses) -> None:
        """The shader's step from its gradients, then its extra shader-only steps on the same (detached) samples."""
        self.shader_opt.step()
        for _ in range(self.schedule.shader_extra_steps):
            self.shader_opt.zero_grad(set_to_none=True)
            extra = sum(frac * shading_loss(self.shader(p, n, d), t, w)
                        for (p, n, d, t, w), frac in zip(image.samples, image.fracs))
            extra.backward()
            self.shader_opt.step()

    def step(self, step: int) -> dict[str, torch.Tensor]:
        """One optimisation step; returns the loss values as 0-d tensors (read them only when reporting:
        on a GPU each read is a host-device synchronisation)."""
        sch = self.schedule
        phase = sch.phase(step)
        verts = self.vertices()
        refined = self.refining(step)
        image = self.image_losses(verts, self.f, step)
        lap = laplacian_loss(verts, self.topo)
        nc = normal_consistency_loss(verts, self.f_long, self.topo)
        wt = self.weights
        loss = wt["mask"] * image.mask + wt["shading"] * image.shading + wt["laplacian"] * lap + wt["normal"] * nc
        losses = {"mask": image.mask, "shading": image.shading, "laplacian": lap, "normal": nc}
        if self.plane is not None:
            from backend.post.symmetry import mirror_loss

            sym = mirror_loss(verts, self.plane)
            loss = loss + wt["symmetry"] * sym
            losses["symmetry"] = sym
        if refined:
            prior = self.refiner.prior()
            loss = loss + prior
            losses["camera_prior"] = prior
            self.refiner.zero_grad()
        self.v_opt.zero_grad(set_to_none=True)
        self.shader_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.v_opt.step()
        self.shader_update(image)
        if refined:
            self.refiner.step(sch.lr_factor(step) * self.refiner.settings.remesh_decay
                              ** max(phase - sch.phase(self.refine_from), 0))
        losses["total"] = loss
        return {k: v.detach() for k, v in losses.items()}

    def shade(self, gb: GBuffer, target_mask: torch.Tensor, target_rgb: torch.Tensor, cam: torch.Tensor,
              budget: int, view_weight: torch.Tensor | None = None, keep: list | None = None) -> torch.Tensor:
        """Shading loss over up to `budget` sampled pixels that are covered and inside the mask (pixels
        weighted by their view's `view_weight` when given); the samples, detached, go to `keep` when given.

        On the CPU the valid pixels are listed and sampled exactly; on a GPU, listing them would wait for
        the device, so random pixels are drawn (enough to expect `budget` valid ones) and the invalid
        ones are weighted out.
        """
        valid = (gb.hit & (target_mask[..., 0] > 0.5)).reshape(-1)
        n_pix = gb.hit.shape[1] * gb.hit.shape[2]
        if self.device.type == "cpu":
            idx = valid.nonzero().squeeze(1)
            if len(idx) > budget:
                idx = idx[torch.randperm(len(idx), generator=self.gen)[:budget]]
            weight = None
        else:
            draws = min(valid.numel(), int(budget / max(self.mask_fraction, 0.05)))
            idx = torch.randint(valid.numel(), (draws,), device=self.device)
            weight = valid[idx].to(gb.position.dtype)
        pos = gb.position.reshape(-1, 3)[idx]
        nrm = gb.normal.reshape(-1, 3)[idx]
        view_of_pixel = idx // n_pix
        vdir = torch.nn.functional.normalize(cam[view_of_pixel] - pos, dim=-1)
        if not self.schedule.shader_view:
            vdir = torch.zeros_like(vdir)
        rgb = self.shader(pos, nrm, vdir)
        if view_weight is not None:
            per_pixel = view_weight[view_of_pixel]
            weight = per_pixel if weight is None else weight * per_pixel
        target = target_rgb.reshape(-1, 3)[idx]
        if keep is not None:
            keep.append((pos.detach(), nrm.detach(), vdir.detach(), target, weight))
        return shading_loss(rgb, target, weight)

    def guarded_step(self, step: int, reporter: Reporter, hw: tuple[int, int]) -> dict[str, torch.Tensor]:
        """One step; on out-of-memory retry once with half the budget, then a JobError naming what to lower."""
        for attempt in range(2):
            try:
                return self.step(step)
            except Exception as exc:
                if not is_oom(exc):
                    raise
            size, views = self.last_shape
            self.v_opt.zero_grad(set_to_none=True)
            self.shader_opt.zero_grad(set_to_none=True)
            if attempt > 0 or self.oom_retries >= 1:
                release_cached(self.device)
                break
            self.oom_retries += 1
            self.schedule = halve_budget(self.schedule, hw, len(self.views))
            self.views.keep_levels(set(self.schedule.max_sides))
            release_cached(self.device)
            reporter.log(f"warning: out of memory at {size[1]}x{size[0]} with {views} view(s) per step; retrying "
                         f"with half the budget (sides {self.schedule.max_sides}, "
                         f"{self.schedule.shade_pixels} shading pixels)")
        raise oom_error(self.device, size, views)

    def after_remesh(self) -> None:
        """Reference rule: regularisers x4, vertex learning rate x0.75 (the first phase's extra factor dropped at
        the first remesh)."""
        self.weights["laplacian"] *= self.schedule.regulariser_growth
        self.weights["normal"] *= self.schedule.regulariser_growth
        self.drop_first_phase_step()
        self.lr_v *= self.schedule.lr_decay


def loss_values(losses: dict[str, torch.Tensor]) -> dict[str, float]:
    """Loss tensors as floats (one host-device synchronisation for all of them)."""
    if not losses:
        return {}
    keys = list(losses)
    values = torch.stack([losses[k].float() for k in keys]).cpu().tolist()
    return dict(zip(keys, values))


def _to_world(vertices: np.ndarray, c: np.ndarray, s: float) -> np.ndarray:
    """Undo the scene normalisation."""
    return vertices * s + c


def remesh(opt: Optimizer, step: int, reporter: Reporter, state: RunState) -> float:
    """Remesh the current surface at the schedule's next edge length (the current mesh stays if the remesher
    fails), restart the vertex optimiser on it, grow the regularisers, and find the symmetry plane when due;
    returns the edge length."""
    sch = opt.schedule
    v, f = opt.mesh()
    area = float(face_areas(v, f).sum())
    h = sch.edge_length(mean_edge_length(v, f), area)
    rule = sch.crease_rule() if sch.phase(step) >= sch.crease_from_phase else None
    res = guarded_remesh(v, f, h, REMESH_TIMEOUT_S, poll=reporter.check_cancel, creases=rule)
    state.remeshes.append({"step": step, "ok": res.ok, "seconds": round(res.seconds, 3), "edge_length": h,
                           "vertices": len(res.vertices), "faces": len(res.faces), "message": res.message,
                           "crease_rule": dataclasses.asdict(rule) if rule else None,
                           "crease_edges": res.crease_edges})
    if not res.ok:
        state.warnings.append(f"remesh at step {step} failed, continuing with the current mesh: {res.message}")
        reporter.log(f"warning: {state.warnings[-1]}")
    elif res.message:
        reporter.log(f"remesh at step {step}: {res.message}")
    creases = rule.edges(res.vertices, res.faces) if rule is not None and sch.crease_normals else None
    if creases is not None:
        state.remeshes[-1]["normal_term_creases"] = len(creases)
    opt.set_mesh(res.vertices, res.faces, creases)
    opt.after_remesh()
    if opt.symmetry_mode == "enforce" and sch.phase(step) == sch.symmetry_from_phase:
        from backend.post.symmetry import detect_symmetry

        opt.plane, _ = detect_symmetry(res.vertices, res.faces)
    return h


class Window:
    """Sums of the vertex positions and the loss over the steps since the last check: the monitor compares
    window means, so the optimiser's step-to-step jitter does not count as the surface moving."""

    def __init__(self) -> None:
        self.positions: torch.Tensor | None = None
        self.loss: torch.Tensor | None = None
        self.steps = 0

    def add(self, positions: torch.Tensor, loss: torch.Tensor) -> None:
        """One step's vertex positions and total loss (kept on the device: no synchronisation)."""
        if self.positions is None:
            self.positions, self.loss = torch.zeros_like(positions), torch.zeros_like(loss)
        self.positions += positions
        self.loss += loss
        self.steps += 1

    def means(self) -> tuple[np.ndarray, float]:
        """Mean positions (numpy) and mean loss of the window; the window starts again empty."""
        out = ((self.positions / self.steps).cpu().numpy().astype(np.float64), float(self.loss) / self.steps)
        self.positions, self.loss, self.steps = None, None, 0
        return out


def phase_monitor(opt: Optimizer, plan: PhasePlan, step: int) -> PhaseMonitor | None:
    """The monitor of the phase starting at `step` (None when the plan is fixed or its remeshes are all done)."""
    if not plan.online or plan.phases_left() <= 0:
        return None
    low, high = phase_budget(plan.level, step, plan.phases_left())
    first = not plan.phases and opt.refiner is None  # refined cameras start at the first remesh: not delayed
    extend = first_phase_extension(plan.level, plan.phases_left()) if first else 0
    monitor = PhaseMonitor(StopRule.from_level(plan.level), opt.schedule.pixel_size, step, low, high,
                           extend_to=extend, fall=plan.level.first_phase_fall)
    monitor.start(*opt.mesh())
    return monitor


def end_phase(opt: Optimizer, plan: PhasePlan, monitor: PhaseMonitor, done: int, reason: str,
              reporter: Reporter) -> None:
    """The monitored phase ended after `done` steps: the plan remeshes there; the schedule learns the remesh
    and, after the last one, the end of the run and the start of its anneal."""
    plan.end_phase(done, monitor.summary(done, reason))
    record = plan.phases[-1]
    reporter.log(f"phase {record['phase']} {reason} after {record['steps']} steps (drift {record['drift_px']} px "
                 f"per check, first {record['start_drift_px']} px; loss change {record['loss_change']})")
    if opt.refiner is not None and len(plan.remesh_steps) == 1:
        opt.refine_from = done
    changes: dict = {"remesh_steps": list(plan.remesh_steps)}
    if plan.end is not None:
        changes.update(anneal_from=done, iterations=plan.end)
    opt.schedule = dataclasses.replace(opt.schedule, **changes)


def optimize(opt: Optimizer, vertices: np.ndarray, faces: np.ndarray, h: float, reporter: Reporter,
             writer: ResultWriter, state: RunState, c: np.ndarray, s: float, preview_every: int, plan: PhasePlan,
             topology: TopologyHook | None = None) -> dict:
    """Run the plan's steps (its remeshes fixed, or decided as the phases settle; the topology hook before each
    remesh); returns the last losses."""
    hw = max(((v.height, v.width) for v in opt.views.views), key=lambda t: t[0] * t[1])
    opt.set_mesh(vertices, faces)
    if plan.online and opt.refiner is not None:
        opt.refine_from = plan.cap
    report_every = max(1, plan.cap // 200)
    last_report = time.monotonic()
    losses: dict = {}
    monitor = phase_monitor(opt, plan, 0)
    window = Window()
    step = 0
    while plan.running(step):
        reporter.check_cancel()
        sch = opt.schedule
        remeshing = step in sch.remesh_steps
        if remeshing:
            if topology is not None:
                topology(opt, step, h)
            h = remesh(opt, step, reporter, state)
            monitor, window = phase_monitor(opt, plan, step), Window()
        if opt.refiner is not None and remeshing and step > opt.refine_from:
            held = opt.settle_cameras(step)
            reporter.log(f"{held} of {len(opt.views)} views held on their given cameras (corrections under "
                         f"{opt.refiner.settings.settle_px:g} px)")
        if opt.refiner is not None and (remeshing and step >= opt.refine_from or step == opt.refine_from):
            ious = opt.check_alignment(step)
            reporter.log(f"alignment at step {step}: silhouette IoU median {np.median(ious):.3f}, lowest "
                         f"{ious.min():.3f} ({opt.views.views[int(ious.argmin())].name})")
        for group in opt.v_opt.param_groups:
            group["lr"] = opt.lr_v * sch.lr_factor(step)
        losses = opt.guarded_step(step, reporter, hw)
        done = step + 1
        if monitor is not None:
            window.add(opt.positions(), losses["total"])
            if monitor.due(done):
                reason = monitor.check(done, *window.means())
                if reason is not None:
                    end_phase(opt, plan, monitor, done, reason, reporter)
                    monitor = None
        last = not plan.running(done)
        if done % report_every == 0 or last or time.monotonic() - last_report > 1.0:
            reporter.progress("optimize", done, plan.total(), loss_values(losses), state.elapsed())
            last_report = time.monotonic()
        if preview_every > 0 and (done % preview_every == 0 or last):
            v, f = opt.mesh()
            rel = writer.write_preview(done, _to_world(v, c, s), f)
            state.previews.append({"mesh": rel, "step": done, "elapsed_s": round(state.elapsed(), 3)})
            reporter.preview(rel, done)
        step = done
    if opt.refiner is not None:
        opt.check_alignment(step)
    return loss_values(losses)


def run_plan(settings: dict, full_side: int, device_type: str) -> tuple[Schedule, PhasePlan]:
    """The schedule and plan of a job: `iterations` given, the fixed schedule of that many steps; null, the
    `quality` level's converging plan."""
    if settings.get("iterations") is not None:
        schedule = make_schedule(int(settings["iterations"]), full_side, device_type)
        return schedule, PhasePlan.fixed(schedule.remesh_steps, schedule.iterations)
    level = quality_level(settings.get("quality"))
    plan = PhasePlan.converging(level)
    return converge_schedule(plan.cap, full_side, device_type), plan


def refined_cameras(opt: Optimizer, scene: Scene, c: np.ndarray, s: float, state: RunState,
                    reporter: Reporter) -> tuple[list[View], dict]:
    """The scene's views with the refined cameras (the texture is baked from them), and result.json's
    "cameras" and "camera_focal_scale"; views that could not be aligned go to the warnings."""
    rotations, centres, focal = opt.refiner.poses()
    weights = opt.refiner.weights.cpu().numpy()
    for i in np.flatnonzero(opt.flags):
        state.warnings.append(alignment_warning(scene.views[i].name, float(opt.ious[i])))
        reporter.log(f"warning: {state.warnings[-1]}")
    views = refined_views(scene.views, rotations, centres, focal, c, s)
    cams = camera_entries(scene.views, views, scene.image_scale_applied, weights, opt.flags,
                          opt.refiner.held.cpu().numpy())
    reporter.log("camera corrections: median rotation {:.3f} deg, median centre move {:.4g}".format(
        float(np.median([x["rotation_deg"] for x in cams])), float(np.median([x["translation"] for x in cams]))))
    return views, {"cameras": cams, "camera_focal_scale": focal}


def mask_consensus(views: list[View], schedule: Schedule, refine: bool, start_mesh: bool, state: RunState,
                   reporter: Reporter) -> MaskTrust:
    """The masks' consensus over the hull's box (normalised views), logged, its warning added to the run's."""
    trust = weigh_masks(views, *HULL_BOX, schedule.mask_repair, schedule.mask_floor_user, schedule.mask_floor_auto,
                        refine, start_mesh)
    if not trust.ran:
        reporter.log(f"mask consensus skipped: {trust.reason}")
    else:
        pixels = trust.pixels()
        reporter.log(f"mask consensus: {len(pixels)} of {len(views)} views contradicted"
                     + "".join(f", {n} ({p} px)" for n, p in list(pixels.items())[:10]))
    message = trust.warning()
    if message:
        state.warnings.append(message)
        reporter.log(f"warning: {message}")
    reporter.check_cancel()
    return trust


def reconstruct(scene: Scene, out_dir: Path, reporter: Reporter, preview_every: int = 0,
                schedule_overrides: dict | None = None, refine_overrides: dict | None = None,
                extra_result: dict | None = None, warnings: list[str] | None = None,
                topology_overrides: dict | None = None) -> dict:
    """Reconstruct a validated scene into out_dir (written atomically); returns result.json's content.

    `schedule_overrides` replaces fields of the device's schedule, `refine_overrides` those of the camera
    refinement's settings, `topology_overrides` those of the topology stage (benchmarks and ablations). `extra_result` adds keys to result.json (the photos
    command's "sfm" and "cameras"; refined cameras win over its "cameras"). `warnings` start result.json's
    warnings (e.g. the masks made automatically before the run). Views with `mask_auto` masks make the topology
    stage's `auto` run.
    """
    from backend.raster import get_rasterizer

    state = RunState(warnings=list(warnings or []))
    settings = {**DEFAULT_SETTINGS, **scene.settings}
    writer = ResultWriter(Path(out_dir))
    try:
        def fallback(message: str) -> None:
            state.warnings.append(message)
            reporter.log(f"warning: {message}")

        rasterizer = get_rasterizer(settings["rasterizer"], settings["device"], warn=fallback)
        device = rasterizer.device
        if device.type == "cpu":
            torch.set_num_threads(1)
        reporter.log(f"device {device}, rasterizer {rasterizer.name}")

        reporter.stage("visual_hull")
        t = time.monotonic()
        refine = bool(settings.get("refine_cameras"))
        bmin, bmax = scene_bbox(scene, refine)
        c, s = normalization(bmin, bmax)
        views = normalized_views(scene.views, c, s)
        full_side = max(max(v.width, v.height) for v in views)
        schedule, run = run_plan(settings, full_side, device.type)
        if schedule_overrides:
            schedule = with_overrides(schedule, schedule_overrides)
        schedule = schedule.with_footprint(views)
        hw = max(((v.height, v.width) for v in views), key=lambda t: t[0] * t[1])
        schedule, plan = plan_memory(schedule, hw, len(views), available_bytes(device), device.type)
        reporter.log(plan.describe())
        trust = mask_consensus(views, schedule, refine, bool(settings.get("initial_mesh")), state, reporter)
        v0, f0, h0, hull = initial_mesh(views, reporter, schedule, state, settings.get("initial_mesh"), c, s,
                                        refine, trust.repairs)
        state.timings["visual_hull"] = round(time.monotonic() - t, 3)
        if preview_every > 0:
            rel = writer.write_preview(0, _to_world(v0, c, s), f0)
            state.previews.append({"mesh": rel, "step": 0, "elapsed_s": round(state.elapsed(), 3)})
            reporter.preview(rel, 0)

        reporter.stage("optimize")
        t = time.monotonic()
        opt = Optimizer(ViewSet(views, device, trust.weights), rasterizer, schedule, int(settings["seed"]),
                        settings["symmetry"])
        if refine:
            opt.enable_refinement(RefineSettings(**(refine_overrides or {})))
        masks_automatic = any(v.mask_auto for v in scene.views)  # photos' or filled-in masks: auto runs topology
        hull_genus = None if refine or settings.get("initial_mesh") else mesh_genus(v0, f0)
        hook = TopologyHook(settings["topology"], bool(settings.get("initial_mesh")), masks_automatic, reporter,
                            state.elapsed, TopologySettings(**(topology_overrides or {})), hull_genus)
        losses = optimize(opt, v0, f0, h0, reporter, writer, state, c, s, preview_every, run, hook)
        if hook.info["ran"]:
            state.timings["topology"] = round(hook.seconds, 3)
        plan.oom_retries = opt.oom_retries
        v, f = opt.mesh()
        if opt.schedule.silhouette_offset() > 0:
            v = offset_along_normals(v, f, -opt.schedule.silhouette_offset())
        if opt.schedule.denoise_iterations > 0:
            v = bilateral_normal_denoise(v, f, normal_iterations=opt.schedule.denoise_iterations)
        vw = _to_world(v, c, s)
        floor_info = None
        if scene.floor is not None:
            vw, moved = rest_on_floor(vw, scene.floor)
            floor_info = {**floor_to_dict(scene.floor), "vertices_moved": moved}
            reporter.log(f"floor: {moved} of {len(vw)} vertices lay under it and were set down on it")
        state.timings["optimize"] = round(time.monotonic() - t - state.timings.get("topology", 0.0), 3)

        cameras: dict = {}
        if refine:
            refined, cameras = refined_cameras(opt, scene, c, s, state, reporter)
            scene = dataclasses.replace(scene, views=refined)
        post = post_process(vw, f, scene, settings, rasterizer, reporter, state.timings)
        reporter.stage("write")
        t = time.monotonic()
        result = {
            "version": 1,
            "device": str(device), "rasterizer": rasterizer.name,
            "iterations": run.total(),  # the steps run (a cancel leaves no result)
            "stop_reason": run.stop_reason(),
            "quality": None if not run.online else run.level.name,
            "convergence": None if not run.online else {"phases": run.phases,
                                                        "tail_steps": run.total() - run.remesh_steps[-1]},
            "losses": losses,
            "bbox": {"min": bmin.tolist(), "max": bmax.tolist()},
            "normalization": {"center": c.tolist(), "scale": s},
            "visual_hull": {"vertices": len(hull["vertices"]), "faces": len(hull["faces"])},
            "remeshes": state.remeshes, "warnings": state.warnings, "previews": state.previews,
        }
        result.update(extra_result or {})
        result.update(cameras)
        result["topology"] = hook.info
        result["floor"] = floor_info
        result["mask_consensus"] = trust.info()
        result["memory_plan"] = plan.to_dict()
        return commit_result(writer, post, result, state.timings, t, reporter)
    except BaseException:
        writer.abort()
        raise
