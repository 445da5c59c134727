"""Render a phone-like photo capture with Cycles: photos/ (JPEG + EXIF only) and, kept apart, truth/.

truth/job/ is a DESIGN job folder with the true cameras and the true object-only masks (masks/), truth/mesh.obj
the object in world coordinates as rendered, truth/truth.json the photo -> view map and the world frame.
"""
from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import bpy
import imageio.v3 as iio
import numpy as np
from mathutils import Matrix

from scenegen import capture_scene, objects, photo_files, walkaround
from scenegen.render import _default_settings, camera_math, camera_params, configure_render, write_obj

MASK_SAMPLES = 4


def configure_photo_render(width: int, height: int, samples: int, seed: int) -> None:
    """Cycles CPU at few samples with OpenImageDenoise, opaque film, AgX colour like a phone's tone curve."""
    configure_render(width, height, samples, seed)
    scene = bpy.context.scene
    cyc = scene.cycles
    cyc.use_denoising = True
    cyc.denoiser = "OPENIMAGEDENOISE"
    cyc.denoising_input_passes = "RGB_ALBEDO_NORMAL"
    cyc.denoising_prefilter = "FAST"
    cyc.max_bounces = 3
    cyc.diffuse_bounces = 1
    scene.render.film_transparent = False
    scene.render.image_settings.color_mode = "RGB"
    scene.view_settings.view_transform = "AgX"
    scene.view_settings.look = "AgX - Medium High Contrast"


def configure_mask_render() -> None:
    """Object coverage only: transparent film, no denoising, few samples (alpha is all that is kept)."""
    scene = bpy.context.scene
    scene.cycles.samples = MASK_SAMPLES
    scene.cycles.use_denoising = False
    scene.cycles.max_bounces = 0
    scene.render.film_transparent = True
    scene.render.image_settings.color_mode = "RGBA"


def add_phone_camera(name: str, matrix_world: np.ndarray, optics: walkaround.PhoneOptics) -> bpy.types.Object:
    """A camera with the phone's lens and sensor (width fits the image) at the given pose."""
    data = bpy.data.cameras.new(name)
    data.lens = optics.lens_mm
    data.sensor_width = optics.sensor_width_mm
    data.sensor_fit = "HORIZONTAL"
    data.clip_start, data.clip_end = 0.01, 1000.0
    cam = bpy.data.objects.new(name, data)
    cam.matrix_world = Matrix(matrix_world.tolist())
    bpy.context.scene.collection.objects.link(cam)
    return cam


def render_still(cam: bpy.types.Object, path: Path) -> np.ndarray:
    """Render the camera to a PNG and read it back."""
    scene = bpy.context.scene
    scene.camera = cam
    scene.render.filepath = str(path.resolve())
    bpy.ops.render.render(write_still=True)
    return iio.imread(path)


def render_photos(poses: list[np.ndarray], optics: walkaround.PhoneOptics, photos: Path, images: Path,
                  jpeg_quality: int, exif_focal: bool) -> list[bpy.types.Object]:
    """One camera per pose: the lossless render into `images`, the phone's JPEG (+ EXIF) into `photos`."""
    scene = bpy.context.scene
    width, height = scene.render.resolution_x, scene.render.resolution_y
    cams = []
    for i, pose in enumerate(poses):
        cam = add_phone_camera(f"IMG_{i + 1:04d}", pose, optics)
        rgb = render_still(cam, images / f"{cam.name}.png")[..., :3]
        exif = photo_files.phone_exif(optics, width, height, i) if exif_focal else None
        photo_files.write_jpeg(photos / f"{cam.name}.jpg", rgb, jpeg_quality, exif)
        cams.append(cam)
    return cams


