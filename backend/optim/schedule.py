"""Coarse-to-fine optimisation schedule: remesh steps, edge lengths, resolutions, loss weights."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

@dataclass
class Schedule:
    """How one reconstruction run spends its iterations (scaled by the job's `iterations`)."""

    iterations: int
    remesh_steps: list[int]
    max_sides: list[int]  # longest rendered image side in each phase (phase k = after k remeshes)
    pixel_budgets: list[int]  # pixels rendered per step in each phase (views per step = budget // pixels per view)
    max_faces: int  # the remesh never makes more faces than this
    shade_pixels: int  # shading-loss pixels sampled per step
    lr_vertices: float = 1e-3
    first_phase_lr: float = 1.0  # vertex step factor before the first remesh (not used while cameras are refined)
    first_phase_shade: float = 1.0  # fraction of shade_pixels sampled per step before the first remesh
    later_shade: float = 1.0  # fraction sampled after the first remesh (all of them while cameras are refined)
    lr_shader: float = 1e-3
    weights: dict[str, float] = field(default_factory=lambda: {
        "mask": 2.0, "shading": 1.0, "laplacian": 40.0, "normal": 0.1, "symmetry": 1.0})
    regulariser_growth: float = 4.0
    lr_decay: float = 0.75
    symmetry_from_phase: int = 2
    shader_hidden: int = 64  # width of the neural shader's hidden layers
    shader_freqs: int = 4  # positional-encoding frequencies of the shader
    initial_faces: int = 2000  # faces of the remeshed visual hull the optimisation starts from
    px_per_edge: float = 2.0  # the finest edge spans this many rendered pixels (at the object's distance)
    min_edge: float = 0.0  # edge-length floor in normalised units, set from the views by with_footprint()
    pixel_size: float = 0.0  # one last-phase rendered pixel at the object (normalised units), set by with_footprint()
    shader_view: bool = True  # the shader sees the view direction (specular); off: colour from position and normal
    shader_late_view: bool = False  # the view direction joins only before the shader's last layer
    # The optimised surface sits this far (rendered pixels) outside the true one: the antialiased coverage of the
    # true shape is 0.02-0.05 px per boundary pixel smaller than the mask, and a mask thresholded at alpha 0.5
    # another ~0.03 px larger than the alpha's coverage (BENCHMARKS.md); the returned mesh is moved back by it.
    silhouette_bias_px: float = 0.1
    # Bilateral normal filtering passes over the returned mesh (0: off): removes the bumps a few faces across
    # that no view resolves, keeping creases (backend/post/denoise.py; BENCHMARKS.md, issue 14 fourth session).
    denoise_iterations: int = 3
    # Extra shader-only steps per step on the same (detached) shading samples: a shader that lags the texture
    # leaves a residual the surface absorbs as bumps that follow the texture (BENCHMARKS.md, issue 14).
    shader_extra_steps: int = 0
    smoothing: float = 0.0  # Large Steps lambda of (I + lambda L); 0 optimises positions directly with Adam
    final_lr_ratio: float = 1.0  # the vertex step decays (cosine) to this fraction over the last phase
    uniform_adam: bool = True  # with smoothing: one step size for all of u (Large Steps) or Adam per coordinate
    anneal_from: int | None = None  # the step the cosine anneal starts at; None: the last remesh step
    # Masks as evidence (issue 24): enclosed mask holes that only their own view carves are filled for the visual
    # hull (backend/geometry/mask_consensus.py) and their pixels weighted down in the mask loss to the view's floor:
    # the user's masks keep full weight (their say in the hull only is overruled), automatic masks (made from
    # photos) get 0.1. hull_vote: share of the views a hull voxel may fall outside of without camera refinement
    # (0: strict; a 1-view tolerance left spurious handles: BENCHMARKS.md "Masks as evidence").
    mask_repair: bool = True
    hull_vote: float = 0.0
    mask_floor_user: float = 1.0
    mask_floor_auto: float = 0.1
    # Crease-keeping remesh: from the remesh that starts phase `crease_from_phase` on, edges whose faces' normals
    # turn by more than crease_deg degrees are kept as creases (split and collapsed only along them); 0: off.
    # Earlier meshes are too rough: their "creases" are noise a remesh should smooth away.
    crease_deg: float = 0.0
    crease_from_phase: int = 2
    crease_normals: bool = False  # the normal term leaves the remesh's crease edges sharp
    crease_denoise: int = 0  # creases measured after this many bilateral normal filtering passes (0: raw mesh)
    crease_sigma: float = 0.5  # the range kernel of those passes (normal difference)

    def phase(self, step: int) -> int:
        """Number of remeshes done before this step."""
        return sum(step >= s for s in self.remesh_steps)

    def lr_factor(self, step: int) -> float:
        """Vertex step multiplier: 1, then a cosine decay to final_lr_ratio from `anneal_from` (by default the
        last remesh) to the end.

        Annealing the step at the end takes the optimiser's jitter out of the mesh that is handed back.
        """
        start = self.anneal_from if self.anneal_from is not None else self.remesh_steps[-1] if self.remesh_steps else 0
        if step < start or self.iterations <= start:
            return 1.0
        x = (step - start) / max(self.iterations - start, 1)
        return self.final_lr_ratio + (1.0 - self.final_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * x))

    def crease_rule(self) -> "CreaseRule | None":
        """The rule of the edges a remesh keeps as creases (None: crease_deg is 0, no creases kept)."""
        from backend.optim.creases import CreaseRule

        return CreaseRule(self.crease_deg, self.crease_denoise, self.crease_sigma) if self.crease_deg > 0 else None

    def silhouette_offset(self) -> float:
        """Inward move of the optimised surface (normalised units) that undoes the silhouette bias."""
        return self.silhouette_bias_px * self.pixel_size

    def views_per_step(self, pixels_per_view: int, n_views: int, phase: int = 0) -> int:
        """Views rendered per step at the current resolution in a phase."""
        budget = self.pixel_budgets[min(phase, len(self.pixel_budgets) - 1)]
        return max(1, min(n_views, budget // max(pixels_per_view, 1)))

    def edge_length(self, current: float, area: float) -> float:
        """Next target edge length: half the current, but never more faces than max_faces."""
        h_min = math.sqrt(area / (0.433 * self.max_faces))
        return max(current / 2.0, h_min, self.min_edge)

    def with_footprint(self, views: list) -> "Schedule":
        """This schedule with its edge floor set from what the views resolve in the last phase."""
        size = pixel_footprint(views, self.max_sides[-1])
        return dataclasses.replace(self, pixel_size=size, min_edge=self.px_per_edge * size)


def with_overrides(schedule: Schedule, overrides: dict) -> Schedule:
    """The schedule with some fields replaced; a `weights` entry changes only the loss weights it names."""
    fields = dict(overrides)
    if "weights" in fields:
        fields["weights"] = {**schedule.weights, **fields["weights"]}
    return dataclasses.replace(schedule, **fields)


def pixel_footprint(views: list, max_side: int) -> float:
    """Median over views of one rendered pixel's size at the object's centre (views in normalised space)."""
    sizes = []
    for v in views:
        scale = min(1.0, max_side / max(v.width, v.height))
        focal = 0.5 * (float(v.K[0, 0]) + float(v.K[1, 1])) * scale
        sizes.append(float(np.linalg.norm(v.center)) / max(focal, 1e-9))
    return float(np.median(sizes))


def converge_schedule(max_steps: int, full_side: int, device_type: str) -> Schedule:
    """The device's schedule for a run that decides its remeshes online: none yet, no anneal before the cap
    (the plan sets `remesh_steps`, `anneal_from` and `iterations` as the phases settle)."""
    return dataclasses.replace(make_schedule(max_steps, full_side, device_type), remesh_steps=[],
                               anneal_from=max(int(max_steps), 1))


def make_schedule(iterations: int, full_side: int, device_type: str) -> Schedule:
    """The schedule for a device: on CPU lower resolutions early, fewer faces and sampled pixels."""
    n = max(int(iterations), 1)
    remesh = sorted({s for s in (round(n * 0.25), round(n * 0.5), round(n * 0.75)) if 0 < s < n})
    if device_type == "cpu":
        sides = [min(full_side, s) for s in (128, 192, 256, 256)]
        # Tuned on Suzanne and Spot (BENCHMARKS.md): with few iterations a larger vertex step and a gentler
        # regulariser growth than the reference (x4) reach a lower Chamfer per second; after the first
        # remesh three views per step (not one 256 px view) and a wider shader (6 frequencies, 128 wide)
        # lower the final error; a heavier mask term (the nvdiffrast antialiasing rule gives weaker
        # silhouette gradients than our first one), a shader step 5x the reference's (in 700 steps its
        # shader lags the geometry and the residual crumples the surface) and the step annealed over the
        # last phase lower both the Chamfer distance and the bumpiness. Large Steps lost on Chamfer at
        # every setting tried. A shader blind to the view direction was as good or better on every test object,
        # a glossy one included (-6 % on Suzanne with roughness 0.15): in 700 steps the view input lets the
        # shader explain a misplaced surface by view-dependent colour instead of moving it.
        # Two extra shader-only steps per step on the same samples let the shader keep up with the texture
        # (-7 to -51 % Chamfer at 700 steps; 500 steps with them beat 700 without, in about the same time).
        # From the remesh that starts phase 2 on, edges turning by more than 35 degrees (measured after 6 wide
        # bilateral normal passes, which take the optimiser's noisy kinks out) stay creases through the remesh
        # and the normal term leaves them sharp: fandisk -10 % Chamfer at 700 steps (BENCHMARKS.md, "Smoother
        # where smooth, sharp where sharp"). The shading term at twice the reference's weight pulls concave
        # detail the silhouettes cannot see (a hull-filled fold on fandisk's overhang, Suzanne's eye sockets):
        # Chamfer -15 to -30 % on fandisk seeds 0-2, -19 % Suzanne, -6 % teapot, -5 % torus, Spot +0.6 %,
        # mug +3 to +5 % (its seed spread); 3x lost on fandisk, teapot and mug (BENCHMARKS.md, "Scoring the
        # outer surface"). Unless the cameras are refined, the coarse phase (before the first remesh) moves its
        # vertices with twice the step: a concavity the visual hull fills is carved there or not at all (fandisk's
        # channel at 256²: Chamfer 0.218 -> 0.100 % on seed 0, 0.163 -> 0.121 % on seed 2, 0.120 -> 0.129 % on
        # seed 1; Suzanne, teapot, Spot, mug and torus -5 to 0 %); 2.5x was no better over all, 3x worse and 4x
        # tore a fold into fandisk (BENCHMARKS.md, "The coarse phase's step"). The coarse phase samples half the
        # shading pixels: its step costs 0.040 s instead of 0.085 s, so it can run longer (the standard level lets
        # it, while its loss falls) for the same wall; at equal steps Chamfer was within -2..+7 % on five objects,
        # and the mug's cup was dug deeper (1.40 -> 1.19 %; BENCHMARKS.md "The coarse phase runs while its loss
        # falls"). The later phases sample 3/4 of them (6144; all while cameras are refined): 14 % less wall, Chamfer
        # -11..+3 % on six objects (BENCHMARKS.md "Fewer shading samples after the coarse phase").
        late = 3 * 256 * 256
        return Schedule(n, remesh, sides, pixel_budgets=[4 * 128 * 128, 3 * 192 * 192, late, late], max_faces=32000,
                        shade_pixels=8192, lr_vertices=5e-3, lr_shader=5e-3, regulariser_growth=2.0,
                        first_phase_lr=2.0, first_phase_shade=0.5, later_shade=0.75, shader_extra_steps=2,
                        crease_deg=35.0, crease_denoise=6, crease_normals=True, shader_hidden=128, shader_freqs=6,
                        final_lr_ratio=0.05, shader_view=False,
                        weights={"mask": 15.0, "shading": 2.0, "laplacian": 40.0, "normal": 0.1, "symmetry": 1.0})
    # GPU: coarse-to-fine resolution at a constant pixel cost per step (about one full-resolution view),
    # so the early, coarse phases see many views per step (less gradient noise) for the same time.
    sides = [min(full_side, s) for s in (512, 800)] + [full_side, full_side]
    budget = max(full_side * full_side * 3 // 4, 512 * 512)
    # A shader as wide as the reference's, its step doubled (on the CPU 5x won in 700 steps; 2000 here), the
    # reference's weights and vertex step (its nvdiffrast antialiasing is now ours too), the step annealed
    # over the last phase as on the CPU, and a face count set by the starting mesh (initial_faces x 4 per
    # remesh, about the reference's ~90k) unless the pixel footprint stops it earlier.
    return Schedule(n, remesh, sides, pixel_budgets=[budget] * 4, max_faces=300000, shade_pixels=1 << 18,
                    final_lr_ratio=0.05, shader_hidden=256, shader_freqs=6, lr_shader=2e-3)
