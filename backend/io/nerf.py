"""NeRF-style transforms.json (instant-ngp, nerfstudio, BlenderNeRF): OpenGL camera-to-world poses."""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np

from backend.io.common import mask_from_alpha
from backend.io.images import find_image, read_image, read_mask
from backend.io.views import DEFAULT_SETTINGS, Scene, View
from backend.runtime.errors import JobError

log = logging.getLogger(__name__)
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


def _view_names(paths: list[str]) -> list[str]:
    """File stems, or the extension-less relative paths when stems repeat."""
    stems = [Path(p).stem if Path(p).suffix.lower() in (".png", ".jpg", ".jpeg", ".exr") else Path(p).name for p in paths]
    if len(set(stems)) == len(stems):
        return stems
    return [str(Path(p).with_suffix("")).replace("/", "_").replace("\\", "_").lstrip("._") for p in paths]


def load_nerf(path: Path) -> Scene:
    """Read a transforms.json job; masks from mask_path (nerfstudio) or the images' alpha."""
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
    names = _view_names([str(f.get("file_path", "")) for f in frames])
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
        if any(float(_get(frame, meta, k) or 0.0) != 0.0 for k in DISTORTION_KEYS):
            log.warning("view %r: lens distortion coefficients are ignored; undistort the images first", name)
        K = intrinsics(frame, meta, w, h, name)
        c2w = np.asarray(frame["transform_matrix"], dtype=np.float64)
        if c2w.shape not in ((4, 4), (3, 4)):
            raise JobError(f"view {name!r}: transform_matrix has shape {c2w.shape}", "use a 4x4 matrix", view=name)
        R, t = extrinsics(c2w)
        if frame.get("mask_path"):
            mask = read_mask(find_image(root / frame["mask_path"]) or root / frame["mask_path"], view=name)
        else:
            mask = mask_from_alpha(alpha, name, image_path)
        views.append(View(name, rgb, mask, K, R, t))
    bbox = None
    aabb = meta.get("aabb")
    if aabb is not None:
        a = np.asarray(aabb, dtype=np.float64).reshape(2, 3)
        bbox = (a[0], a[1])
    return Scene(views=views, bbox=bbox, settings=dict(DEFAULT_SETTINGS))
