"""Minimal exact PNG writer and header reader (zlib only), for job images. No bpy."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(tag: bytes, data: bytes) -> bytes:
    """One PNG chunk with its length and CRC."""
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def write_png(path: Path, pixels: np.ndarray, level: int = 6) -> None:
    """Write an (H, W), (H, W, 3) or (H, W, 4) uint8 array (row 0 = top) as an 8-bit PNG."""
    arr = np.asarray(pixels)
    if arr.dtype != np.uint8:
        raise ValueError("write_png needs uint8 pixels")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    h, w, c = arr.shape
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    raw = np.zeros((h, 1 + w * c), dtype=np.uint8)
    raw[:, 1:] = arr.reshape(h, w * c)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0)
    data = _SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw.tobytes(), level)) \
        + _chunk(b"IEND", b"")
    Path(path).write_bytes(data)


def png_info(path: Path) -> tuple[int, int, int, int]:
    """(width, height, bit_depth, channels) from a PNG file's header."""
    with open(path, "rb") as fh:
        head = fh.read(33)
    if head[:8] != _SIGNATURE or head[12:16] != b"IHDR":
        raise ValueError(f"{Path(path).name} is not a PNG file")
    w, h, depth, color_type = struct.unpack(">IIBB", head[16:26])
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(color_type, 0)
    return w, h, depth, channels


def float_rgba_to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Blender's bottom-up float RGBA buffer (H, W, 4) in 0..1 to a top-down uint8 array."""
    arr = np.clip(np.asarray(pixels, dtype=np.float32), 0.0, 1.0)
    return (arr[::-1] * 255.0 + 0.5).astype(np.uint8)
