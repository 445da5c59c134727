"""Render a job folder with Cycles: scene set-up, one render per camera, job.json from the real cameras."""
from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix

from scenegen import objects, rig

REPO_ROOT = Path(__file__).resolve().parents[1]
LENS_MM = 50.0
SENSOR_MM = 36.0


def _load_camera_math():
    """blender_addon/camera_math.py loaded by path, so the add-on's package __init__ never runs here."""
    name = "scenegen._camera_math"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "blender_addon" / "camera_math.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


camera_math = _load_camera_math()


def _default_settings() -> dict:
    """The backend's DEFAULT_SETTINGS (numpy-only module; backend never imports bpy)."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from backend.io.views import DEFAULT_SETTINGS

    return dict(DEFAULT_SETTINGS)


def configure_render(width: int, height: int, samples: int, seed: int) -> None:
    """Cycles on the CPU, few samples, no denoising, low bounces, transparent film, plain sRGB PNG."""
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    cyc = scene.cycles
    cyc.device = "CPU"
    cyc.samples = samples
    cyc.use_adaptive_sampling = False
    cyc.use_denoising = False
    cyc.seed = seed
    cyc.max_bounces = 2
    cyc.diffuse_bounces = 1
    cyc.glossy_bounces = 1
    cyc.transmission_bounces = 0
    cyc.volume_bounces = 0
    cyc.transparent_max_bounces = 2
    cyc.caustics_reflective = False
    cyc.caustics_refractive = False
    if hasattr(cyc, "tile_size"):
        cyc.tile_size = 256
    r = scene.render
    r.resolution_x, r.resolution_y, r.resolution_percentage = width, height, 100
    r.pixel_aspect_x = r.pixel_aspect_y = 1.0
    r.film_transparent = True
    r.dither_intensity = 0.0
    r.use_persistent_data = True
    r.image_settings.file_format = "PNG"
    r.image_settings.color_mode = "RGBA"
    r.image_settings.color_depth = "8"
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.look = "None"
    scene.frame_set(1)


def camera_params(cam: bpy.types.Object) -> "camera_math.BlenderCameraParams":
    """The Blender camera and render settings that decide K, read from the live objects."""
    d, r = cam.data, bpy.context.scene.render
    return camera_math.BlenderCameraParams(
        lens=d.lens, sensor_width=d.sensor_width, sensor_height=d.sensor_height,
        sensor_fit=d.sensor_fit, shift_x=d.shift_x, shift_y=d.shift_y,
        resolution_x=r.resolution_x, resolution_y=r.resolution_y,
        resolution_percentage=r.resolution_percentage,
        pixel_aspect_x=r.pixel_aspect_x, pixel_aspect_y=r.pixel_aspect_y)


def add_camera(name: str, matrix_world: np.ndarray) -> bpy.types.Object:
    """A perspective camera with the rig's lens at the given pose."""
    data = bpy.data.cameras.new(name)
    data.lens = LENS_MM
    data.sensor_width = SENSOR_MM
    data.sensor_fit = "AUTO"
    data.clip_start, data.clip_end = 0.01, 1000.0
    cam = bpy.data.objects.new(name, data)
    cam.matrix_world = Matrix(matrix_world.tolist())
    bpy.context.scene.collection.objects.link(cam)
    return cam


def write_obj(path: Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    """Triangle mesh as a Wavefront OBJ (1-based indices, full float precision)."""
    lines = [f"v {x:.9g} {y:.9g} {z:.9g}" for x, y, z in vertices]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def render_scene(out_dir: Path, mesh: str, n_views: int, resolution: int | tuple[int, int],
                 samples: int, seed: int, views_filter, settings: dict | None,
                 bbox_margin: float, roughness: float = 0.6) -> Path:
    """Build the scene, render every kept camera into out_dir/images and write job.json."""
    width, height = (resolution, resolution) if isinstance(resolution, int) else map(int, resolution)
    keep = rig.parse_filter(views_filter)
    job_settings = _default_settings()
    unknown = set(settings or {}) - set(job_settings)
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}; known: {sorted(job_settings)}")
    job_settings.update(settings or {})

    bpy.ops.wm.read_factory_settings(use_empty=True)
    configure_render(width, height, samples, seed)
    subject = objects.add_subject(mesh)
    scale, translation = objects.normalize_object(subject)
    objects.add_material(subject, seed, roughness)
    objects.add_lights()
    vertices, faces = objects.evaluated_geometry(subject)

    probe = add_camera("probe", np.eye(4))
    K = camera_math.intrinsics(camera_params(probe))
    bpy.data.objects.remove(probe)
    half_fov = min(math.atan(width / 2 / K[0, 0]), math.atan(height / 2 / K[1, 1]))
    radius = float(np.linalg.norm(vertices, axis=1).max())
    distance = rig.fit_distance(radius, 2 * half_fov)

    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    scene = bpy.context.scene
    views = []
    for i, direction in enumerate(rig.fibonacci_directions(n_views, seed)):
        eye = direction * distance
        if not keep(eye):
            continue
        name = f"cam_{i:03d}"
        cam = add_camera(name, rig.look_at(eye, np.zeros(3)))
        scene.camera = cam
        scene.render.filepath = str((out_dir / "images" / f"{name}.png").resolve())
        bpy.ops.render.render(write_still=True)
        R, t = camera_math.extrinsics_from_matrix_world(np.array(cam.matrix_world))
        K = camera_math.intrinsics(camera_params(cam))
        w, h = camera_math.image_size(camera_params(cam))
        views.append({"name": name, "image": f"images/{name}.png", "mask": None,
                      "width": w, "height": h, "K": K.tolist(), "R": R.tolist(), "t": t.tolist()})
    if not views:
        raise ValueError(f"view filter {views_filter!r} kept none of the {n_views} cameras")

    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    pad = bbox_margin * float(np.max(hi - lo))
    job = {"version": 1, "views": views,
           "bbox": {"min": (lo - pad).tolist(), "max": (hi + pad).tolist()},
           "settings": job_settings}
    (out_dir / "job.json").write_text(json.dumps(job, indent=1), encoding="utf-8")
    write_obj(out_dir / "reference.obj", vertices, faces)
    meta = {"mesh": mesh, "source_to_world": {"scale": scale, "translation": translation.tolist()},
            "n_views": n_views, "views_filter": views_filter if isinstance(views_filter, str) else None,
            "resolution": [width, height], "samples": samples, "seed": seed, "roughness": roughness,
            "camera_distance": distance, "blender": bpy.app.version_string}
    (out_dir / "scenegen.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return out_dir
