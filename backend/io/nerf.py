"""NeRF-style transforms.json (instant-ngp, nerfstudio, BlenderNeRF): OpenGL camera-to-world poses."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from backend.runtime.errors import JobError
from backend.io.common import mask_from_alpha, view_names
from backend.io.images import find_image, read_image, read_mask
from backend.io.undistort import CachedUndistorter
from backend.io.views import DEFAULT_SETTINGS, Scene, View

GL_TO_CV = np.diag([1.0, -1.0, -1.0])
TRANSFORM_FILES = ("transforms.json", "transforms_train.json")
DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")


def find_transforms(path: Path) -> Path | None:
    """The transforms json for a folder or file path, if any."""
    path = Path(path)
    if path.is_file() and path.suffix == ".json":
        return path
    return next((path / n for n in TRANSFORM_FILES if (path / n).is_file()), None)


def _get(frame: dict, meta: dict, key: str):
    """Per-frame value, falling back to the top-level one."""
    return frame.get(key, meta.get(key))


def intrinsics(frame: dict, meta: dict, width: int, height: int, name: str) -> np.ndarray:
    """K from fl_x/fl_y/cx/cy or camera_angle_x/_y (per frame or top level)."""
    fx, fy = _get(frame, meta, "fl_x"), _get(frame, meta, "fl_y")
    angle_x, angle_y = _get(frame, meta, "camera_angle_x"), _get(frame, meta, "camera_angle_y")
    if fx is None and angle_x is not None:
        fx = 0.5 * width / math.tan(0.5 * float(angle_x))
    if fy is None and angle_y is not None:
        fy = 0.5 * height / math.tan(0.5 * float(angle_y))
    if fx is None and fy is None:
        raise JobError(f"view {name!r}: no focal length (fl_x/fl_y or camera_angle_x)",
                       "transforms.json needs camera_angle_x or fl_x at the top level or in each frame", view=name)
    fx = float(fx if fx is not None else fy)
    fy = float(fy if fy is not None else fx)
    cx = float(_get(frame, meta, "cx") if _get(frame, meta, "cx") is not None else width / 2.0)
    cy = float(_get(frame, meta, "cy") if _get(frame, meta, "cy") is not None else height / 2.0)
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def extrinsics(c2w_gl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV world-to-camera (R, t) from an OpenGL camera-to-world 4x4 (x right, y up, z back)."""
    c2w = np.asarray(c2w_gl, dtype=np.float64)
    rot = c2w[:3, :3] / np.linalg.norm(c2w[:3, :3], axis=0)
    R = GL_TO_CV @ rot.T
    return R, -R @ c2w[:3, 3]


def lens(frame: dict, meta: dict, name: str) -> tuple[str, list[float]]:
    """The frame's lens as a COLMAP model name and its distortion parameters (per-frame keys override top-level).

    nerfstudio writes camera_model OPENCV (k1, k2, k3, k4, p1, p2; k3 and k4 as in OpenCV's rational model,
    so FULL_OPENCV) or OPENCV_FISHEYE (k1..k4); instant-ngp writes k1, k2, p1, p2 (and is_fisheye)."""
    c = {k: float(_get(frame, meta, k) or 0.0) for k in DISTORTION_KEYS}
    model = _get(frame, meta, "camera_model")
    if model == "OPENCV_FISHEYE" or (model in (None, "OPENCV") and _get(frame, meta, "is_fisheye")):
        if c["p1"] or c["p2"]:
            raise JobError(f"view {name!r}: a fisheye camera with tangential distortion (p1, p2)",
                           "OPENCV_FISHEYE takes k1, k2, k3, k4 only", view=name)
        return "OPENCV_FISHEYE", [c["k1"], c["k2"], c["k3"], c["k4"]]
    if model not in (None, "OPENCV", "PINHOLE", "SIMPLE_PINHOLE", "PERSPECTIVE"):
        raise JobError(f"view {name!r}: camera_model {model!r} is not supported",
                       "use OPENCV or OPENCV_FISHEYE (pinhole cameras with lens distortion)", view=name)
    if c["k3"] or c["k4"]:
        return "FULL_OPENCV", [c["k1"], c["k2"], c["p1"], c["p2"], c["k3"], c["k4"], 0.0, 0.0]
    return "OPENCV", [c["k1"], c["k2"], c["p1"], c["p2"]]


def load_nerf(path: Path) -> Scene:
    """Read a transforms.json job; masks from mask_path (nerfstudio) or the images' alpha (else None);
    lens distortion (k1..k4, p1, p2) undistorted to pinhole views."""
    tf = find_transforms(path)
    if tf is None:
        raise JobError(f"no {' or '.join(TRANSFORM_FILES)} in {path}", "the NeRF layout is transforms.json + images")
    root = tf.parent
    try:
        meta = json.loads(tf.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise JobError(f"{tf} is not valid JSON: {exc}", "fix the JSON syntax at the given line") from exc
    frames = meta.get("frames")
    if not isinstance(frames, list) or not frames:
        raise JobError(f"{tf} has no 'frames'", "list the images under \"frames\" with file_path and transform_matrix")
    undistorter = CachedUndistorter()
    names = view_names([str(f.get("file_path", "")) for f in frames])
    views = []
    for frame, name in zip(frames, names):
        if "file_path" not in frame or "transform_matrix" not in frame:
            raise JobError(f"frame {name!r} lacks file_path or transform_matrix", "every frame needs both", view=name)
        image_path = find_image(root / frame["file_path"]) or root / frame["file_path"]
        rgb, alpha = read_image(image_path, view=name)
        h, w = rgb.shape[:2]
        dw, dh = _get(frame, meta, "w"), _get(frame, meta, "h")
        if (dw is not None and int(dw) != w) or (dh is not None and int(dh) != h):
            raise JobError(f"view {name!r}: image {image_path} is {w}x{h} but transforms.json says {dw}x{dh}",
                           "use the images the transforms were made for", view=name)
        K = intrinsics(frame, meta, w, h, name)
        c2w = np.asarray(frame["transform_matrix"], dtype=np.float64)
        if c2w.shape not in ((4, 4), (3, 4)):
            raise JobError(f"view {name!r}: transform_matrix has shape {c2w.shape}", "use a 4x4 matrix", view=name)
        R, t = extrinsics(c2w)
        if frame.get("mask_path"):
            mask = read_mask(find_image(root / frame["mask_path"]) or root / frame["mask_path"], view=name)
        else:
            mask = mask_from_alpha(alpha)
        model, params = lens(frame, meta, name)
        rgb, mask, K = undistorter(rgb, mask, K, model, params, name)
        views.append(View(name, rgb, mask, K, R, t))
    bbox = None
    aabb = meta.get("aabb")
    if aabb is not None:
        a = np.asarray(aabb, dtype=np.float64).reshape(2, 3)
        bbox = (a[0], a[1])
    return Scene(views=views, bbox=bbox, settings=dict(DEFAULT_SETTINGS))
