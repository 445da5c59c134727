"""GPU memory: estimate one optimisation step's bytes, fit the schedule to the free memory, explain an OOM."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from backend.optim.schedule import Schedule
from backend.runtime.errors import JobError

FREE_FRACTION = 0.6  # share of the free device memory the plan may use
MIN_SIDE = 128  # the plan never renders below this longest side
MIN_SHADE_PIXELS = 1 << 14  # nor samples fewer shading pixels than this
SHADE_SHARE = 8  # lowering the side waits until at most 1 pixel in this many of a view is shaded
SIDE_STEP = 0.75  # factor on the render side per reduction (about halves the pixels every two steps)
# Floats per rendered pixel and view: rast 4, hard and antialiased coverage 2, interpolated position and
# normal 6, normalised normal 3, target image and mask 4, mask-loss temporaries 3, their gradients 11,
# and the rasterizer's own per-pixel work buffers (depth, triangle ids, derivatives) about 8.
GBUFFER_FLOATS = 41
RESIDENT_FLOATS = 4  # RGB + mask of every view at the render resolution, kept on the device
OVERHEAD = 1.25  # allocator fragmentation and temporaries not counted above
FIXED_BYTES = 64 << 20  # CUDA context leftovers, shader weights, Adam state, small buffers


def pixels_at(height: int, width: int, side: int) -> int:
    """Pixels of an image whose longer side is scaled down to at most `side` (as ViewSet does)."""
    s = min(1.0, side / max(height, width))
    return max(1, int(round(height * s))) * max(1, int(round(width * s)))


def shader_floats_per_sample(hidden: int, freqs: int, layers: int = 3) -> int:
    """Floats the shader keeps per sampled pixel for backward, with gradients (x2)."""
    in_dim = 3 + 6 * freqs + 3 + 3
    encoding = 9 * freqs  # x * freqs, sin, cos before the concatenation
    gathered = 3 * 4  # position, normal, view direction, target colour
    activations = in_dim + encoding + gathered + layers * hidden + 3 * 2  # ReLU is in place
    return 2 * activations


def step_bytes(height: int, width: int, views_per_step: int, shade_pixels: int, faces: int, vertices: int,
               shader_hidden: int, shader_freqs: int, n_views: int = 0) -> int:
    """Estimated peak bytes of one optimisation step at a render size (n_views: views resident on the device)."""
    px = height * width
    gbuffer = GBUFFER_FLOATS * px * views_per_step * 4
    resident = RESIDENT_FLOATS * px * n_views * 4
    shader = shader_floats_per_sample(shader_hidden, shader_freqs) * shade_pixels * 4
    # vertices: position, gradient, two Adam moments, normals and their gradients, clip positions per view
    mesh = vertices * (3 * 6 + 8 * views_per_step) * 4
    # faces: int32 and int64 indices, face normals and cross-product temporaries, rasterizer setup per view
    mesh += faces * (3 * 4 + 3 * 8 + 12 * 4 * 2 + 16 * views_per_step)
    topology = vertices * 7 * (8 * 2 + 4)  # sparse Laplacian, about 7 entries per vertex
    return int(OVERHEAD * (gbuffer + resident + shader + mesh + topology)) + FIXED_BYTES


@dataclass
class MemoryPlan:
    """The budget a run was fitted to and what the schedule uses under it."""

    device: str
    available_bytes: int | None  # None: no cap (CPU)
    fraction: float
    max_side: int
    views_per_step: int
    shade_pixels: int
    estimate_bytes: int
    fits: bool
    reduced: list[str]
    oom_retries: int = 0

    def to_dict(self) -> dict:
        """JSON form for result.json's `memory_plan`."""
        mb = 1 << 20
        return {"device": self.device, "fraction": self.fraction,
                "available_mb": None if self.available_bytes is None else round(self.available_bytes / mb, 1),
                "max_side": self.max_side, "views_per_step": self.views_per_step, "shade_pixels": self.shade_pixels,
                "estimate_mb": round(self.estimate_bytes / mb, 1), "fits": self.fits, "reduced": list(self.reduced),
                "oom_retries": self.oom_retries}

    def describe(self) -> str:
        """One log line."""
        avail = "no cap" if self.available_bytes is None else f"{self.available_bytes / (1 << 30):.1f} GB usable"
        red = f", reduced: {', '.join(self.reduced)}" if self.reduced else ""
        fit = "" if self.fits else " (does not fit even at the minimum; an out-of-memory is likely)"
        return (f"memory plan ({self.device}, {avail}): longest side {self.max_side} px, {self.views_per_step} "
                f"view(s) per step, {self.shade_pixels} shading pixels, estimate "
                f"{self.estimate_bytes / (1 << 30):.2f} GB{red}{fit}")


