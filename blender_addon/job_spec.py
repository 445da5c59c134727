"""Pure logic of a job folder: quality presets, view names, size checks, job.json. No bpy."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

JOB_VERSION = 1

try:
    from .backend.io.quality import LEVELS  # the installed add-on: backend/ is bundled inside it
except ImportError:
    from backend.io.quality import LEVELS  # the repository: backend/ beside blender_addon/

# What each preset adds to its quality level (the level sets how long the optimisation runs and when it stops).
PRESET_EXTRAS: dict[str, dict] = {
    "DRAFT": {"label": "Draft", "max_side": 256, "texture_size": 512, "max_faces": 30_000,
              "outputs": "images at most 256 px, 512 px texture, 30k faces"},
    "STANDARD": {"label": "Standard", "max_side": 512, "texture_size": 1024, "max_faces": 100_000,
                 "outputs": "images at most 512 px, 1024 px texture, 100k faces"},
    "HIGH": {"label": "High", "max_side": 0, "texture_size": 2048, "max_faces": 250_000,
             "outputs": "full resolution, 2048 px texture, 250k faces"},
}


def quality_presets() -> dict[str, dict]:
    """The add-on's presets: the backend's quality LEVELS with image size, texture and face budget."""
    out = {}
    for key, extra in PRESET_EXTRAS.items():
        level = LEVELS[key.lower()]
        out[key] = {"label": extra["label"], "quality": level.name, "max_side": extra["max_side"],
                    "texture_size": extra["texture_size"], "max_faces": extra["max_faces"],
                    "description": f"{level.description}; {extra['outputs']}"}
    return out


QUALITY_PRESETS: dict[str, dict] = quality_presets()


class GatherError(Exception):
    """A problem with the user's scene or input, with a hint on what to do."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass
class ViewSpec:
    """One view of a job, as written into job.json."""

    name: str
    image: str
    mask: Optional[str]
    width: int
    height: int
    K: np.ndarray
    R: np.ndarray
    t: np.ndarray

    def to_json(self) -> dict:
        """The view's job.json entry."""
        return {"name": self.name, "image": self.image, "mask": self.mask,
                "width": int(self.width), "height": int(self.height),
                "K": np.asarray(self.K, dtype=float).tolist(),
                "R": np.asarray(self.R, dtype=float).tolist(),
                "t": np.asarray(self.t, dtype=float).reshape(3).tolist()}


def safe_name(name: str, taken: set) -> str:
    """A file-system-safe, unique view name derived from an object name (added to taken)."""
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "view"
    candidate, i = base, 1
    while candidate.lower() in taken:
        candidate = f"{base}_{i}"
        i += 1
    taken.add(candidate.lower())
    return candidate


def image_scale_for(preset: str, width: int, height: int) -> float:
    """The backend's image_scale (a factor <= 1) that brings the larger side within the preset."""
    max_side = QUALITY_PRESETS[preset]["max_side"]
    side = max(width, height)
    if max_side <= 0 or side <= max_side:
        return 1.0
    return max_side / side


def job_settings(preset: str, device: str, width: int, height: int, symmetry: str = "detect",
                 seed: int = 0, rasterizer: str = "auto", iterations: int = 0, max_faces: int = 0,
                 refine_cameras: bool = False) -> dict:
    """The job.json settings block for a quality preset and device (iterations, max_faces > 0 override the preset;
    without iterations the backend stops when the mesh stops changing, bounded by the preset's quality level)."""
    p = QUALITY_PRESETS[preset]
    return {"device": device.lower(), "rasterizer": rasterizer, "image_scale": image_scale_for(preset, width, height),
            "iterations": int(iterations) if iterations else None, "quality": p["quality"], "symmetry": symmetry,
            "texture_size": int(p["texture_size"]),
            "seed": int(seed), "max_faces": int(max_faces or p["max_faces"]), "refine_cameras": bool(refine_cameras)}


