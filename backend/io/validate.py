"""Checks on a loaded job that fail fast, naming the view, key or file and saying what to do."""
from __future__ import annotations

import logging
import numbers
from pathlib import Path

import numpy as np

from backend.cameras.projection import is_rotation
from backend.io.quality import LEVELS
from backend.io.views import DEFAULT_SETTINGS, Scene, View
from backend.runtime.errors import JobError

log = logging.getLogger(__name__)

CHOICES = {
    "device": ("auto", "cuda", "mps", "cpu"),
    "rasterizer": ("auto", "nvdiffrast", "torch"),
    "symmetry": ("detect", "enforce", "off"),
    "topology": ("auto", "on", "off"),
    "quality": tuple(LEVELS),
}
# Allowed ranges of the numeric settings, inclusive; (what to write, what it does) goes into the hint.
INT_RANGES: dict[str, tuple[int, int, str]] = {
    "iterations": (1, 1_000_000, "e.g. 2000 (the reference setting), or null to stop when the mesh is done"),
    "texture_size": (16, 8192, "the texture's side in pixels, e.g. 2048"),
    "seed": (0, 2**31 - 1, "any whole number, e.g. 0"),
    "max_faces": (500, 10_000_000, "the output face budget, e.g. 200000, or null for the default"),
}
IMAGE_SCALE_RANGE = (0.01, 1.0)
NULLABLE = ("max_faces", "iterations")
BOOL_SETTINGS = ("refine_cameras",)
PATH_SETTINGS = ("initial_mesh",)  # file paths, checked by check_initial_mesh
CONVENTION_HINT = ("R must be a world-to-camera rotation in the OpenCV convention (x right, y down, z forward); "
                   "if you converted from OpenGL/Blender, flip the y and z axes: R = diag(1,-1,-1) @ R_c2w.T")


def check_keys(obj: dict, allowed: set[str] | tuple[str, ...], where: str, view: str | None = None) -> None:
    """JobError naming the first key of `obj` that is not in `allowed`."""
    for key in obj:
        if key not in allowed:
            raise JobError(f"unknown key {key!r} in {where}",
                           f"allowed keys there: {', '.join(sorted(allowed))}", view=view)


def validate_settings(settings: dict | None) -> dict:
    """DEFAULT_SETTINGS overridden by `settings`, every value checked; JobError naming the bad setting."""
    settings = dict(settings or {})
    check_keys(settings, set(DEFAULT_SETTINGS), "settings")
    out = dict(DEFAULT_SETTINGS)
    out.update(settings)
    for key, choices in CHOICES.items():
        if out[key] not in choices:
            raise JobError(f"setting {key!r} is {out[key]!r}", f"use one of: {', '.join(choices)}")
    for key, (lo, hi, example) in INT_RANGES.items():
        v = out[key]
        if v is None and key in NULLABLE:
            continue
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not lo <= v <= hi:
            raise JobError(f"setting {key!r} is {v!r}, outside the allowed range",
                           f"use a whole number from {lo} to {hi} ({example})"
                           + (" or null" if key in NULLABLE else ""))
    for key in BOOL_SETTINGS:
        if not isinstance(out[key], bool):
            raise JobError(f"setting {key!r} is {out[key]!r}", "use true or false")
    lo, hi = IMAGE_SCALE_RANGE
    s = out["image_scale"]
    if isinstance(s, bool) or not isinstance(s, numbers.Real) or not np.isfinite(s) or not lo <= s <= hi:
        raise JobError(f"setting 'image_scale' is {s!r}, outside the allowed range",
                       f"use a number from {lo} to {hi}, e.g. 0.5 to halve the images")
    check_initial_mesh(out["initial_mesh"])
    return out


def check_inside(root: Path, relative: str, view: str, key: str) -> None:
    """Warn (naming the view) when a job's file lies outside the job folder: the job is then not self-contained."""
    if not isinstance(relative, str) or not relative:
        raise JobError(f"view {view!r}: {key} is {relative!r}, not a file path",
                       f'write the path relative to the job folder, e.g. "{key}s/{view}.png"', view=view)
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        log.warning("view %r: %s %s lies outside the job folder %s; the job breaks if it is moved or shared",
                    view, key, path, root)


def check_initial_mesh(value: object) -> None:
    """`initial_mesh` is null or the path of an existing file (relative paths: to the job folder)."""
    if value is None:
        return
    if not isinstance(value, str) or not value.strip():
        raise JobError(f"setting 'initial_mesh' is {value!r}",
                       "use null (start from the visual hull) or the path of a mesh or point-cloud file")
    if not Path(value).is_file():
        raise JobError(f"setting 'initial_mesh': file {value} does not exist",
                       "give a mesh (OBJ, PLY, STL...) or point cloud (PLY, OBJ, XYZ, NPZ) in world coordinates, "
                       "relative to the job folder or absolute")


MISSING_MASK_HINT = ("give the image an alpha channel marking the object, or add a mask file; "
                     "for plain photos, `python -m backend photos` makes the masks automatically")


