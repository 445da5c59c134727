"""Gathers the selected cameras, their images and masks and the bounds into a job folder."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable, Optional

import bpy
import numpy as np

from . import camera_math
from .job_spec import (GatherError, ViewSpec, bbox_of_points, build_job, fit_intrinsics, job_settings,
                       match_files, safe_name, write_job_json)
from .photo_job import FLOOR_PROP
from .png_io import float_rgba_to_uint8, png_info, write_png
from .point_cloud import MIN_POINTS, is_point_cloud, object_cloud
from .points_export import write_cloud
from .render_views import render_cameras


def selected_cameras(context) -> list:
    """Selected camera objects, sorted by name."""
    return sorted((o for o in context.selected_objects if o.type == "CAMERA"), key=lambda o: o.name)


def view_names(cams: list) -> list[str]:
    """The job's view name of each camera (file-system safe, unique), in the cameras' order."""
    taken: set = set()
    return [safe_name(c.name, taken) for c in cams]


def view_camera_map(cams: list) -> dict[str, str]:
    """View name -> camera object name, to map a run's refined cameras back to the scene."""
    return dict(zip(view_names(cams), (c.name for c in cams)))


def camera_params(cam, scene) -> camera_math.BlenderCameraParams:
    """The camera and render settings that decide the intrinsics."""
    d, r = cam.data, scene.render
    return camera_math.BlenderCameraParams(
        lens=d.lens, sensor_width=d.sensor_width, sensor_height=d.sensor_height, sensor_fit=d.sensor_fit,
        shift_x=d.shift_x, shift_y=d.shift_y, resolution_x=r.resolution_x, resolution_y=r.resolution_y,
        resolution_percentage=r.resolution_percentage, pixel_aspect_x=r.pixel_aspect_x,
        pixel_aspect_y=r.pixel_aspect_y)


def camera_pose(cam) -> tuple[np.ndarray, np.ndarray]:
    """World-to-camera (R, t) in the OpenCV convention."""
    return camera_math.extrinsics_from_matrix_world(np.array(cam.matrix_world))


def background_image(cam):
    """The camera's first usable background image datablock, or None."""
    for bg in cam.data.background_images:
        if getattr(bg, "source", "IMAGE") == "IMAGE" and bg.image is not None:
            return bg.image
    return None


_folder_cache: dict = {}


def folder_matches(folder: str, names: list[str]) -> dict[str, Path]:
    """match_files with a cache keyed on the folder's modification time (cheap enough for panels)."""
    p = Path(bpy.path.abspath(folder)) if folder else None
    if p is None or not p.is_dir():
        return {}
    key = (str(p), p.stat().st_mtime_ns, tuple(names))
    if key not in _folder_cache:
        _folder_cache.clear()
        _folder_cache[key] = match_files(p, names)
    return _folder_cache[key]


def describe_image(cam, settings, matches: Optional[dict] = None) -> Optional[str]:
    """Short label of where the camera's image comes from, or None when it has none."""
    if settings.image_source == "RENDER":
        return "rendered"
    if settings.image_source == "BACKGROUND":
        img = background_image(cam)
        return img.name if img is not None else None
    m = matches if matches is not None else folder_matches(settings.image_folder, [cam.name])
    return m[cam.name].name if cam.name in m else None


def _srgb_encode(x: np.ndarray) -> np.ndarray:
    """Linear to sRGB transfer function."""
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def _write_datablock(img, dst: Path) -> tuple[int, int]:
    """Write a Blender image as an 8-bit PNG (RGB or RGBA as the image has); returns (W, H)."""
    w, h = int(img.size[0]), int(img.size[1])
    if w == 0 or h == 0:
        raise GatherError(f"Image '{img.name}' could not be read (file missing or unsupported?).",
                          f"Check the file path: {img.filepath}")
    px = np.empty(w * h * 4, dtype=np.float32)
    img.pixels.foreach_get(px)
    px = px.reshape(h, w, 4)
    if img.is_float and img.colorspace_settings.name not in ("Non-Color", "Raw", "Linear"):
        px[..., :3] = _srgb_encode(px[..., :3])
    arr = float_rgba_to_uint8(px)
    if img.depth in (24, 48, 96):
        arr = arr[..., :3]
    write_png(dst, arr)
    return w, h


def _write_file(src: Path, dst: Path) -> tuple[int, int]:
    """Copy a PNG as is, or convert any other image file Blender reads; returns (W, H)."""
    if src.suffix.lower() == ".png":
        w, h, _, _ = png_info(src)
        shutil.copyfile(src, dst)
        return w, h
    img = bpy.data.images.load(str(src), check_existing=False)
    try:
        return _write_datablock(img, dst)
    finally:
        bpy.data.images.remove(img)


def _write_background(img, dst: Path) -> tuple[int, int]:
    """Write a camera's background image: copy its PNG file when possible, else from pixels."""
    path = Path(bpy.path.abspath(img.filepath_raw or img.filepath)) if (img.filepath_raw or img.filepath) else None
    if (img.source == "FILE" and img.packed_file is None and path is not None and path.is_file()
            and path.suffix.lower() == ".png"):
        return _write_file(path, dst)
    return _write_datablock(img, dst)


def bounds_of_object(obj) -> tuple[list, list]:
    """World-space axis-aligned bounds of an object's bounding box."""
    m = np.array(obj.matrix_world)
    corners = np.array([list(c) for c in obj.bound_box], dtype=float)
    world = corners @ m[:3, :3].T + m[:3, 3]
    return bbox_of_points(world)


