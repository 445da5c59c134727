"""Conversion of a pycolmap Reconstruction (undistorted, pinhole cameras) to SfmCameras and sparse points."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pycolmap

from backend.capture.sfm_types import SfmCamera


def pinhole_K(camera: pycolmap.Camera) -> np.ndarray:
    """K of a PINHOLE or SIMPLE_PINHOLE camera; COLMAP's pixel centres are at +0.5 like ours, so no shift."""
    p = np.asarray(camera.params, dtype=np.float64)
    if camera.model_name == "SIMPLE_PINHOLE":
        fx = fy = p[0]
        cx, cy = p[1], p[2]
    elif camera.model_name == "PINHOLE":
        fx, fy, cx, cy = p
    else:
        raise ValueError(f"camera {camera.camera_id} is {camera.model_name}, not a pinhole camera: undistort it first")
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def world_to_camera(image: pycolmap.Image) -> tuple[np.ndarray, np.ndarray]:
    """R (3, 3), t (3,) with x_cam = R X + t: COLMAP's cam_from_world is already OpenCV's convention."""
    m = np.asarray(image.cam_from_world().matrix(), dtype=np.float64)
    return m[:, :3].copy(), m[:, 3].copy()


def registered_images(rec: pycolmap.Reconstruction) -> list[pycolmap.Image]:
    """The model's registered images, sorted by file name."""
    return sorted((rec.image(i) for i in rec.reg_image_ids()), key=lambda im: im.name)


def sfm_cameras(rec: pycolmap.Reconstruction, photos_dir: Path, image_dir: Path) -> list[SfmCamera]:
    """One SfmCamera per registered image (sorted by name); the undistorted image is image_dir/<stem>.png."""
    out = []
    for image in registered_images(rec):
        cam = image.camera
        R, t = world_to_camera(image)
        stem = Path(image.name).stem
        out.append(SfmCamera(name=stem, photo=Path(photos_dir) / image.name, image_path=Path(image_dir) / f"{stem}.png",
                             K=pinhole_K(cam), R=R, t=t, width=int(cam.width), height=int(cam.height)))
    return out


def sparse_points(rec: pycolmap.Reconstruction) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Points (N, 3), colours (N, 3) uint8 and, per point, the sorted indices (into registered_images
    order) of the images that observe it."""
    index = {im.image_id: k for k, im in enumerate(registered_images(rec))}
    ids = sorted(rec.point3D_ids())
    points = np.zeros((len(ids), 3))
    colors = np.zeros((len(ids), 3), dtype=np.uint8)
    views = []
    for n, pid in enumerate(ids):
        p = rec.point3D(pid)
        points[n] = p.xyz
        colors[n] = p.color
        views.append(np.unique(np.array([index[e.image_id] for e in p.track.elements if e.image_id in index],
                                        dtype=np.int64)))
    return points, colors, views
