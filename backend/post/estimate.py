"""Rough seconds of the post-processing stages, so the time-left estimate covers them (CPU rates: bench_post)."""
from __future__ import annotations

from backend.post.uv_stage import PROBE_FACES, PROBE_MIN_FACES, uv_time_bound

XATLAS_S_PER_FACE = 3.5e-4  # 2 loaded CPU cores; beyond the time bound the fast UVs take over
FAST_UV_S_PER_FACE = 4e-6
TEXEL_S = 1.5e-7  # texel set-up and push-pull, per texel of the texture
VIEW_TEXEL_S = 2e-8  # per texel and view (half the texels are charts)
VIEW_PIXEL_S = 5e-8  # visibility pass, per pixel (at most 1024 on the longer side)
VIEW_FACE_S = 4e-7
GPU_SPEEDUP = 10.0
CPU_FACES, GPU_FACES = 32_000, 200_000  # typical optimised mesh sizes, for the first time-left figure


def estimate_post_seconds(faces: int, budget: int, views: int, view_pixels: int, texture_size: int,
                          device_type: str = "cpu") -> dict[str, float]:
    """Estimated seconds of decimate, symmetry, uv, texture and write for a mesh of `faces` faces."""
    decimate = 1.0 + 3e-6 * faces if faces > budget else 0.0
    faces = min(faces, budget)
    bound = uv_time_bound(faces)
    xatlas = XATLAS_S_PER_FACE * faces
    probe = XATLAS_S_PER_FACE * PROBE_FACES if faces > PROBE_MIN_FACES else bound
    uv = xatlas if xatlas <= bound else probe + FAST_UV_S_PER_FACE * faces
    texels = texture_size ** 2
    vis_pixels = min(view_pixels, 1024 * 768)
    texture = TEXEL_S * texels + views * (VIEW_TEXEL_S * texels + VIEW_PIXEL_S * vis_pixels + VIEW_FACE_S * faces)
    if device_type != "cpu":
        texture /= GPU_SPEEDUP
    if texture_size <= 0:
        uv = texture = 0.0
    return {"decimate": decimate, "symmetry": 1.5 + 5e-6 * faces, "uv": uv, "texture": texture,
            "write": 0.3 + 2e-5 * faces + 1e-7 * texels}


def estimate_run_seconds(scene: object) -> dict[str, float]:
    """Seconds of post-processing expected before the optimised mesh is known (its faces: the budget, or less)."""
    from backend.io.views import DEFAULT_MAX_FACES, DEFAULT_SETTINGS
    from backend.raster import resolve_device

    settings = {**DEFAULT_SETTINGS, **scene.settings}
    budget = int(settings["max_faces"] or DEFAULT_MAX_FACES)
    device = resolve_device(settings["device"]).type
    faces = min(budget, CPU_FACES if device == "cpu" else GPU_FACES)
    pixels = max(v.width * v.height for v in scene.views)
    return estimate_post_seconds(faces, budget, len(scene.views), pixels, int(settings["texture_size"]), device)
