"""Checks on a folder of photos before structure from motion (unreadable, blurred, duplicate, mixed cameras)
and after it (too few registered), each naming the photos and what to do."""
from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from backend.runtime.errors import JobError

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
MIN_PHOTOS = 3
ANALYSIS_SIDE = 512          # blur is measured on copies scaled to this longest side, so sizes compare
BLUR_RATIO = 0.15            # left out when the Laplacian variance is under this share of the set's median
NEAR_DUPLICATE_TOL = 0.04    # mean |difference| of normalised 64-px thumbnails below which two photos are one


@dataclass
class PhotoInfo:
    """What the checks read from one photo."""
    path: Path
    size: tuple[int, int]          # (width, height)
    body: str                      # EXIF make and model, "" when absent
    focal_mm: float                # EXIF focal length in mm, 0 when absent (zoom lenses: one camera per focal)
    blur: float                    # variance of the Laplacian at ANALYSIS_SIDE
    pixel_hash: str                # hash of the decoded pixels (exact duplicates)
    thumb: np.ndarray              # (h, w) float32, zero mean and unit spread (near duplicates)


@dataclass
class PhotoCheck:
    """The photos that go on to matching, those left out (file name -> why) and warnings."""
    usable: list[Path]
    groups: list[list[Path]] = field(default_factory=list)   # usable photos that share one camera
    left_out: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def list_photos(photos_dir: Path) -> list[Path]:
    """The photo files directly in photos_dir (by suffix, hidden files skipped), sorted by name."""
    return sorted(p for p in Path(photos_dir).iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in PHOTO_SUFFIXES)


def laplacian_variance(gray: np.ndarray) -> float:
    """Sharpness of a grey image (0..1 floats): the variance of its Laplacian."""
    return float(cv2.Laplacian(np.asarray(gray, np.float32), cv2.CV_32F, ksize=3).var())


def scaled_gray(gray: np.ndarray, side: int = ANALYSIS_SIDE) -> np.ndarray:
    """A grey image resized (area filter) so its longest side is `side`."""
    h, w = gray.shape
    s = side / max(h, w)
    if abs(s - 1.0) < 1e-6:
        return gray.astype(np.float32)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return cv2.resize(gray.astype(np.float32), size, interpolation=cv2.INTER_AREA)


def thumbnail(gray: np.ndarray, side: int = 64) -> np.ndarray:
    """A small grey copy with zero mean and unit standard deviation (insensitive to exposure)."""
    t = scaled_gray(gray, side)
    return (t - t.mean()) / max(float(t.std()), 1e-6)


def blurred_indices(scores: np.ndarray, ratio: float = BLUR_RATIO) -> list[int]:
    """Indices of photos whose sharpness is far below the set's median (none for sets under 4)."""
    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) < 4:
        return []
    limit = ratio * float(np.median(scores))
    return [int(i) for i in np.flatnonzero(scores < limit)]


def duplicate_of(hashes: list[str], thumbs: list[np.ndarray], tol: float = NEAR_DUPLICATE_TOL) -> dict[int, tuple[int, str]]:
    """Later photo index -> (earlier index it repeats, "exact" or "near"): identical pixels, or
    thumbnails of the same shape whose mean absolute difference is under tol."""
    out: dict[int, tuple[int, str]] = {}
    for j in range(len(hashes)):
        for i in range(j):
            if i in out:
                continue
            if hashes[i] == hashes[j]:
                out[j] = (i, "exact")
                break
            if thumbs[i].shape == thumbs[j].shape and float(np.abs(thumbs[i] - thumbs[j]).mean()) < tol:
                out[j] = (i, "near")
                break
    return out


def camera_groups(sizes: list[tuple[int, int]], bodies: list[str],
                  focals: list[float] | None = None) -> dict[tuple[str, int, int, float], list[int]]:
    """Photos that share one camera (intrinsics): same EXIF body, image size and EXIF focal length."""
    groups: dict[tuple[str, int, int, float], list[int]] = {}
    for i, ((w, h), body) in enumerate(zip(sizes, bodies)):
        groups.setdefault((body, w, h, round(focals[i], 2) if focals else 0.0), []).append(i)
    return groups


def exif_body(img: Image.Image) -> tuple[str, float]:
    """EXIF make and model ("" when the photo has none) and focal length in mm (0 when absent)."""
    try:
        exif = img.getexif()
        focal = float(exif.get_ifd(0x8769).get(0x920A, 0.0) or 0.0)
    except Exception:  # noqa: BLE001 - a broken EXIF block is only a missing hint
        return "", 0.0
    make, model = str(exif.get(0x010F, "")).strip(), str(exif.get(0x0110, "")).strip()
    if model.startswith(make):
        make = ""
    return " ".join(s for s in (make, model) if s).replace("\x00", ""), (focal if math.isfinite(focal) else 0.0)


