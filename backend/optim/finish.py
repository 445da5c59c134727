"""Post-processing stages (symmetry, UV map, texture) and writing the result folder."""
from __future__ import annotations

import io
import time
from dataclasses import dataclass

import numpy as np

from backend.io.views import Scene
from backend.protocol import Reporter
from backend.result import ResultWriter, atomic_write_bytes, write_json, write_mtl, write_obj


@dataclass
class PostResult:
    """Final mesh in world coordinates, with its UVs, texture and symmetry plane when computed."""

    vertices: np.ndarray
    faces: np.ndarray
    uv: np.ndarray | None
    texture: np.ndarray | None
    plane: dict | None
    symmetric: bool | None


def post_process(vertices: np.ndarray, faces: np.ndarray, scene: Scene, settings: dict, rasterizer: object,
                 reporter: Reporter, timings: dict) -> PostResult:
    """Symmetry plane (unless off), UV map and baked texture (unless texture_size is 0)."""
    plane = None
    symmetric = None
    plane_obj = None
    reporter.stage("symmetry")
    t = time.monotonic()
    if settings["symmetry"] != "off":
        from backend.post.symmetry import detect_symmetry

        plane_obj, symmetric = detect_symmetry(vertices, faces)
        if symmetric or settings["symmetry"] == "enforce":
            plane = plane_obj.to_dict()
        reporter.log(f"symmetry score {plane_obj.score:.4f} ({'symmetric' if symmetric else 'not symmetric'})")
    timings["symmetry"] = round(time.monotonic() - t, 3)

    size = int(settings["texture_size"])
    reporter.stage("uv")
    t = time.monotonic()
    uv = texture = None
    if size > 0:
        from backend.post.uv import compute_uv

        uvmesh = compute_uv(vertices, faces, seam_plane=plane_obj if plane is not None else None,
                            resolution=size)
        vertices, faces, uv = uvmesh.vertices, uvmesh.faces, uvmesh.uv
    timings["uv"] = round(time.monotonic() - t, 3)

    reporter.stage("texture")
    t = time.monotonic()
    if size > 0:
        from backend.post.texture import bake_texture

        texture = bake_texture(uvmesh, scene.views, size, rasterizer)
    timings["texture"] = round(time.monotonic() - t, 3)
    return PostResult(vertices, faces, uv, texture, plane, symmetric)


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
        atomic_write_bytes(writer.path(texture_name), png_bytes(post.texture))
    write_mtl(writer.path("mesh.mtl"), texture_name)
    write_obj(writer.path("mesh.obj"), post.vertices, post.faces, uv=post.uv, mtl_name="mesh.mtl")
    result.update({
        "mesh": "mesh.obj", "material": "mesh.mtl", "texture": texture_name,
        "symmetry": post.plane, "symmetric": post.symmetric,
        "vertices": int(len(post.vertices)), "faces": int(len(post.faces)),
    })
    timings["write"] = round(time.monotonic() - t_write, 3)
    result["timings_s"] = dict(timings)
    write_json(writer.path("result.json"), result)
