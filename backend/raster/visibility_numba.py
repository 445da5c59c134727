"""CPU visibility pass: numba z-buffer rasterizer returning the visible triangle per pixel.

Screen coordinates: pixel (row i, col j) is the point (j, i) with x = (ndc_x + 1) W / 2 - 0.5, so
pixel centres sit on integers. Like nvdiffrast's rasterizer, vertices are first snapped to 1/16 of a
pixel (round to nearest even), so coverage and depth come from the snapped triangle while the
barycentrics (torch_raster) use the exact one; the snapped values are exact in float64, so ties on
edges are exact too and the tie rule below (the one nvdiffrast uses) decides them. A pixel is inside
a triangle when its three oriented edge functions are > 0, or == 0 on a "top-left" edge (inward
normal (a, b) with a > 0, or a == 0 and b > 0), so a pixel on an edge shared by two triangles
belongs to exactly one. Smallest z/w wins (ties: lowest
id); pixels with z/w outside [-1, 1] are clipped; triangles with any w <= 0 are dropped.
"""
from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

from .base import SUBPIXELS

# Per-face setup layout, float part: a0 b0 c0 a1 b1 c1 a2 b2 c2 za zb zc (oriented edges, depth plane).
# Integer part: valid, xmin, xmax, ymin, ymax, tie bits.
NF, NI = 12, 6