def render_masks(cams: list[bpy.types.Object], floor: bpy.types.Object, masks: Path, tmp: Path) -> list[dict]:
    """The object's coverage seen by each camera (floor and room hidden) as a 0/255 mask; job.json view entries."""
    configure_mask_render()
    floor.visible_camera = False
    views = []
    for cam in cams:
        alpha = render_still(cam, tmp / "mask.png")[..., 3]
        iio.imwrite(masks / f"{cam.name}.png", np.where(alpha >= 128, 255, 0).astype(np.uint8))
        R, t = camera_math.extrinsics_from_matrix_world(np.array(cam.matrix_world))
        K = camera_math.intrinsics(camera_params(cam))
        w, h = camera_math.image_size(camera_params(cam))
        views.append({"name": cam.name, "image": f"images/{cam.name}.png", "mask": f"masks/{cam.name}.png",
                      "width": w, "height": h, "K": K.tolist(), "R": R.tolist(), "t": t.tolist()})
    return views


def write_truth(truth: Path, views: list[dict], vertices: np.ndarray, faces: np.ndarray, info: dict) -> None:
    """truth/job/job.json (object bbox + 10 %), truth/mesh.obj and truth/truth.json."""
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    pad = 0.1 * float(np.max(hi - lo))
    job = {"version": 1, "views": views, "bbox": {"min": (lo - pad).tolist(), "max": (hi + pad).tolist()},
           "settings": _default_settings()}
    (truth / "job" / "job.json").write_text(json.dumps(job, indent=1), encoding="utf-8")
    write_obj(truth / "mesh.obj", vertices, faces)
    (truth / "truth.json").write_text(json.dumps(info, indent=1), encoding="utf-8")


def render_capture_scene(out_dir: Path, mesh: str, n_photos: int, rings: int, resolution: tuple[int, int],
                         samples: int, seed: int, jpeg_quality: int, exif_focal: bool) -> Path:
    """Build the scene, render every photo and its true mask, write photos/ and truth/; returns out_dir.

    truth.json is written last: its presence means the capture is complete.
    """
    width, height = map(int, resolution)
    out_dir = Path(out_dir)
    photos, truth = out_dir / "photos", out_dir / "truth"
    for d in (photos, truth / "job" / "images", truth / "job" / "masks"):
        d.mkdir(parents=True, exist_ok=True)
    optics = walkaround.PhoneOptics()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    configure_photo_render(width, height, samples, seed)
    with tempfile.TemporaryDirectory(prefix="scenegen_capture_") as tmp_name:
        tmp = Path(tmp_name)
        subject, floor, source_to_world = capture_scene.build_capture_scene(
            mesh, tmp, seed, detail=min(1.0, max(0.25, width / 480)))
        vertices, faces = objects.evaluated_geometry(subject)
        centre = (vertices.min(axis=0) + vertices.max(axis=0)) / 2
        radius = float(np.linalg.norm(vertices - centre, axis=1).max())
        vfov = 2 * math.atan(optics.sensor_width_mm * height / width / 2 / optics.lens_mm)
        poses = walkaround.walkaround_poses(n_photos, rings, seed, centre, radius, vfov)
        cams = render_photos(poses, optics, photos, truth / "job" / "images", jpeg_quality, exif_focal)
        views = render_masks(cams, floor, truth / "job" / "masks", tmp)
    info = {
        "photos": {f"{v['name']}.jpg": v["name"] for v in views},
        "world": {"up": [0.0, 0.0, 1.0], "floor_z": 0.0, "object_centre": centre.tolist(),
                  "object_radius": radius, "units": "object's largest side is 2"},
        "source_to_world": source_to_world.tolist(), "mesh": mesh,
        "camera": {"lens_mm": optics.lens_mm, "sensor_width_mm": optics.sensor_width_mm,
                   "focal_px": float(views[0]["K"][0][0]), "focal_35mm": optics.focal_35mm(width, height),
                   "exif": exif_focal},
        "n_photos": n_photos, "rings": rings, "elevations_deg": walkaround.ring_elevations(rings).tolist(),
        "resolution": [width, height], "samples": samples, "seed": seed, "jpeg_quality": jpeg_quality,
        "blender": bpy.app.version_string,
    }
    write_truth(truth, views, vertices, faces, info)
    return out_dir
