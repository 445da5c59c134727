"""The DESIGN.md job folder: job.json + images/ (+ masks/), read into a Scene and written back."""
from __future__ import annotations

import json
import math
import numbers
from pathlib import Path

import numpy as np
from skimage.transform import resize

from backend.geometry.floor import floor_from_dict, floor_to_dict
from backend.runtime.errors import JobError
from backend.io.common import mask_from_alpha
from backend.io.images import read_image, read_mask, write_rgba
from backend.io.validate import check_inside, check_keys, validate_settings
from backend.io.views import Scene, View

JOB_KEYS = ("version", "views", "bbox", "settings", "floor")
VIEW_KEYS = ("name", "image", "mask", "width", "height", "K", "R", "t")
BBOX_KEYS = ("min", "max")


def _matrix(value, shape: tuple[int, ...], label: str, view: str) -> np.ndarray:
    """A float64 array of the given shape from JSON lists, or a JobError naming the view and key."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise JobError(f"view {view!r}: {label} is not numeric", f"{label} must be numbers", view=view) from exc
    if arr.shape != shape:
        raise JobError(f"view {view!r}: {label} has shape {arr.shape}, expected {shape}",
                       "K and R are 3x3 nested lists, t a list of 3 numbers", view=view)
    return arr


def scale_view(view: View, scale: float) -> View:
    """The view with its image and mask (if any) resized by `scale` and K scaled to match (pixel-corner origin)."""
    h, w = view.height, view.width
    nh, nw = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
    image = resize(view.image, (nh, nw, 3), order=1, anti_aliasing=True, preserve_range=True).astype(np.float32)
    mask = None
    if view.mask is not None:
        mask = resize(view.mask.astype(np.float32), (nh, nw), order=1, anti_aliasing=True) > 0.5
    K = view.K.copy()
    K[0] *= nw / w
    K[1] *= nh / h
    K[2] = [0.0, 0.0, 1.0]
    return View(view.name, image, mask, K, view.R.copy(), view.t.copy(), view.mask_auto)


def _load_view(entry: dict, root: Path) -> View:
    """One view of job.json: files read, declared size checked, mask from masks/ or alpha (else None)."""
    if not isinstance(entry, dict):
        raise JobError("each entry of 'views' must be an object", 'e.g. {"name": "cam_000", "image": ...}')
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise JobError("a view has no 'name'", "give every view a unique string name")
    check_keys(entry, VIEW_KEYS, f"view {name!r}", view=name)
    for key in ("image", "K", "R", "t"):
        if key not in entry:
            raise JobError(f"view {name!r}: missing key {key!r}", "every view needs name, image, K, R and t",
                           view=name)
    K = _matrix(entry["K"], (3, 3), "K", name)
    R = _matrix(entry["R"], (3, 3), "R", name)
    t = _matrix(entry["t"], (3,), "t", name)
    check_inside(root, entry["image"], name, "image")
    image_path = root / entry["image"]
    rgb, alpha = read_image(image_path, view=name)
    h, w = rgb.shape[:2]
    for key, actual in (("width", w), ("height", h)):
        declared = entry.get(key)
        if declared is not None and declared != actual:
            raise JobError(f"view {name!r}: image {image_path} is {w}x{h} but job.json says {key} {declared}",
                           "fix width/height in job.json or re-export the image at that size", view=name)
    if entry.get("mask"):
        check_inside(root, entry["mask"], name, "mask")
        mask = read_mask(root / entry["mask"], view=name)
    elif (root / "masks" / f"{name}.png").is_file():
        mask = read_mask(root / "masks" / f"{name}.png", view=name)
    else:
        mask = mask_from_alpha(alpha)
    if mask is not None and mask.shape != (h, w):
        raise JobError(f"view {name!r}: mask is {mask.shape[1]}x{mask.shape[0]} but the image is {w}x{h}",
                       "the mask must have the image's size", view=name)
    return View(name, rgb, mask, K, R, t)


def _load_bbox(value) -> tuple[np.ndarray, np.ndarray] | None:
    """bbox {"min": [..], "max": [..]} or null."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise JobError("bbox must be an object or null", 'write "bbox": {"min": [x, y, z], "max": [x, y, z]}')
    check_keys(value, BBOX_KEYS, "bbox")
    try:
        lo, hi = (np.asarray(value[k], dtype=np.float64) for k in BBOX_KEYS)
    except (KeyError, TypeError, ValueError) as exc:
        raise JobError("bbox needs numeric 'min' and 'max'", 'write "bbox": {"min": [x, y, z], "max": [x, y, z]}') from exc
    if lo.shape != (3,) or hi.shape != (3,):
        raise JobError("bbox min and max must each have 3 numbers", 'write "bbox": {"min": [x, y, z], "max": [x, y, z]}')
    return lo, hi


