"""Pure logic of Import Photos: the photo folder, the prepared `OUT/job` files and the Blender camera set-up. No bpy.

The backend's `photos PHOTOS_DIR --out OUT --prepare-only` writes `OUT/job/job.json` (DESIGN job format,
views named by photo stem), `OUT/job/points.ply` (sparse points, x y z + red green blue) and
`OUT/job/sfm.json` (registered / unregistered photos, reprojection error...). This module reads them
and decides what the add-on builds from them; `import_photos.py` is the bpy glue.
"""
from __future__ import annotations

import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from . import camera_math
from .job_spec import GatherError
from .mesh_io import _read_ply_header

PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")
JOB_SUBDIR = "job"
FLOOR_PROP = "photomesh_floor"  # custom property of an imported box: the floor [nx, ny, nz, d] in world coordinates
SENSOR_WIDTH = 36.0
BOX_EDGES = ((0, 1), (1, 3), (3, 2), (2, 0), (4, 5), (5, 7), (7, 6), (6, 4), (0, 4), (1, 5), (2, 6), (3, 7))


@dataclass
class PhotoView:
    """One camera of the prepared job: its undistorted photo, its mask and its OpenCV camera."""

    name: str
    image: Path
    mask: Optional[Path]
    width: int
    height: int
    K: np.ndarray
    R: np.ndarray
    t: np.ndarray


@dataclass
class PreparedPhotos:
    """Everything `--prepare-only` wrote: the views, the object's box, the sparse points and the SfM summary."""

    out_dir: Path
    job_dir: Path
    views: list[PhotoView]
    bbox: Optional[tuple[np.ndarray, np.ndarray]]
    points: np.ndarray
    colors: np.ndarray
    sfm: dict = field(default_factory=dict)


@dataclass
class RenderSetup:
    """The scene's render size and pixel aspect for the imported cameras, and the views left out."""

    width: int
    height: int
    pixel_aspect_x: float
    pixel_aspect_y: float
    kept: list[str]
    left_out: dict[str, str]


def list_photos(folder: Path) -> list[Path]:
    """The photographs directly in `folder` (by extension, sorted); GatherError when there is no such folder."""
    folder = Path(folder)
    if not str(folder).strip() or not folder.is_dir():
        raise GatherError(f"The photo folder '{folder}' does not exist.",
                          "Choose the folder holding the photographs of the object.")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_EXTENSIONS)


def check_photo_folder(folder: Path) -> list[Path]:
    """The folder's photos; GatherError naming the folder when there are fewer than 2."""
    photos = list_photos(folder)
    if not photos:
        raise GatherError(f"No photos in '{folder}'.",
                          f"Put the photographs ({', '.join(PHOTO_EXTENSIONS[:4])}...) directly in that folder.")
    if len(photos) < 2:
        raise GatherError(f"Only one photo in '{folder}' ({photos[0].name}).",
                          "Structure from motion needs many overlapping photos (ideally 20+ around the object).")
    return photos


def photos_root(chosen_work_dir: str, blend_path: str, temp_root: Path) -> Path:
    """Where imports go: the Work Folder preference when set, else next to the saved .blend
    (`<blend name>_photos/`), else the temporary folder's `photomesh/photos/`."""
    if chosen_work_dir:
        return Path(chosen_work_dir) / "photos"
    if blend_path:
        blend = Path(blend_path)
        return blend.parent / f"{blend.stem}_photos"
    return Path(temp_root) / "photomesh" / "photos"


def output_dir(photo_folder: Path, root: Path, stamp: Optional[str] = None) -> Path:
    """A fresh base folder `root/<photo folder name>_<stamp>` for one import (not created here).

    The backend writes `base/out` (its OUT) and the runner `base/backend.log`.
    """
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(photo_folder).resolve().name).strip("_") or "photos"
    stamp = stamp or time.strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{name}_{stamp}"
    i = 1
    while base.exists():
        base = Path(root) / f"{name}_{stamp}_{i}"
        i += 1
    return base


def photos_argv(python: str, photo_folder: Path, out_dir: Path) -> list[str]:
    """The backend command of the import: structure from motion and masks only, JSON progress."""
    return [python, "-m", "backend", "photos", str(photo_folder), "--out", str(out_dir), "--prepare-only", "--json"]


def _matrix(value, shape: tuple, what: str, view: str) -> np.ndarray:
    """A finite float array of the given shape from job.json, else a GatherError naming the view."""
    try:
        arr = np.asarray(value, dtype=float).reshape(shape)
    except (TypeError, ValueError) as exc:
        raise GatherError(f"View '{view}' in job.json has a malformed {what}.",
                          "Run Import Photos again; the backend's output is damaged.") from exc
    if not np.all(np.isfinite(arr)):
        raise GatherError(f"View '{view}' in job.json has a non-finite {what}.",
                          "Run Import Photos again; the backend's output is damaged.")
    return arr


