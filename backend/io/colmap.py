"""COLMAP model layout: sparse/0/ (or sparse/) with cameras, images, points3D (.bin or .txt) beside images/.

Read with pycolmap. COLMAP's world-to-camera pose and pixel convention (origin at the top-left corner of the
top-left pixel, pixel centres at +0.5) are ours, so R, t and K carry over unchanged; lens distortion is
removed by resampling each photo to a pinhole view (backend/io/undistort.py). The sparse points and their
colours are kept on the Scene. Masks: masks/<image name>.png or masks/<stem>.png when present (white =
object), else the image's alpha, else None (made automatically later).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from backend.runtime.errors import JobError
from backend.io.common import mask_from_alpha, view_names
from backend.io.images import read_image, read_mask
from backend.io.undistort import CachedUndistorter
from backend.io.views import DEFAULT_SETTINGS, Scene, View

log = logging.getLogger(__name__)
MODEL_FILES = ("cameras", "images", "points3D")
LAYOUT_HINT = ("the COLMAP layout is a folder with sparse/0/ (or sparse/) holding cameras, images and points3D "
               "(.bin or .txt) and images/ beside it holding the photos")


def is_model_dir(folder: Path) -> bool:
    """True when `folder` holds cameras, images and points3D as .bin or .txt."""
    return all((folder / f"{n}.bin").is_file() or (folder / f"{n}.txt").is_file() for n in MODEL_FILES)


def find_model(path: Path) -> tuple[Path, Path] | None:
    """(model folder, project root holding images/) for a project folder or a model folder, if any."""
    path = Path(path)
    if not path.is_dir():
        return None
    for model in (path / "sparse" / "0", path / "sparse"):
        if is_model_dir(model):
            return model, path
    if is_model_dir(path):
        root = path.parent.parent if path.parent.name == "sparse" else path.parent
        return path, root
    return None


def read_reconstruction(model_dir: Path):
    """pycolmap.Reconstruction of a model folder; unreadable files become a JobError naming the folder."""
    import pycolmap

    try:
        return pycolmap.Reconstruction(str(model_dir))
    except Exception as exc:  # pycolmap raises plain exceptions for malformed models
        raise JobError(f"cannot read the COLMAP model in {model_dir}: {exc}",
                       "re-export it from COLMAP (File > Export model, or `colmap model_converter`)") from exc


def find_mask(root: Path, image_name: str) -> Path | None:
    """masks/<image name>.png (COLMAP's mask naming) or masks/<name without extension>.png."""
    for cand in (root / "masks" / f"{image_name}.png", (root / "masks" / image_name).with_suffix(".png")):
        if cand.is_file():
            return cand
    return None


def load_colmap(path: Path) -> Scene:
    """Read a COLMAP project (or model folder) into a Scene of undistorted pinhole views with the sparse points."""
    found = find_model(path)
    if found is None:
        raise JobError(f"no COLMAP model (cameras, images, points3D) in {path}", LAYOUT_HINT)
    model_dir, root = found
    others = [p.name for p in (root / "sparse").glob("*") if p.is_dir() and p != model_dir and is_model_dir(p)]
    if others:
        log.warning("using the COLMAP model %s; %s also hold(s) models (disconnected parts of the capture)",
                    model_dir, ", ".join(f"sparse/{o}" for o in sorted(others)))
    rec = read_reconstruction(model_dir)
    images_dir = root / "images"
    registered = sorted((im for im in rec.images.values() if im.has_pose), key=lambda im: im.name)
    skipped = len(rec.images) - len(registered)
    if skipped:
        log.warning("%d image(s) of the COLMAP model have no pose and are left out", skipped)
    undistorter = CachedUndistorter()
    views = []
    for image, name in zip(registered, view_names([im.name for im in registered])):
        camera = rec.cameras[image.camera_id]
        image_path = images_dir / image.name
        rgb, alpha = read_image(image_path, view=name)
        h, w = rgb.shape[:2]
        if (w, h) != (camera.width, camera.height):
            raise JobError(f"view {name!r}: image {image_path} is {w}x{h} but its COLMAP camera "
                           f"{image.camera_id} is {camera.width}x{camera.height}",
                           "use the photos the model was made from (not a resized copy)", view=name)
        mask_path = find_mask(root, image.name)
        mask = read_mask(mask_path, view=name) if mask_path else mask_from_alpha(alpha)
        if mask is not None and mask.shape != (h, w):
            raise JobError(f"view {name!r}: mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} but the image "
                           f"is {w}x{h}", "the mask must have the image's size", view=name)
        K = np.asarray(camera.calibration_matrix(), dtype=np.float64)
        extra = np.asarray(camera.params, dtype=np.float64)[list(camera.extra_params_idxs())]
        rgb, mask, K = undistorter(rgb, mask, K, camera.model.name, extra, name)
        pose = image.cam_from_world()
        R = np.asarray(pose.rotation.matrix(), dtype=np.float64)
        t = np.asarray(pose.translation, dtype=np.float64)
        views.append(View(name, rgb, mask, K, R, t))
    points = [p for _, p in sorted(rec.points3D.items())]
    xyz = np.array([p.xyz for p in points], dtype=np.float64).reshape(-1, 3)
    colors = np.array([p.color for p in points], dtype=np.uint8).reshape(-1, 3)
    return Scene(views=views, bbox=None, settings=dict(DEFAULT_SETTINGS),
                 points=xyz if len(xyz) else None, point_colors=colors if len(colors) else None)