FLOOR_HINT = 'write "floor": {"normal": [x, y, z], "offset": d} (the plane normal . X = d, normal pointing up), or null'


def _load_floor(value) -> tuple[np.ndarray, float] | None:
    """floor {"normal": [..], "offset": d} or null: the plane the object stands on (nothing of it lies below)."""
    if value is None:
        return None
    floor = floor_from_dict(value) if isinstance(value, dict) and set(value) <= {"normal", "offset"} else None
    if floor is None:
        raise JobError("floor must be an object with a non-zero 'normal' of 3 numbers and a numeric 'offset'",
                       FLOOR_HINT)
    return floor


def sfm_report(root: Path) -> dict:
    """The job folder's sfm.json (written by the photos command), {} when absent or unreadable."""
    try:
        report = json.loads((Path(root) / "sfm.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return report if isinstance(report, dict) else {}


def load_job(path: Path) -> Scene:
    """Read a job folder (or its job.json) into a Scene, applying settings['image_scale']; the views' masks count
    as automatic (`View.mask_auto`) when sfm.json says "masks": "automatic"."""
    path = Path(path)
    job_file = path if path.is_file() else path / "job.json"
    root = job_file.parent
    try:
        job = json.loads(job_file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise JobError(f"no job.json in {root}", "point at a job folder written by the add-on or `convert`") from exc
    except json.JSONDecodeError as exc:
        raise JobError(f"{job_file} is not valid JSON: {exc}", "fix the JSON syntax at the given line") from exc
    if not isinstance(job, dict):
        raise JobError(f"{job_file} must hold a JSON object", "see the job folder format in the README")
    check_keys(job, JOB_KEYS, "job.json")
    if job.get("version") != 1:
        raise JobError(f"job.json version is {job.get('version')!r}, expected 1", "write \"version\": 1")
    views_json = job.get("views")
    if not isinstance(views_json, list):
        raise JobError("job.json has no 'views' list", "list the views under \"views\"")
    raw = job.get("settings")
    if isinstance(raw, dict) and isinstance(raw.get("initial_mesh"), str) and raw["initial_mesh"].strip():
        raw = {**raw, "initial_mesh": str(root / raw["initial_mesh"])}
    settings = validate_settings(raw)
    views = [_load_view(v, root) for v in views_json]
    report = sfm_report(root)
    if report.get("masks") == "automatic":
        for v in views:
            v.mask_auto = v.mask is not None
    scale = float(settings["image_scale"])
    if not math.isclose(scale, 1.0):
        views = [scale_view(v, scale) for v in views]
    floor = _load_floor(job.get("floor"))
    if floor is None:  # photo jobs written before job.json carried the floor
        floor = floor_from_dict(report.get("floor"))
    return Scene(views=views, bbox=_load_bbox(job.get("bbox")), settings=settings,
                 image_scale_applied=scale, floor=floor)


def write_job(scene: Scene, path: Path) -> Path:
    """Write the Scene as a job folder: job.json and images/<view>.png with alpha = mask (RGB where it is None)."""
    path = Path(path)
    (path / "images").mkdir(parents=True, exist_ok=True)
    views = []
    for view in scene.views:
        rel = f"images/{view.name}.png"
        write_rgba(path / rel, view.image, view.mask)
        views.append({"name": view.name, "image": rel, "mask": None, "width": view.width, "height": view.height,
                      "K": np.asarray(view.K, dtype=float).tolist(), "R": np.asarray(view.R, dtype=float).tolist(),
                      "t": np.asarray(view.t, dtype=float).tolist()})
    settings = dict(scene.settings)
    scale = settings.get("image_scale", 1)
    if isinstance(scale, numbers.Real) and scene.image_scale_applied != 1.0:
        settings["image_scale"] = scale / scene.image_scale_applied
    bbox = None
    if scene.bbox is not None:
        bbox = {"min": np.asarray(scene.bbox[0], float).tolist(), "max": np.asarray(scene.bbox[1], float).tolist()}
    job = {"version": 1, "views": views, "bbox": bbox, "settings": settings}
    if scene.floor is not None:
        job["floor"] = floor_to_dict(scene.floor)
    (path / "job.json").write_text(json.dumps(job, indent=1), encoding="utf-8")
    return path