def read_job_views(job_dir: Path) -> tuple[list[PhotoView], Optional[tuple[np.ndarray, np.ndarray]]]:
    """The views and bbox of `job_dir/job.json`, checking each photo and mask file exists."""
    path = Path(job_dir) / "job.json"
    if not path.is_file():
        raise GatherError(f"The backend finished but {path} is missing.", "See the system console for its log.")
    job = json.loads(path.read_text(encoding="utf-8"))
    views = []
    for v in job.get("views", []):
        name = str(v["name"])
        image = Path(job_dir) / v["image"]
        if not image.is_file():
            raise GatherError(f"Photo '{name}': {image} is missing.", "Run Import Photos again.")
        mask = Path(job_dir) / v["mask"] if v.get("mask") else None
        if mask is not None and not mask.is_file():
            raise GatherError(f"Photo '{name}': its mask {mask} is missing.", "Run Import Photos again.")
        views.append(PhotoView(name, image, mask, int(v["width"]), int(v["height"]),
                               _matrix(v["K"], (3, 3), "K", name), _matrix(v["R"], (3, 3), "R", name),
                               _matrix(v["t"], (3,), "t", name)))
    if len(views) < 2:
        raise GatherError(f"Structure from motion placed only {len(views)} photo(s).",
                          "Take more overlapping photos all around the object (textured background helps).")
    box = job.get("bbox")
    bbox = None
    if isinstance(box, dict):
        bbox = (np.asarray(box["min"], dtype=float), np.asarray(box["max"], dtype=float))
    return views, bbox


