"""Refined cameras of a run (result.json "cameras"): parsing, the poses and lenses to apply, panel rows.

Pure numpy, no bpy: the import, the Apply Refined Cameras operator and the panel use it, and the tests
check it directly. Conventions as in DESIGN.md "Cameras" (OpenCV K, R, t, world-to-camera).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from . import camera_math

ROTATION_TOLERANCE = 1e-4


@dataclass(frozen=True)
class RunCameras:
    """What maps a run's refined cameras back to the scene: job.json's views, view name -> camera object name."""

    job_views: tuple
    view_cameras: dict


@dataclass(frozen=True)
class RefinedCamera:
    """One view's refined camera from result.json, with the Blender camera object it came from."""

    view: str
    camera: str
    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    width: int
    height: int
    rotation_deg: float
    translation: float
    weight: float
    aligned: bool
    held: bool = False  # kept on the given camera: its correction stayed within the optimisation's noise


def _matrix(value, shape: tuple[int, ...], what: str, view: str) -> np.ndarray:
    """A finite float array of the given shape from a JSON value, else ValueError naming the view."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.shape != shape or not np.all(np.isfinite(arr)):
        raise ValueError(f"result.json camera '{view}': {what} is not a finite {'x'.join(map(str, shape))} "
                         f"array (got {value!r:.80}).")
    return arr


def _number(entry: dict, key: str, view: str, default: Optional[float] = None) -> float:
    """A finite number from a camera entry (default when absent), else ValueError naming the view."""
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"result.json camera '{view}': '{key}' must be a finite number (got {value!r}).")
    return float(value)


def parse_refined_cameras(result: dict, job_views: Sequence[dict],
                          view_cameras: dict[str, str]) -> tuple[list[RefinedCamera], float]:
    """The refined cameras of result.json in job order, and the shared focal scale; ValueError on bad data.

    job_views are job.json's views (name, width, height); view_cameras maps each view name to the
    Blender camera object it was gathered from.
    """
    entries = result.get("cameras")
    if not isinstance(entries, list):
        raise ValueError(f"result.json 'cameras' must be a list (got {type(entries).__name__}).")
    sizes = {str(v["name"]): (int(v["width"]), int(v["height"])) for v in job_views}
    scale = result.get("camera_focal_scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"result.json 'camera_focal_scale' must be a positive number (got {scale!r}).")
    out: list[RefinedCamera] = []
    seen: set = set()
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ValueError(f"result.json 'cameras' holds an entry without a name: {entry!r:.80}.")
        view = entry["name"]
        if view not in sizes or view not in view_cameras:
            raise ValueError(f"result.json camera '{view}' is not a view of this run's job "
                             f"(views: {', '.join(sorted(sizes))[:200]}).")
        if view in seen:
            raise ValueError(f"result.json lists camera '{view}' twice.")
        seen.add(view)
        K = _matrix(entry.get("K"), (3, 3), "K", view)
        R = _matrix(entry.get("R"), (3, 3), "R", view)
        t = _matrix(entry.get("t"), (3,), "t", view)
        if np.abs(R @ R.T - np.eye(3)).max() > ROTATION_TOLERANCE or np.linalg.det(R) <= 0:
            raise ValueError(f"result.json camera '{view}': R is not a rotation matrix.")
        if K[0, 0] <= 0 or K[1, 1] <= 0:
            raise ValueError(f"result.json camera '{view}': K has a non-positive focal length.")
        aligned = entry.get("aligned", True)
        out.append(RefinedCamera(view, view_cameras[view], K, R, t, *sizes[view],
                                 _number(entry, "rotation_deg", view, 0.0), _number(entry, "translation", view, 0.0),
                                 _number(entry, "weight", view, 1.0), aligned is not False,
                                 entry.get("held", False) is True))
    return out, float(scale)


def camera_matrix_world(R: np.ndarray, t: np.ndarray, scale: Sequence[float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """The 4x4 Blender matrix_world of a camera with OpenCV pose (R, t), keeping the object's scale."""
    location, rotation = camera_math.pose_from_opencv(R, t)
    m = np.eye(4)
    m[:3, :3] = rotation * np.asarray(scale, dtype=np.float64)
    m[:3, 3] = location
    return m


def lens_for_focal(params: camera_math.BlenderCameraParams, fx: float, image_size: tuple[int, int]) -> float:
    """The lens (mm) that gives the camera focal length fx (pixels) on an image of image_size.

    Sensor fit, sensor size, shift and render settings stay as they are, so cx, cy do not move:
    the gathered K (camera_math.intrinsics fitted to the image size) then has exactly this fx.
    """
    render_w, _ = camera_math.image_size(params)
    fx_now = camera_math.intrinsics(params)[0, 0] * image_size[0] / render_w
    return params.lens * fx / fx_now


def _plain_length(value: float) -> str:
    """A length in scene units, three significant digits."""
    return f"{value:.3g}"


def panel_rows(cameras: Sequence[RefinedCamera], focal_scale: float, present: Optional[set] = None,
               length: Callable[[float], str] = _plain_length,
               limit: Optional[int] = None) -> list[tuple[tuple[str, ...], str]]:
    """The sub-panel's lines as (cells, icon): the focal scale when not 1, a header, one row per camera
    (name, rotation correction, centre move, "kept" for a camera held on its given pose; a warning icon when
    not aligned or missing; at most `limit` of them), how many were kept, then the flags naming those not
    aligned and those missing."""
    rows: list[tuple[tuple[str, ...], str]] = []
    if abs(focal_scale - 1.0) > 1e-6:
        rows.append(((f"Focal length x{focal_scale:.4f} (all)",), "CAMERA_DATA"))
    rows.append((("Camera", "Angle", "Move"), "NONE"))
    missing = [c.camera for c in cameras if present is not None and c.camera not in present]
    bad = [f"{c.camera} (weight {c.weight:.2f})" for c in cameras if not c.aligned]
    listed = cameras if limit is None else cameras[:limit]
    for cam in listed:
        flagged = cam.camera in missing or not cam.aligned
        cells = (cam.camera, "kept", "-") if cam.held else (cam.camera, f"{cam.rotation_deg:.2f}°",
                                                                  length(cam.translation))
        rows.append((cells, "ERROR" if flagged else "CAMERA_DATA"))
    if len(listed) < len(cameras):
        rows.append(((f"... and {len(cameras) - len(listed)} more camera(s)",), "NONE"))
    kept = sum(c.held for c in cameras)
    if kept:
        rows.append(((f"{kept} of {len(cameras)} camera(s) kept as given (within about a pixel)",), "CHECKMARK"))
    if bad:
        rows.append(((f"Not aligned: {', '.join(bad)}",), "ERROR"))
    if missing:
        rows.append(((f"Missing (deleted or renamed): {', '.join(missing)}",), "ERROR"))
    return rows