@njit(parallel=True, cache=True, error_model="numpy")
def face_setup(pos: np.ndarray, tri: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Oriented edge functions, depth plane and pixel bbox of every (view, face)."""
    nb, nf = pos.shape[0], tri.shape[0]
    sf = np.zeros((nb, nf, NF), dtype=np.float64)
    si = np.zeros((nb, nf, NI), dtype=np.int32)
    for task in prange(nb * nf):
        b = task // nf
        f = task - b * nf
        xs = np.empty(3)
        ys = np.empty(3)
        zs = np.empty(3)
        ok = True
        for k in range(3):
            v = tri[f, k]
            w = pos[b, v, 3]
            if not w > 0.0:
                ok = False
                break
            xs[k] = np.rint(pos[b, v, 0] / w * (8.0 * width)) / SUBPIXELS + 0.5 * (width - 1)
            ys[k] = np.rint(pos[b, v, 1] / w * (8.0 * height)) / SUBPIXELS + 0.5 * (height - 1)
            zs[k] = pos[b, v, 2] / w
        if not ok:
            continue
        area = (xs[1] - xs[0]) * (ys[2] - ys[0]) - (xs[2] - xs[0]) * (ys[1] - ys[0])
        if area == 0.0 or not math.isfinite(area):
            continue
        s = 1.0 if area > 0.0 else -1.0
        za = 0.0
        zb = 0.0
        zc = 0.0
        tie = 0
        for k in range(3):
            i = (k + 1) % 3
            j = (k + 2) % 3
            a = (ys[i] - ys[j]) * s
            bb = (xs[j] - xs[i]) * s
            c = (xs[i] * ys[j] - xs[j] * ys[i]) * s
            sf[b, f, 3 * k] = a
            sf[b, f, 3 * k + 1] = bb
            sf[b, f, 3 * k + 2] = c
            if a > 0.0 or (a == 0.0 and bb > 0.0):
                tie |= 1 << k
            za += zs[k] * a
            zb += zs[k] * bb
            zc += zs[k] * c
        inv = 1.0 / (area * s)
        sf[b, f, 9] = za * inv
        sf[b, f, 10] = zb * inv
        sf[b, f, 11] = zc * inv
        x0 = max(math.ceil(min(xs[0], min(xs[1], xs[2]))), 0.0)
        x1 = min(math.floor(max(xs[0], max(xs[1], xs[2]))), width - 1.0)
        y0 = max(math.ceil(min(ys[0], min(ys[1], ys[2]))), 0.0)
        y1 = min(math.floor(max(ys[0], max(ys[1], ys[2]))), height - 1.0)
        if x0 > x1 or y0 > y1:
            continue
        si[b, f, 0] = 1
        si[b, f, 1] = int(x0)
        si[b, f, 2] = int(x1)
        si[b, f, 3] = int(y0)
        si[b, f, 4] = int(y1)
        si[b, f, 5] = tie
    return sf, si


@njit(inline="always")
def _inside(e: float, tie: int, k: int) -> bool:
    """Edge test with the top-left tie rule."""
    return e > 0.0 or (e == 0.0 and (tie >> k) & 1 == 1)


@njit(inline="always")
def _inside3(sf: np.ndarray, b: int, f: int, tie: int, x: int, y: int) -> bool:
    """Whether pixel (x, y) passes all three edge tests of face f."""
    for k in range(3):
        e = sf[b, f, 3 * k] * x + sf[b, f, 3 * k + 1] * y + sf[b, f, 3 * k + 2]
        if not _inside(e, tie, k):
            return False
    return True


@njit(parallel=True, cache=True, error_model="numpy")
def raster_bands(sf: np.ndarray, si: np.ndarray, height: int, width: int, band: int) -> np.ndarray:
    """Visible triangle id + 1 per pixel (0 = empty), one parallel task per band of rows."""
    nb, nf = si.shape[0], si.shape[1]
    nbands = (height + band - 1) // band
    out = np.zeros((nb, height, width), dtype=np.int32)
    for task in prange(nb * nbands):
        b = task // nbands
        r0 = (task - b * nbands) * band
        r1 = min(r0 + band, height) - 1
        zbuf = np.full((r1 - r0 + 1, width), np.inf)
        for f in range(nf):
            if si[b, f, 0] == 0:
                continue
            y0 = max(si[b, f, 3], r0)
            y1 = min(si[b, f, 4], r1)
            if y0 > y1:
                continue
            bx0 = si[b, f, 1]
            bx1 = si[b, f, 2]
            tie = si[b, f, 5]
            za, zb, zc = sf[b, f, 9], sf[b, f, 10], sf[b, f, 11]
            for y in range(y0, y1 + 1):
                lo = float(bx0)
                hi = float(bx1)
                for k in range(3):
                    a = sf[b, f, 3 * k]
                    r = sf[b, f, 3 * k + 1] * y + sf[b, f, 3 * k + 2]
                    if a > 0.0:
                        lo = max(lo, math.floor(-r / a) - 1.0)
                    elif a < 0.0:
                        hi = min(hi, math.ceil(-r / a) + 1.0)
                    elif r < 0.0:
                        hi = lo - 1.0
                x0 = int(lo)
                x1 = int(hi)
                # Each edge test is monotone along a row (rounding is monotone), so the covered pixels
                # form one interval: find its ends with exact tests, then only depth-test inside it.
                while x0 <= x1 and not _inside3(sf, b, f, tie, x0, y):
                    x0 += 1
                while x1 >= x0 and not _inside3(sf, b, f, tie, x1, y):
                    x1 -= 1
                zrow = zb * y + zc
                for x in range(x0, x1 + 1):
                    z = za * x + zrow
                    if z < -1.0 or z > 1.0:
                        continue
                    if z < zbuf[y - r0, x]:
                        zbuf[y - r0, x] = z
                        out[b, y, x] = f + 1
    return out


def visible_ids(pos: np.ndarray, tri: np.ndarray, height: int, width: int, band: int = 0) -> np.ndarray:
    """(B, H, W) int32 visible triangle id + 1 (0 = empty) for clip-space pos (B, V, 4).

    band: rows per parallel task; 0 picks about four tasks per thread, 8 to 64 rows each.
    """
    pos64 = np.ascontiguousarray(pos, dtype=np.float64)
    tri32 = np.ascontiguousarray(tri, dtype=np.int32)
    if band <= 0:
        band = max(8, min(64, -(-pos64.shape[0] * int(height) // (4 * numba.get_num_threads()))))
    sf, si = face_setup(pos64, tri32, int(height), int(width))
    return raster_bands(sf, si, int(height), int(width), int(band))


def set_threads(n: int) -> None:
    """Number of numba threads used by the visibility pass."""
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))