def read_point_ply(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertex positions (N, 3) float64 and colours (N, 3) uint8 of a PLY point cloud (ASCII or binary).

    Colours default to mid grey when the file has no red/green/blue properties.
    """
    with open(path, "rb") as fh:
        fmt, elements = _read_ply_header(fh)
        body = fh.read()
    if not elements or elements[0][0] != "vertex":
        raise ValueError(f"{Path(path).name}: the first PLY element is not 'vertex'")
    _, count, props = elements[0]
    if any(lt is not None for _, _, lt in props):
        raise ValueError(f"{Path(path).name}: list properties on vertices are not supported")
    names = [p[0] for p in props]
    if fmt == "ascii":
        values = np.array(body.split()[:count * len(props)], dtype=np.float64).reshape(count, len(props))
        cols = {n: values[:, i] for i, n in enumerate(names)}
    elif fmt in ("binary_little_endian", "binary_big_endian"):
        endian = "<" if fmt == "binary_little_endian" else ">"
        dt = np.dtype([(n, endian + t) for n, t, _ in props])
        arr = np.frombuffer(body, dtype=dt, count=count)
        cols = {n: arr[n] for n in names}
    else:
        raise ValueError(f"{Path(path).name}: unsupported PLY format {fmt!r}")
    points = np.stack([np.asarray(cols[k], dtype=np.float64) for k in ("x", "y", "z")], axis=1)
    if all(k in cols for k in ("red", "green", "blue")):
        colors = np.stack([np.asarray(cols[k]) for k in ("red", "green", "blue")], axis=1)
        colors = np.clip(np.round(colors), 0, 255).astype(np.uint8)
    else:
        colors = np.full((count, 3), 128, dtype=np.uint8)
    return points, colors


def read_prepared(out_dir: Path) -> PreparedPhotos:
    """Read `OUT/job` (job.json, points.ply, sfm.json) as the backend's `--prepare-only` left it."""
    job_dir = Path(out_dir) / JOB_SUBDIR
    views, bbox = read_job_views(job_dir)
    ply = job_dir / "points.ply"
    if ply.is_file():
        try:
            points, colors = read_point_ply(ply)
        except (ValueError, KeyError) as exc:
            raise GatherError(f"Cannot read the sparse points {ply}: {exc}", "Run Import Photos again.") from exc
    else:
        points, colors = np.zeros((0, 3)), np.zeros((0, 3), dtype=np.uint8)
    sfm_path = job_dir / "sfm.json"
    sfm = json.loads(sfm_path.read_text(encoding="utf-8")) if sfm_path.is_file() else {}
    return PreparedPhotos(Path(out_dir), job_dir, views, bbox, points, colors, sfm)


def render_setup(views: Sequence[PhotoView], tolerance: float = 0.01) -> RenderSetup:
    """One render size for all cameras: the most common photo size (ties: the largest).

    Views of another size but the same aspect ratio keep their camera (K is rescaled to the scene size and
    Reconstruct scales it back to the photo's size); views of another aspect ratio cannot share the scene's
    resolution and are left out with the reason. The pixel aspect (fx/fy) is the median over the kept views.
    """
    sizes = Counter((v.width, v.height) for v in views)
    (w, h), _ = max(sizes.items(), key=lambda item: (item[1], item[0][0] * item[0][1]))
    kept, left_out = [], {}
    for v in views:
        if abs(v.width / v.height - w / h) > tolerance * (w / h):
            left_out[v.name] = f"its photo is {v.width}x{v.height}, the others {w}x{h} (another aspect ratio)"
        else:
            kept.append(v.name)
    pa = float(np.median([v.K[0, 0] / v.K[1, 1] for v in views if v.name in kept]))
    pax, pay = (1.0, pa) if pa >= 1.0 else (1.0 / pa, 1.0)
    return RenderSetup(w, h, pax, pay, kept, left_out)


def scaled_intrinsics(view: PhotoView, width: int, height: int) -> np.ndarray:
    """The view's K for a render of width x height (the same camera at another resolution)."""
    K = np.asarray(view.K, dtype=float).copy()
    K[0, :] *= width / view.width
    K[1, :] *= height / view.height
    return K


def camera_settings(view: PhotoView, setup: RenderSetup) -> dict:
    """Blender camera settings and pose of a view (DESIGN 'Cameras' inverse), at the scene's render size."""
    K = scaled_intrinsics(view, setup.width, setup.height)
    return camera_math.blender_from_opencv(K, view.R, view.t, setup.width, setup.height, SENSOR_WIDTH)


def srgb_to_linear(colors: np.ndarray) -> np.ndarray:
    """8-bit sRGB colours (N, 3) to linear floats in [0, 1] (Blender's float colour attributes are linear)."""
    c = np.asarray(colors, dtype=np.float64) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def box_corners(lo: Sequence[float], hi: Sequence[float]) -> np.ndarray:
    """The 8 corners of an axis-aligned box, corner i taking hi on axis k where bit k of i is set."""
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    return np.array([[hi[k] if (i >> k) & 1 else lo[k] for k in range(3)] for i in range(8)])


def fallback_bbox(prepared: PreparedPhotos) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """The job's bbox, else the 2nd-98th percentile box of the sparse points, else None."""
    if prepared.bbox is not None:
        return prepared.bbox
    if len(prepared.points) >= 10:
        return (np.percentile(prepared.points, 2, axis=0), np.percentile(prepared.points, 98, axis=0))
    return None


def scene_scale(prepared: PreparedPhotos) -> float:
    """A length for display sizes: the bbox diagonal, else the cameras' spread, else 1."""
    box = fallback_bbox(prepared)
    if box is not None:
        d = float(np.linalg.norm(box[1] - box[0]))
        if d > 0:
            return d
    centres = np.array([-v.R.T @ v.t for v in prepared.views])
    spread = float(np.linalg.norm(centres.max(axis=0) - centres.min(axis=0)))
    return spread if spread > 0 else 1.0


def prepared_floor(sfm: dict) -> Optional[list[float]]:
    """[nx, ny, nz, d] of the floor plane (n . X = d, n up, world = the job frame) the photos command found, from
    sfm.json; None when it found none or the entry is malformed."""
    floor = sfm.get("floor") if isinstance(sfm, dict) else None
    try:
        n = [float(x) for x in floor["normal"]]
        d = float(floor["offset"])
    except (TypeError, KeyError, ValueError):
        return None
    length = float(np.linalg.norm(n)) if len(n) == 3 else 0.0
    if not np.isfinite(length) or length < 1e-9 or not np.isfinite(d):
        return None
    return [x / length for x in n] + [d / length]


def sfm_summary(sfm: dict, n_photos: int) -> str:
    """One line for the panel: photos placed, reprojection error, points, seconds."""
    reg = sfm.get("registered")
    placed = len(reg) if isinstance(reg, list) else n_photos
    total = placed + len(sfm.get("unregistered", []) or [])
    parts = [f"{placed}/{max(total, placed)} photos placed"]
    if isinstance(sfm.get("reprojection_px"), (int, float)):
        parts.append(f"{sfm['reprojection_px']:.2f} px")
    if isinstance(sfm.get("points"), int):
        parts.append(f"{sfm['points']} points")
    if isinstance(sfm.get("seconds"), (int, float)):
        parts.append(f"{sfm['seconds']:.0f} s")
    return ", ".join(parts)


def sfm_problems(sfm: dict, render_left_out: dict[str, str]) -> list[str]:
    """Photos not placed or left out (with their reason), and the backend's warnings, as lines for the user."""
    lines = []
    left = dict(sfm.get("left_out", {}) or {})
    for name in sfm.get("unregistered", []) or []:
        left.setdefault(name, "not placed by structure from motion")
    left.update(render_left_out)
    lines += [f"{name}: {why}" for name, why in sorted(left.items())]
    lines += [str(w) for w in sfm.get("warnings", []) or []]
    return lines