def available_bytes(device: torch.device, fraction: float = FREE_FRACTION) -> int | None:
    """The share of the device's free memory a run may plan for; None on CPU (no cap)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free * fraction)
    if device.type == "mps":
        rec = getattr(torch.mps, "recommended_max_memory", None)
        if rec is None:
            return None
        used = torch.mps.driver_allocated_memory() if hasattr(torch.mps, "driver_allocated_memory") else 0
        return int(max(rec() - used, 0) * fraction)
    return None


def _worst(schedule: Schedule, hw: tuple[int, int], n_views: int, side_cap: int, views_cap: int,
           shade: int) -> tuple[int, int, int]:
    """Largest estimate over the phases, with that phase's side and views per step."""
    h, w = hw
    best = (0, 0, 0)
    for k, side in enumerate(schedule.max_sides):
        side = min(side, side_cap)
        px = pixels_at(h, w, side)
        views = min(schedule.views_per_step(px, n_views, k), views_cap)
        s = min(1.0, side / max(h, w))
        est = step_bytes(max(1, round(h * s)), max(1, round(w * s)), views, shade, schedule.max_faces,
                         schedule.max_faces // 2 + 2, schedule.shader_hidden, schedule.shader_freqs, n_views)
        best = max(best, (est, side, views))
    return best


def plan_memory(schedule: Schedule, hw: tuple[int, int], n_views: int, available: int | None,
                device: str = "cuda", fraction: float = FREE_FRACTION) -> tuple[Schedule, MemoryPlan]:
    """Fit the schedule to `available` bytes: fewer views per step, then shading pixels and side in turn."""
    if available is None:
        est, side, views = _worst(schedule, hw, n_views, max(schedule.max_sides), n_views, schedule.shade_pixels)
        return schedule, MemoryPlan(device, None, fraction, side, views, schedule.shade_pixels, est, True, [])
    side_cap = max(schedule.max_sides)
    views_cap = max(schedule.views_per_step(pixels_at(*hw, min(s, side_cap)), n_views, k)
                    for k, s in enumerate(schedule.max_sides))
    shade = schedule.shade_pixels
    reduced: list[str] = []
    est, side, views = _worst(schedule, hw, n_views, side_cap, views_cap, shade)
    while available is not None and est > available:
        if views_cap > 1:
            views_cap = max(1, min(views, views_cap) // 2)
            tag = "views per step"
        elif shade > max(MIN_SHADE_PIXELS, pixels_at(*hw, side_cap) // SHADE_SHARE) or (
                side_cap <= MIN_SIDE and shade > MIN_SHADE_PIXELS):
            shade = max(MIN_SHADE_PIXELS, shade // 2)
            tag = "shading pixels"
        elif side_cap > MIN_SIDE:
            side_cap = max(MIN_SIDE, int(side_cap * SIDE_STEP))
            tag = "render resolution"
        else:
            break
        if tag not in reduced:
            reduced.append(tag)
        est, side, views = _worst(schedule, hw, n_views, side_cap, views_cap, shade)
    fits = available is None or est <= available
    planned = apply_caps(schedule, hw, side_cap, views_cap, shade)
    plan = MemoryPlan(device, available, fraction, side, views, shade, est, fits, reduced)
    return planned, plan


def apply_caps(schedule: Schedule, hw: tuple[int, int], side_cap: int, views_cap: int, shade: int) -> Schedule:
    """The schedule with every phase's side, views per step (as a pixel budget) and shading pixels capped."""
    sides = [min(s, side_cap) for s in schedule.max_sides]
    budgets = [min(b, views_cap * pixels_at(*hw, s)) for b, s in zip(schedule.pixel_budgets, sides)]
    return replace(schedule, max_sides=sides, pixel_budgets=budgets, shade_pixels=min(schedule.shade_pixels, shade))


def halve_budget(schedule: Schedule, hw: tuple[int, int], n_views: int) -> Schedule:
    """Half the per-step memory: half the views per step where more than one, else about half the pixels."""
    views = [schedule.views_per_step(pixels_at(*hw, s), n_views, k) for k, s in enumerate(schedule.max_sides)]
    sides = [s if v > 1 else max(MIN_SIDE, min(s, int(round(s / math.sqrt(2))))) for s, v in
             zip(schedule.max_sides, views)]
    budgets = [max(1, v // 2) * pixels_at(*hw, s) for v, s in zip(views, sides)]
    return replace(schedule, max_sides=sides, pixel_budgets=budgets,
                   shade_pixels=max(1024, schedule.shade_pixels // 2))


def is_oom(exc: BaseException) -> bool:
    """CUDA's OutOfMemoryError, or an MPS/CPU RuntimeError that says it ran out of memory."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    if isinstance(exc, RuntimeError):
        msg = str(exc).lower()
        return "out of memory" in msg or "can't allocate memory" in msg
    return False


def release_cached(device: torch.device) -> None:
    """Hand the allocator's cached blocks back after an out-of-memory."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps" and hasattr(torch.mps, "empty_cache"):
        torch.mps.empty_cache()


def oom_error(device: torch.device, size: tuple[int, int], views: int) -> JobError:
    """The user-facing error after the halved retry ran out of memory too."""
    kind = "GPU" if device.type in ("cuda", "mps") else "host"
    h, w = size
    hint = ("lower the memory needed: set \"image_scale\" in job.json's settings to 0.5 (or lower), "
            "choose the Draft preset in the add-on, or run on the CPU with --device cpu")
    return JobError(f"ran out of {kind} memory at {w}x{h} with {views} view{'s' if views != 1 else ''} per step",
                    hint)