def read_photo(path: Path) -> PhotoInfo:
    """Decode one photo and measure it (raises OSError/ValueError when it cannot be read)."""
    with Image.open(path) as img:
        img.load()
        body, focal = exif_body(img)
        gray = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    if gray.ndim != 2 or min(gray.shape) < 16:
        raise ValueError(f"image of {gray.shape} pixels is too small")
    return PhotoInfo(path=path, size=(gray.shape[1], gray.shape[0]), body=body, focal_mm=focal,
                     blur=laplacian_variance(scaled_gray(gray)),
                     pixel_hash=hashlib.sha1(np.ascontiguousarray(gray).tobytes()).hexdigest(),
                     thumb=thumbnail(gray))


def too_few(photos_dir: Path, n: int, detail: str = "") -> JobError:
    """The error for a folder with fewer usable photos than structure from motion needs."""
    return JobError(f"{photos_dir} has {n} usable photo{'s' if n != 1 else ''}{detail}; at least {MIN_PHOTOS} are needed",
                    "Put 20-60 sharp photos of the object in the folder, taken from all around it with "
                    "large overlap between neighbouring photos (JPEG or PNG).")


def check_photos(photos_dir: Path, poll: Callable[[], None] | None = None,
                 progress: Callable[[float], None] | None = None) -> PhotoCheck:
    """Read every photo; leave out unreadable, blurred and duplicate ones (named in left_out and a warning);
    warn about mixed image sizes or camera bodies; JobError when fewer than 3 usable photos remain."""
    photos_dir = Path(photos_dir)
    if not photos_dir.is_dir():
        raise JobError(f"{photos_dir} is not a folder", "Give the folder that holds the photos.")
    paths = list_photos(photos_dir)
    if len(paths) < MIN_PHOTOS:
        raise too_few(photos_dir, len(paths))
    check = PhotoCheck(usable=[])
    infos: list[PhotoInfo] = []
    stems: dict[str, str] = {}
    for k, path in enumerate(paths):
        if poll is not None:
            poll()
        if path.stem in stems:
            check.left_out[path.name] = f"same name as {stems[path.stem]} (cameras are named by file stem)"
            continue
        stems[path.stem] = path.name
        try:
            infos.append(read_photo(path))
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            check.left_out[path.name] = f"unreadable ({exc})"
        if progress is not None:
            progress((k + 1) / len(paths))
    if check.left_out:
        check.warnings.append("Unreadable photos, or photos whose name repeats another's stem, left out: "
                              + ", ".join(sorted(check.left_out)))
    dups = duplicate_of([i.pixel_hash for i in infos], [i.thumb for i in infos])
    for j, (i, kind) in sorted(dups.items()):
        check.left_out[infos[j].path.name] = f"{kind} duplicate of {infos[i].path.name}"
    if dups:
        check.warnings.append("Duplicate photos left out: " + ", ".join(
            f"{infos[j].path.name} (same as {infos[i].path.name})" for j, (i, _) in sorted(dups.items())))
    kept = [info for j, info in enumerate(infos) if j not in dups]
    blurred = blurred_indices(np.array([i.blur for i in kept]))
    if len(kept) - len(blurred) >= MIN_PHOTOS and blurred:
        median = float(np.median([i.blur for i in kept]))
        for b in blurred:
            check.left_out[kept[b].path.name] = f"blurred (sharpness {kept[b].blur / median:.0%} of the set's median)"
        check.warnings.append("Blurred photos left out: " + ", ".join(kept[b].path.name for b in blurred)
                              + "; retake them sharper if parts of the object are missing")
        kept = [info for b, info in enumerate(kept) if b not in set(blurred)]
    if len(kept) < MIN_PHOTOS:
        raise too_few(photos_dir, len(kept), f" (left out: {', '.join(sorted(check.left_out))})" if check.left_out else "")
    groups = camera_groups([i.size for i in kept], [i.body for i in kept], [i.focal_mm for i in kept])
    if len(groups) > 1:
        check.warnings.append("Photos come from %d cameras, zoom settings or image sizes (each gets its own "
                              "intrinsics, which needs more photos per group): %s" % (len(groups), "; ".join(
                                  f"{body or 'no EXIF'} {w}x{h}{f' {f:g} mm' if f else ''}: {len(ix)} photos"
                                  for (body, w, h, f), ix in groups.items())))
    check.usable = [i.path for i in kept]
    check.groups = [[kept[i].path for i in ix] for ix in groups.values()]
    return check


def check_registration(registered: list[str], attempted: list[str], photos_dir: Path) -> list[str]:
    """After mapping: JobError when fewer than 3 photos registered (naming them and what to try), else the
    warnings naming photos that did not register."""
    missing = [n for n in attempted if n not in set(registered)]
    if len(registered) < MIN_PHOTOS:
        got = ", ".join(registered) if registered else "none"
        raise JobError(f"Structure from motion placed only {len(registered)} of {len(attempted)} photos in {photos_dir} "
                       f"(registered: {got})",
                       "Take photos with more overlap (each part of the object in 3 or more photos, about 10-20 "
                       "degrees apart), keep the object textured and sharp (add a patterned mat or newspaper "
                       "underneath a plain object), and avoid reflections and a moving background.")
    if missing:
        return [f"{len(missing)} of {len(attempted)} photos did not register and are left out: " + ", ".join(missing)]
    return []