def fit_intrinsics(K: np.ndarray, render_size: tuple[int, int], image_size: tuple[int, int],
                   view_name: str) -> np.ndarray:
    """K for the actual image size: scaled when only the resolution differs, else a GatherError."""
    rw, rh = render_size
    iw, ih = image_size
    if (iw, ih) == (rw, rh):
        return np.asarray(K, dtype=float)
    if iw <= 0 or ih <= 0:
        raise GatherError(f"Camera '{view_name}': its image is empty ({iw}x{ih}).",
                          "Give the camera a valid image.")
    if abs(iw / ih - rw / rh) > 0.01 * (rw / rh):
        raise GatherError(
            f"Camera '{view_name}': image is {iw}x{ih} but the render settings say {rw}x{rh} "
            "(a different aspect ratio).",
            f"Set Output Properties > Resolution to {iw} x {ih} at 100 %, as the photos were taken.")
    sx, sy = iw / rw, ih / rh
    scaled = np.asarray(K, dtype=float).copy()
    scaled[0, :] *= sx
    scaled[1, :] *= sy
    return scaled


def check_views(views: Sequence[ViewSpec]) -> None:
    """Raise GatherError when the views cannot make a job (too few, duplicates)."""
    if len(views) < 2:
        raise GatherError(f"Only {len(views)} usable camera(s); at least 2 are needed.",
                          "Select two or more cameras (ideally 10+ around the object), each with an image.")
    names = [v.name.lower() for v in views]
    if len(set(names)) != len(names):
        raise GatherError("Two views have the same name.", "Rename the cameras so each name is unique.")


def build_job(views: Sequence[ViewSpec], bbox: Optional[tuple[Sequence[float], Sequence[float]]],
              settings: dict, floor: Optional[Sequence[float]] = None) -> dict:
    """The job.json content (DESIGN.md 'Job folder'); floor [nx, ny, nz, d] (the plane n . X = d the object
    stands on, n up), when known, becomes its optional "floor"."""
    check_views(views)
    box = None
    if bbox is not None:
        lo, hi = np.asarray(bbox[0], dtype=float), np.asarray(bbox[1], dtype=float)
        if not np.all(hi > lo):
            raise GatherError("The bounding-box object has no volume.",
                              "Use an object with extent in all three axes (e.g. a cube), or Automatic.")
        box = {"min": lo.tolist(), "max": hi.tolist()}
    job = {"version": JOB_VERSION, "views": [v.to_json() for v in views], "bbox": box, "settings": dict(settings)}
    if floor is not None:
        job["floor"] = {"normal": [float(x) for x in floor[:3]], "offset": float(floor[3])}
    return job


def write_job_json(job_dir: Path, job: dict) -> Path:
    """Write job.json into job_dir and return its path."""
    path = Path(job_dir) / "job.json"
    path.write_text(json.dumps(job, indent=2) + "\n", encoding="utf-8")
    return path


def match_files(folder: Path, names: Sequence[str],
                extensions: Sequence[str] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".exr", ".bmp")
                ) -> dict[str, Path]:
    """Map each name to the file in folder whose stem equals it (case-insensitive), else contains it."""
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in extensions) \
        if folder.is_dir() else []
    by_stem = {p.stem.lower(): p for p in files}
    out: dict[str, Path] = {}
    for name in names:
        key = name.lower()
        if key in by_stem:
            out[name] = by_stem[key]
            continue
        hits = [p for p in files if key in p.stem.lower()]
        if len(hits) == 1:
            out[name] = hits[0]
    return out


def bbox_of_points(points: np.ndarray, margin: float = 0.0) -> tuple[list, list]:
    """Axis-aligned (min, max) of points, grown by margin times the diagonal."""
    pts = np.asarray(points, dtype=float).reshape(-1, 3)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    pad = margin * float(np.linalg.norm(hi - lo))
    return (lo - pad).tolist(), (hi + pad).tolist()