def _files_for_cameras(folder_setting: str, cams: list, what: str, folder_hint: str, name_hint: str) -> dict:
    """The file matched to each camera in a user-chosen folder; GatherError naming what is missing."""
    folder = Path(bpy.path.abspath(folder_setting)) if folder_setting else None
    if folder is None or not folder.is_dir():
        raise GatherError(f"The {what} folder does not exist.", folder_hint)
    matches = match_files(folder, [c.name for c in cams])
    missing = [c.name for c in cams if c.name not in matches]
    if missing:
        raise GatherError(f"No {what} in {folder} for camera(s): {', '.join(missing)}.", name_hint)
    return matches


def write_start_points(obj, job_dir: Path) -> str:
    """The Start From point cloud in world space as initial_points.npz; its path relative to the job."""
    if not is_point_cloud(obj):
        raise GatherError(f"Start From '{obj.name}' is not a point cloud.",
                          "Pick a Point Cloud object or a mesh with vertices and no faces, or clear Start From.")
    points, normals = object_cloud(obj)
    if len(points) < MIN_POINTS or not np.all(np.isfinite(points)):
        raise GatherError(f"Start From '{obj.name}' has {len(points)} points (or NaN coordinates).",
                          f"It needs at least {MIN_POINTS} finite points; or clear Start From for the visual hull.")
    write_cloud(job_dir / "initial_points.npz", points, normals)
    return "initial_points.npz"


def gather_job(context, settings, job_dir: Path, progress: Optional[Callable[[str], None]] = None,
               iterations: int = 0) -> dict:
    """Write job.json, images/ and masks/ for the selected cameras; returns the job dict."""
    scene = context.scene
    others = [o.name for o in context.selected_objects if o.type != "CAMERA"]
    cams = selected_cameras(context)
    if not cams:
        extra = f" (selected: {', '.join(others[:3])}{'...' if len(others) > 3 else ''} - not cameras)" if others else ""
        raise GatherError(f"No camera selected{extra}.",
                          "Select the cameras to reconstruct from (each with an image), then press Reconstruct.")
    bad = [c.name for c in cams if c.data.type != "PERSP"]
    if bad:
        raise GatherError(f"Camera(s) {', '.join(bad)} are not perspective cameras.",
                          "Only perspective cameras are supported; deselect the others.")
    if len(cams) < 2:
        raise GatherError(f"Only one camera selected ({cams[0].name}); at least 2 are needed.",
                          "Select two or more cameras (ideally 10+ around the object), each with an image.")
    names = view_names(cams)
    images_dir = Path(job_dir) / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    if settings.image_source == "BACKGROUND":
        missing = [c.name for c in cams if background_image(c) is None]
        if missing:
            raise GatherError(f"Camera(s) without a background image: {', '.join(missing)}.",
                              "Give each camera a background image, deselect those cameras, "
                              "or choose another image source.")
    elif settings.image_source == "FOLDER":
        matches = _files_for_cameras(settings.image_folder, cams, "image", "Choose the folder holding the photos.",
                                     "Name each image after its camera (e.g. Camera.001.jpg), or deselect those "
                                     "cameras.")
    else:
        if progress:
            progress(f"Rendering {len(cams)} views")
        render_cameras(scene, cams, names, images_dir, settings.render_engine, settings.render_samples,
                       progress=(lambda i, n: progress(f"Rendering view {i + 1}/{n}")) if progress else None)
    mask_matches: dict = {}
    if settings.mask_source == "FOLDER":
        mask_matches = _files_for_cameras(settings.mask_folder, cams, "mask", "Choose the folder holding the masks.",
                                          "Name each mask after its camera, or use the images' alpha as masks.")
        (Path(job_dir) / "masks").mkdir(exist_ok=True)
    views = []
    for cam, name in zip(cams, names):
        dst = images_dir / f"{name}.png"
        if settings.image_source == "BACKGROUND":
            size = _write_background(background_image(cam), dst)
        elif settings.image_source == "FOLDER":
            size = _write_file(matches[cam.name], dst)
        else:
            size = png_info(dst)[:2]
        params = camera_params(cam, scene)
        K = fit_intrinsics(camera_math.intrinsics(params), camera_math.image_size(params), size, cam.name)
        R, t = camera_pose(cam)
        mask_rel = None
        if mask_matches:
            mdst = Path(job_dir) / "masks" / f"{name}.png"
            msize = _write_file(mask_matches[cam.name], mdst)
            if tuple(msize) != tuple(size):
                raise GatherError(f"Camera '{cam.name}': mask is {msize[0]}x{msize[1]}, image is {size[0]}x{size[1]}.",
                                  "Each mask must have the size of its image.")
            mask_rel = f"masks/{name}.png"
        views.append(ViewSpec(name, f"images/{name}.png", mask_rel, size[0], size[1], K, R, t))
    bbox = floor = None
    if settings.bbox_source == "OBJECT":
        if settings.bbox_object is None:
            raise GatherError("Bounds is set to Object but no object is chosen.",
                              "Pick an object around the subject (e.g. a cube), or use Automatic.")
        bbox = bounds_of_object(settings.bbox_object)
        value = settings.bbox_object.get(FLOOR_PROP)  # Import Photos' box knows the floor the object stands on
        floor = [float(x) for x in value] if value is not None and len(value) == 4 else None
    w, h = views[0].width, views[0].height
    job = build_job(views, bbox, job_settings(settings.quality, settings.device, w, h,
                                              symmetry=settings.symmetry.lower(), iterations=iterations,
                                              max_faces=settings.max_faces,
                                              refine_cameras=settings.refine_cameras), floor)
    if getattr(settings, "start_points", None) is not None:
        job["settings"]["initial_mesh"] = write_start_points(settings.start_points, Path(job_dir))
    write_job_json(Path(job_dir), job)
    return job
