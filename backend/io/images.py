"""Image and mask files: 8/16-bit PNG (and whatever imageio reads) to float RGB, alpha and masks."""
from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np

from backend.io.png16 import png_header, read_png16, write_png16
from backend.runtime.errors import Cancelled, JobError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".exr")


def read_pixels(path: Path, view: str | None = None) -> np.ndarray:
    """(H, W, C) float32 in [0, 1] of an image file; a missing or unreadable file is a JobError."""
    path = Path(path)
    if not path.is_file():
        raise JobError(f"image file not found: {path}", "check the path in the job (relative to the job folder)",
                       view=view)
    try:
        head = png_header(path)
        if head is not None and head[2] == 16 and head[4] == 0:
            px = read_png16(path)
        else:
            px = iio.imread(path)
    except (JobError, Cancelled):
        raise
    except Exception as exc:  # any decoder failure is the user's file, report it as such
        raise JobError(f"cannot read image {path}: {exc}", "re-save it as an 8- or 16-bit PNG", view=view) from exc
    if px.ndim == 2:
        px = px[..., None]
    if px.ndim != 3 or px.shape[2] not in (1, 2, 3, 4):
        raise JobError(f"image {path} has unsupported shape {px.shape}", "use greyscale, RGB or RGBA", view=view)
    if np.issubdtype(px.dtype, np.integer):
        return px.astype(np.float32) / float(np.iinfo(px.dtype).max)
    return px.astype(np.float32)


def split_rgba(px: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(H, W, 3) colour and (H, W) alpha or None from 1-4 channel pixels."""
    c = px.shape[2]
    rgb = px[..., :3] if c >= 3 else np.repeat(px[..., :1], 3, axis=2)
    alpha = px[..., c - 1] if c in (2, 4) else None
    return np.ascontiguousarray(rgb), alpha


def read_image(path: Path, view: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Colour (H, W, 3) float32 and alpha (H, W) or None of an image file."""
    return split_rgba(read_pixels(path, view))


def read_mask(path: Path, view: str | None = None) -> np.ndarray:
    """(H, W) bool mask: alpha when the file has one and it is not all opaque, else grey level > 0.5."""
    px = read_pixels(path, view)
    rgb, alpha = split_rgba(px)
    if alpha is not None and alpha.min() < 0.5:
        return alpha > 0.5
    return rgb.mean(axis=2) > 0.5


def is_8bit(values: np.ndarray) -> bool:
    """True when float values in [0, 1] are exactly representable in 8 bits."""
    scaled = values * 255.0
    return bool(np.all(np.abs(scaled - np.round(scaled)) < 1e-3))


def write_rgba(path: Path, rgb: np.ndarray, mask: np.ndarray | None) -> None:
    """PNG with alpha = mask (RGB when the mask is None); 8-bit when the colours allow it without loss, else 16-bit."""
    px = np.clip(np.asarray(rgb, dtype=np.float32), 0.0, 1.0)
    if mask is not None:
        px = np.concatenate([px, np.asarray(mask, dtype=np.float32)[..., None]], axis=2)
    if is_8bit(px):
        iio.imwrite(path, np.round(px * 255).astype(np.uint8))
    else:
        write_png16(path, np.round(px * 65535).astype(np.uint16))


def find_image(stem_path: Path) -> Path | None:
    """The existing file for a path given with or without an image extension."""
    if stem_path.is_file():
        return stem_path
    for suffix in IMAGE_SUFFIXES:
        for cand in (stem_path.with_name(stem_path.name + suffix), stem_path.with_name(stem_path.name + suffix.upper())):
            if cand.is_file():
                return cand
    return None
