"""Post-processing stages (face budget, symmetry, UV map, texture) and writing the result folder."""
from __future__ import annotations

import io
import time
from dataclasses import dataclass, field

import numpy as np

from backend.io.views import DEFAULT_MAX_FACES, Scene
from backend.runtime.protocol import Reporter
from backend.runtime.result import ResultWriter, atomic_write_bytes, write_json, write_mtl, write_obj
from backend.runtime.worker import run_killable

DECIMATE_TIMEOUT_S = 300.0
PNG_TIMEOUT_S = 600.0
IN_PROCESS_PNG_BYTES = 2048 * 2048 * 3  # larger textures are encoded in a killable worker (cancel stays quick)
UV_STEPS = 100


@dataclass
class PostResult:
    """Final mesh in world coordinates, with its UVs, texture and symmetry plane when computed."""

    vertices: np.ndarray
    faces: np.ndarray
    uv: np.ndarray | None
    texture: np.ndarray | None
    plane: dict | None
    symmetric: bool | None
    info: dict = field(default_factory=dict)  # result.json entries: decimation, uv
    warnings: list[str] = field(default_factory=list)


def _decimate(vertices: np.ndarray, faces: np.ndarray, budget: int, reporter: Reporter,
              warnings: list[str]) -> tuple[np.ndarray, np.ndarray, dict]:
    """Apply the face budget in a killable worker; on failure keep the mesh and warn."""
    from backend.post.decimate import Decimation, decimate_with_cost

    t = time.monotonic()
    if len(faces) <= budget:
        return vertices, faces, Decimation(len(faces), len(faces), budget, 0.0).to_dict()
    try:
        v, f, chamfer, hausdorff = run_killable(decimate_with_cost, (vertices, faces, budget),
                                                DECIMATE_TIMEOUT_S, reporter.check_cancel, label="decimation")
    except (TimeoutError, RuntimeError) as exc:
        warnings.append(f"the mesh has {len(faces)} faces, over the budget of {budget}, but decimation failed "
                        f"({exc}); kept it as it is")
        reporter.log(f"warning: {warnings[-1]}")
        return vertices, faces, Decimation(len(faces), len(faces), budget, time.monotonic() - t).to_dict()
    info = Decimation(len(faces), len(f), budget, time.monotonic() - t, chamfer, hausdorff).to_dict()
    reporter.log(f"decimated {len(faces)} -> {len(f)} faces (budget {budget}), Chamfer {chamfer:.2e} "
                 f"of the bbox diagonal")
    return v, f, info


def _estimates(faces: int, budget: int, scene: Scene, size: int, rasterizer: object) -> dict[str, float]:
    """Estimated seconds of the post-processing stages for the time-left figure."""
    from backend.post.estimate import estimate_post_seconds

    pixels = max(v.width * v.height for v in scene.views) if scene.views else 0
    seconds = estimate_post_seconds(faces, budget, len(scene.views), pixels, size,
                                    getattr(getattr(rasterizer, "device", None), "type", "cpu"))
    if not scene.views:
        seconds["texture"] = 0.0  # nothing to bake from (points-to-mesh)
    return seconds


