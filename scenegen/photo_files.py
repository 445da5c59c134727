"""Phone-like JPEG files: RGB only, with the EXIF tags a phone writes (make, model, focal lengths, time)."""
from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import Image, TiffImagePlugin

from scenegen.walkaround import PhoneOptics

TAG_MAKE, TAG_MODEL, TAG_ORIENTATION, TAG_SOFTWARE, TAG_DATETIME = 0x010F, 0x0110, 0x0112, 0x0131, 0x0132
IFD_EXIF = 0x8769
TAG_DATETIME_ORIGINAL, TAG_FOCAL_LENGTH, TAG_FOCAL_35MM = 0x9003, 0x920A, 0xA405
TAG_PIXEL_X, TAG_PIXEL_Y = 0xA002, 0xA003
CAPTURE_START = datetime(2026, 5, 1, 14, 0, 0)


def phone_exif(optics: PhoneOptics, width: int, height: int, index: int) -> Image.Exif:
    """EXIF of photo number `index`: make, model, focal length (mm), 35 mm equivalent, a time 4 s apart."""
    exif = Image.Exif()
    when = (CAPTURE_START + timedelta(seconds=4 * index)).strftime("%Y:%m:%d %H:%M:%S")
    exif[TAG_MAKE] = optics.make
    exif[TAG_MODEL] = optics.model
    exif[TAG_ORIENTATION] = 1
    exif[TAG_SOFTWARE] = "scenegen (Blender Cycles)"
    exif[TAG_DATETIME] = when
    sub = exif.get_ifd(IFD_EXIF)
    sub[TAG_DATETIME_ORIGINAL] = when
    sub[TAG_FOCAL_LENGTH] = TiffImagePlugin.IFDRational(round(optics.lens_mm * 100), 100)
    sub[TAG_FOCAL_35MM] = optics.focal_35mm(width, height)
    sub[TAG_PIXEL_X] = width
    sub[TAG_PIXEL_Y] = height
    return exif


def write_jpeg(path: Path, rgb: np.ndarray, quality: int, exif: Image.Exif | None) -> Path:
    """Save an (H, W, 3) uint8 image as a baseline JPEG (4:2:0 like phones), with EXIF when given."""
    img = Image.fromarray(np.ascontiguousarray(rgb[..., :3]), "RGB")
    kwargs = {"quality": int(quality), "subsampling": 2}
    if exif is not None:
        kwargs["exif"] = exif.tobytes()
    img.save(path, "JPEG", **kwargs)
    return path


def read_focal_exif(path: Path) -> dict:
    """Make, model, focal length (mm) and 35 mm equivalent read back from a JPEG (missing tags absent)."""
    exif = Image.open(path).getexif()
    sub = exif.get_ifd(IFD_EXIF)
    out: dict = {}
    for key, tag, table in (("make", TAG_MAKE, exif), ("model", TAG_MODEL, exif),
                            ("focal_length_mm", TAG_FOCAL_LENGTH, sub), ("focal_35mm", TAG_FOCAL_35MM, sub)):
        if tag in table:
            value = table[tag]
            out[key] = float(value) if key.startswith("focal") else str(value)
    return out