def check_view(view: View, require_masks: bool = True) -> None:
    """Per-view checks: finite, well-formed K, R, t; image and mask shapes; a non-empty mask.

    A view without a mask (None) is an error only when `require_masks`; otherwise its mask is made later."""
    name = view.name
    K, R, t = (np.asarray(a, dtype=np.float64) for a in (view.K, view.R, view.t))
    for label, arr, shape in (("K", K, (3, 3)), ("R", R, (3, 3)), ("t", t, (3,))):
        if arr.shape != shape:
            raise JobError(f"view {name!r}: {label} has shape {arr.shape}, expected {shape}",
                           "K and R are 3x3 nested lists, t a list of 3 numbers", view=name)
        if not np.all(np.isfinite(arr)):
            raise JobError(f"view {name!r}: {label} contains NaN or infinity",
                           "fix the camera calibration of this view or drop the view", view=name)
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise JobError(f"view {name!r}: K has non-positive focal length (fx={K[0, 0]:g}, fy={K[1, 1]:g})",
                       "fx and fy are the focal lengths in pixels and must be > 0", view=name)
    if not np.allclose(K[2], [0, 0, 1], atol=1e-6) or abs(K[1, 0]) > 1e-9:
        raise JobError(f"view {name!r}: K's last row is {K[2].tolist()} (or K[1][0] is not 0)",
                       "K must be [[fx, s, cx], [0, fy, cy], [0, 0, 1]]", view=name)
    if not is_rotation(R):
        det = np.linalg.det(R)
        raise JobError(f"view {name!r}: R is not a rotation (det {det:.4g}, R R^T != I)", CONVENTION_HINT, view=name)
    img = np.asarray(view.image)
    if img.ndim != 3 or img.shape[2] != 3 or img.shape[0] < 1 or img.shape[1] < 1:
        raise JobError(f"view {name!r}: image has shape {img.shape}, expected (H, W, 3)",
                       "use an RGB or RGBA image", view=name)
    if view.mask is None:
        if require_masks:
            raise JobError(f"view {name!r} has no alpha channel and no mask file was found", MISSING_MASK_HINT,
                           view=name)
        return
    mask = np.asarray(view.mask)
    if mask.shape != img.shape[:2]:
        raise JobError(f"view {name!r}: mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
                       f"{img.shape[1]}x{img.shape[0]}", "the mask must have the image's size", view=name)
    if not mask.any():
        raise JobError(f"view {name!r}: the mask is empty (no object pixel)",
                       "check the mask or the image's alpha channel (alpha > 0.5 marks the object), or drop the view",
                       view=name)
    if mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any():
        log.warning("view %r: the mask touches the image border; the object may be cut off", name)


def check_bbox(scene: Scene) -> None:
    """The bbox is finite with min < max, and every view sees part of it in front of the camera."""
    if scene.bbox is None:
        return
    lo, hi = (np.asarray(b, dtype=np.float64) for b in scene.bbox)
    if lo.shape != (3,) or hi.shape != (3,):
        raise JobError("bbox min and max must each have 3 numbers", 'write "bbox": {"min": [x, y, z], "max": [x, y, z]}')
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise JobError("bbox contains NaN or infinity", "give finite numbers or set bbox to null")
    if np.any(lo >= hi):
        axis = "xyz"[int(np.argmax(lo >= hi))]
        raise JobError(f"bbox min >= max along {axis} ({lo.tolist()} vs {hi.tolist()})",
                       "min must be smaller than max on every axis; or set bbox to null to derive it")
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    partial = []
    for view in scene.views:
        cam = corners @ np.asarray(view.R).T + np.asarray(view.t)
        if np.all(cam[:, 2] <= 0):
            raise JobError(f"view {view.name!r}: the bounding box is behind the camera", CONVENTION_HINT,
                           view=view.name)
        front = cam[cam[:, 2] > 0]
        uv = front @ np.asarray(view.K).T
        uv = uv[:, :2] / uv[:, 2:3]
        if np.all(cam[:, 2] > 0):
            outside = ((uv[:, 0].max() < 0) or (uv[:, 0].min() > view.width)
                       or (uv[:, 1].max() < 0) or (uv[:, 1].min() > view.height))
            if outside:
                raise JobError(f"view {view.name!r}: the bounding box projects entirely outside the image",
                               "the object is not in this view: check its K, R, t (and the bbox), or drop the view",
                               view=view.name)
            inside = (uv[:, 0] >= 0) & (uv[:, 0] <= view.width) & (uv[:, 1] >= 0) & (uv[:, 1] <= view.height)
            if not inside.all():
                partial.append(view.name)
    if partial:
        log.warning("bounding box corners fall outside %d view(s) (%s); fine if the object itself is in view",
                    len(partial), ", ".join(partial[:5]) + (", ..." if len(partial) > 5 else ""))


def validate_scene(scene: Scene, require_masks: bool = True) -> None:
    """Raise JobError for the first problem of the scene (view count, names, cameras, masks, bbox, settings).

    `require_masks=False` accepts views whose mask is None (the caller makes those masks automatically)."""
    validate_settings(scene.settings)
    if len(scene.views) < 2:
        raise JobError(f"the job has {len(scene.views)} view(s); at least 2 are needed",
                       "add more calibrated photographs of the object (20 or more from all around work best)")
    seen: set[str] = set()
    for view in scene.views:
        if view.name in seen:
            raise JobError(f"duplicate view name {view.name!r}", "give every view a unique name", view=view.name)
        seen.add(view.name)
        check_view(view, require_masks)
    check_bbox(scene)