def post_process(vertices: np.ndarray, faces: np.ndarray, scene: Scene, settings: dict, rasterizer: object,
                 reporter: Reporter, timings: dict) -> PostResult:
    """Face budget, symmetry plane (unless off), UV map and baked texture, each stage cancellable at once.

    A texture size of 0 skips the UV map and the texture; a scene without views gets the UV map only.
    """
    warnings: list[str] = []
    info: dict = {}
    size = int(settings["texture_size"])
    budget = int(settings.get("max_faces") or DEFAULT_MAX_FACES)
    reporter.expect(_estimates(len(faces), budget, scene, size, rasterizer))
    reporter.stage("decimate")
    reporter.progress("decimate", 0, 1)
    t = time.monotonic()
    vertices, faces, info["decimation"] = _decimate(vertices, faces, budget, reporter, warnings)
    timings["decimate"] = round(time.monotonic() - t, 3)
    reporter.progress("decimate", 1, 1)
    reporter.expect({k: v for k, v in _estimates(len(faces), budget, scene, size, rasterizer).items()
                     if k != "decimate"})

    plane = None
    symmetric = None
    plane_obj = None
    reporter.stage("symmetry")
    reporter.progress("symmetry", 0, 1)
    t = time.monotonic()
    if settings["symmetry"] != "off":
        from backend.post.symmetry import detect_symmetry

        plane_obj, symmetric = detect_symmetry(vertices, faces)
        if symmetric or settings["symmetry"] == "enforce":
            plane = plane_obj.to_dict()
        reporter.log(f"symmetry score {plane_obj.score:.4f} ({'symmetric' if symmetric else 'not symmetric'})")
    reporter.progress("symmetry", 1, 1)
    timings["symmetry"] = round(time.monotonic() - t, 3)

    reporter.stage("uv")
    t = time.monotonic()
    uv = texture = None
    if size > 0:
        from backend.post.uv_stage import guarded_uv, uv_time_bound

        bound = uv_time_bound(len(faces))
        reporter.progress("uv", 0, UV_STEPS)
        uvmesh, warning = guarded_uv(vertices, faces, plane_obj if plane is not None else None, size,
                                     poll=reporter.check_cancel,
                                     progress=lambda frac: reporter.progress("uv", int(UV_STEPS * frac), UV_STEPS))
        if warning:
            warnings.append(warning)
            reporter.log(f"warning: {warning}")
        vertices, faces, uv = uvmesh.vertices, uvmesh.faces, uvmesh.uv
        reporter.progress("uv", UV_STEPS, UV_STEPS)
        info["uv"] = {"method": uvmesh.method, "charts": uvmesh.charts,
                      "packing_efficiency": round(uvmesh.efficiency, 4),
                      "seconds": round(time.monotonic() - t, 3),
                      "time_bound_s": round(bound, 1)}
    timings["uv"] = round(time.monotonic() - t, 3)

    reporter.stage("texture")
    t = time.monotonic()
    if size > 0 and scene.views:
        from backend.post.texture import bake_texture

        reporter.progress("texture", 0, len(scene.views))

        def texture_progress(done: int, total: int) -> None:
            reporter.check_cancel()
            reporter.progress("texture", done, total)

        texture = bake_texture(uvmesh, scene.views, size, rasterizer, progress=texture_progress)
    timings["texture"] = round(time.monotonic() - t, 3)
    return PostResult(vertices, faces, uv, texture, plane, symmetric, info, warnings)


def png_bytes(image: np.ndarray) -> bytes:
    """PNG encoding of an (H, W, 3) uint8 image."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def write_result(writer: ResultWriter, post: PostResult, result: dict, timings: dict, t_write: float) -> None:
    """Write mesh.obj, mesh.mtl, texture.png and result.json into the staging folder."""
    texture_name = "texture.png" if post.texture is not None else None
    if texture_name:
        encoded = run_killable(png_bytes, (post.texture,), PNG_TIMEOUT_S, label="PNG encoding") \
            if post.texture.size > IN_PROCESS_PNG_BYTES else png_bytes(post.texture)
        atomic_write_bytes(writer.path(texture_name), encoded)
    write_mtl(writer.path("mesh.mtl"), texture_name)
    write_obj(writer.path("mesh.obj"), post.vertices, post.faces, uv=post.uv, mtl_name="mesh.mtl")
    result.update({
        "mesh": "mesh.obj", "material": "mesh.mtl", "texture": texture_name,
        "symmetry": post.plane, "symmetric": post.symmetric,
        "vertices": int(len(post.vertices)), "faces": int(len(post.faces)),
        **post.info,
    })
    result["warnings"] = list(result.get("warnings", [])) + post.warnings
    timings["write"] = round(time.monotonic() - t_write, 3)
    result["timings_s"] = dict(timings)
    write_json(writer.path("result.json"), result)


def commit_result(writer: ResultWriter, post: PostResult, result: dict, timings: dict[str, float], t: float,
                  reporter: Reporter) -> dict:
    """Write the result files, then move the folder into place; from then on the run is done (cancel or not).

    A cancel before the move leaves no result folder; one during it is deferred, and once the folder is
    in place the reporter is finished, so the run ends with exit 0 and its `done` line (DESIGN.md).
    """
    write_result(writer, post, result, timings, t)
    reporter.hold_for_test("commit:before")
    with reporter.critical():
        writer.commit()
        reporter.hold_for_test("commit:renamed")
        reporter.finish()
    reporter.hold_for_test("commit:after")
    return result
