"""16-bit PNG reading and writing (Pillow reduces 16-bit colour PNGs to 8 bits; we keep them)."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numba
import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # PNG colour type -> channels (greyscale, RGB, grey+alpha, RGBA)


def png_header(path: Path) -> tuple[int, int, int, int, int] | None:
    """(width, height, bit depth, colour type, interlace) of a PNG file, or None if not a PNG."""
    with open(path, "rb") as fh:
        head = fh.read(33)
    if len(head) < 33 or not head.startswith(SIGNATURE) or head[12:16] != b"IHDR":
        return None
    w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", head[16:29])
    return w, h, depth, ctype, interlace


@numba.njit(cache=True)
def _unfilter(raw: np.ndarray, height: int, stride: int, bpp: int) -> np.ndarray:
    """Undo the per-row PNG filters (none, sub, up, average, Paeth) into a (height, stride) byte array."""
    out = np.zeros((height, stride), dtype=np.uint8)
    pos = 0
    for y in range(height):
        ftype = raw[pos]
        pos += 1
        for x in range(stride):
            a = np.int32(out[y, x - bpp]) if x >= bpp else np.int32(0)
            b = np.int32(out[y - 1, x]) if y > 0 else np.int32(0)
            c = np.int32(out[y - 1, x - bpp]) if (x >= bpp and y > 0) else np.int32(0)
            v = np.int32(raw[pos + x])
            if ftype == 1:
                v += a
            elif ftype == 2:
                v += b
            elif ftype == 3:
                v += (a + b) // 2
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                v += a if (pa <= pb and pa <= pc) else (b if pb <= pc else c)
            out[y, x] = np.uint8(v & 0xFF)
        pos += stride
    return out


def read_png16(path: Path) -> np.ndarray:
    """(H, W, C) uint16 pixels of a non-interlaced 16-bit PNG (C = 1, 2, 3 or 4)."""
    data = Path(path).read_bytes()
    w, h, depth, ctype, interlace = png_header(path) or (0, 0, 0, 0, 0)
    if depth != 16 or ctype not in CHANNELS or interlace:
        raise ValueError(f"{path}: not a non-interlaced 16-bit greyscale/RGB(A) PNG")
    pos, idat = 8, []
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat.append(data[pos + 8:pos + 8 + length])
        elif kind == b"IEND":
            break
        pos += 12 + length
    channels = CHANNELS[ctype]
    stride = w * channels * 2
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8)
    if raw.size < h * (stride + 1):
        raise ValueError(f"{path}: truncated image data")
    rows = _unfilter(raw, h, stride, channels * 2)
    return rows.view(">u2").astype(np.uint16).reshape(h, w, channels)


def _chunk(kind: bytes, payload: bytes) -> bytes:
    """One PNG chunk with its CRC."""
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def write_png16(path: Path, pixels: np.ndarray) -> None:
    """Write (H, W), (H, W, 1..4) uint16 pixels as a 16-bit PNG."""
    px = np.asarray(pixels, dtype=np.uint16)
    if px.ndim == 2:
        px = px[..., None]
    h, w, channels = px.shape
    ctype = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    rows = px.astype(">u2").reshape(h, w * channels).view(np.uint8)
    raw = np.concatenate([np.zeros((h, 1), dtype=np.uint8), rows], axis=1).tobytes()
    ihdr = struct.pack(">IIBBBBB", w, h, 16, ctype, 0, 0, 0)
    Path(path).write_bytes(SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw, 6))
                           + _chunk(b"IEND", b""))
