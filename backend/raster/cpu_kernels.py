"""Numba kernels for the CPU path: barycentrics, interpolation and antialiasing, forward and backward.

They implement exactly the maths of the torch code in torch_raster.py and antialias.py (which serves
other devices and is the reference in the tests), with hand-written gradients, in float64 inside.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange


@njit(inline="always")
def _tri_xyw(pos: np.ndarray, tri: np.ndarray, b: int, f: int, m: np.ndarray) -> None:
    """m[k] = (x, y, w, z) of vertex k of face f in view b."""
    for k in range(3):
        v = tri[f, k]
        m[k, 0] = pos[b, v, 0]
        m[k, 1] = pos[b, v, 1]
        m[k, 2] = pos[b, v, 3]
        m[k, 3] = pos[b, v, 2]


@njit(inline="always")
def _triple(p0: float, p1: float, a: np.ndarray, i: int, c: np.ndarray, j: int) -> float:
    """det[p, a_i, c_j] over (x, y, w) with p = (p0, p1, 1)."""
    return (p0 * (a[i, 1] * c[j, 2] - a[i, 2] * c[j, 1]) - p1 * (a[i, 0] * c[j, 2] - a[i, 2] * c[j, 0])
            + (a[i, 0] * c[j, 1] - a[i, 1] * c[j, 0]))


@njit(parallel=True, cache=True, error_model="numpy")
def bary_forward(pos: np.ndarray, tri: np.ndarray, ids: np.ndarray, out: np.ndarray) -> None:
    """out[b, i, j] = (u, v, z/w, id) for covered pixels, zeros elsewhere."""
    nb, h, w = ids.shape
    for task in prange(nb * h):
        b = task // h
        i = task - b * h
        m = np.empty((3, 4))
        py = (2.0 * i + 1.0) / h - 1.0
        for j in range(w):
            fid = ids[b, i, j]
            if fid == 0:
                out[b, i, j, 0] = 0.0
                out[b, i, j, 1] = 0.0
                out[b, i, j, 2] = 0.0
                out[b, i, j, 3] = 0.0
                continue
            _tri_xyw(pos, tri, b, fid - 1, m)
            px = (2.0 * j + 1.0) / w - 1.0
            n0 = _triple(px, py, m, 1, m, 2)
            n1 = _triple(px, py, m, 2, m, 0)
            n2 = _triple(px, py, m, 0, m, 1)
            d = n0 + n1 + n2
            out[b, i, j, 0] = n0 / d
            out[b, i, j, 1] = n1 / d
            out[b, i, j, 2] = (n0 * m[0, 3] + n1 * m[1, 3] + n2 * m[2, 3]) / (n0 * m[0, 2] + n1 * m[1, 2] + n2 * m[2, 2])
            out[b, i, j, 3] = fid


@njit(inline="always")
def _bary_pixel_grad(pos: np.ndarray, tri: np.ndarray, b: int, f: int, px: float, py: float, gu: float,
                     gv: float, gz: float, m: np.ndarray, n: np.ndarray, dn: np.ndarray, gpos: np.ndarray) -> None:
    """Add one pixel's d loss / d pos (from d u, d v, d z/w) into gpos (B, V, 4)."""
    _tri_xyw(pos, tri, b, f, m)
    n[0] = _triple(px, py, m, 1, m, 2)
    n[1] = _triple(px, py, m, 2, m, 0)
    n[2] = _triple(px, py, m, 0, m, 1)
    d = n[0] + n[1] + n[2]
    wd = n[0] * m[0, 2] + n[1] * m[1, 2] + n[2] * m[2, 2]
    zw = (n[0] * m[0, 3] + n[1] * m[1, 3] + n[2] * m[2, 3]) / wd
    s = (gu * n[0] + gv * n[1]) / d
    dn[0] = (gu - s) / d + gz * (m[0, 3] - zw * m[0, 2]) / wd
    dn[1] = (gv - s) / d + gz * (m[1, 3] - zw * m[1, 2]) / wd
    dn[2] = -s / d + gz * (m[2, 3] - zw * m[2, 2]) / wd
    for k in range(3):
        vk = tri[f, k]
        k1 = (k + 1) % 3
        k2 = (k + 2) % 3
        # n[k2] = det[p, v_k, v_k1] -> d/dv_k = v_k1 x p ; n[k1] = det[p, v_k2, v_k] -> d/dv_k = p x v_k2
        a = dn[k2]
        c = dn[k1]
        gpos[b, vk, 0] += a * (m[k1, 1] - m[k1, 2] * py) + c * (py * m[k2, 2] - m[k2, 1])
        gpos[b, vk, 1] += a * (m[k1, 2] * px - m[k1, 0]) + c * (m[k2, 0] - px * m[k2, 2])
        gpos[b, vk, 3] += (a * (m[k1, 0] * py - m[k1, 1] * px) + c * (px * m[k2, 1] - py * m[k2, 0])
                           - gz * zw * n[k] / wd)
        gpos[b, vk, 2] += gz * n[k] / wd


@njit(parallel=True, cache=True, error_model="numpy")
def bary_backward(pos: np.ndarray, tri: np.ndarray, ids: np.ndarray, grad: np.ndarray, parts: np.ndarray) -> None:
    """d loss / d pos from d loss / d (u, v, z/w), summed per chunk of rows into parts (n, B, V, 4)."""
    nb, h, w = ids.shape
    nchunk = parts.shape[0]
    rows = nb * h
    for ch in prange(nchunk):
        m = np.empty((3, 4))
        n = np.empty(3)
        dn = np.empty(3)
        for task in range(ch * rows // nchunk, (ch + 1) * rows // nchunk):
            b = task // h
            i = task - b * h
            py = (2.0 * i + 1.0) / h - 1.0
            for j in range(w):
                fid = ids[b, i, j]
                if fid == 0:
                    continue
                gu = grad[b, i, j, 0]
                gv = grad[b, i, j, 1]
                gz = grad[b, i, j, 2]
                if gu == 0.0 and gv == 0.0 and gz == 0.0:
                    continue
                px = (2.0 * j + 1.0) / w - 1.0
                _bary_pixel_grad(pos, tri, b, fid - 1, px, py, gu, gv, gz, m, n, dn, parts[ch])


@njit(parallel=True, cache=True, error_model="numpy")
def interp_forward(attr: np.ndarray, rast: np.ndarray, tri: np.ndarray, out: np.ndarray) -> None:
    """out = u a0 + v a1 + (1 - u - v) a2 at covered pixels, zero elsewhere (attr (A, V, C), A = 1 or B)."""
    nb, h, w, _ = rast.shape
    nc = attr.shape[2]
    for task in prange(nb * h):
        b = task // h
        i = task - b * h
        ab = b if attr.shape[0] > 1 else 0
        for j in range(w):
            fid = int(rast[b, i, j, 3])
            if fid == 0:
                for c in range(nc):
                    out[b, i, j, c] = 0.0
                continue
            u = rast[b, i, j, 0]
            v = rast[b, i, j, 1]
            f = fid - 1
            v0, v1, v2 = tri[f, 0], tri[f, 1], tri[f, 2]
            for c in range(nc):
                a2 = attr[ab, v2, c]
                out[b, i, j, c] = a2 + u * (attr[ab, v0, c] - a2) + v * (attr[ab, v1, c] - a2)


@njit(parallel=True, cache=True, error_model="numpy")
def interp_backward(attr: np.ndarray, rast: np.ndarray, tri: np.ndarray, grad: np.ndarray,
                    parts: np.ndarray, grast: np.ndarray) -> None:
    """d loss / d attr summed per chunk of rows into parts (n, A, V, C); d loss / d (u, v) into grast."""
    nb, h, w, _ = rast.shape
    nc = attr.shape[2]
    nchunk = parts.shape[0]
    rows = nb * h
    for ch in prange(nchunk):
        gattr = parts[ch]
        for task in range(ch * rows // nchunk, (ch + 1) * rows // nchunk):
            b = task // h
            i = task - b * h
            ab = b if attr.shape[0] > 1 else 0
            for j in range(w):
                fid = int(rast[b, i, j, 3])
                if fid == 0:
                    continue
                u = rast[b, i, j, 0]
                v = rast[b, i, j, 1]
                f = fid - 1
                v0, v1, v2 = tri[f, 0], tri[f, 1], tri[f, 2]
                gu = 0.0
                gv = 0.0
                for c in range(nc):
                    g = grad[b, i, j, c]
                    a2 = attr[ab, v2, c]
                    gu += g * (attr[ab, v0, c] - a2)
                    gv += g * (attr[ab, v1, c] - a2)
                    gattr[ab, v0, c] += g * u
                    gattr[ab, v1, c] += g * v
                    gattr[ab, v2, c] += g * (1.0 - u - v)
                grast[b, i, j, 0] = gu
                grast[b, i, j, 1] = gv


EDGE_EPS = 1e-3       # as antialias.EDGE_EPS
T_SLACK = 1.0 / 16.0  # as antialias.T_SLACK
NEV = 11              # event row: b, pt, po, vi, vj, horiz, ds, col, row, t, moving


@njit(inline="always")
def _screen(pos: np.ndarray, b: int, v: int, h: int, w: int) -> tuple[float, float]:
    """Pixel-space x, y of a vertex (pixel centres on integers)."""
    vw = pos[b, v, 3]
    return (pos[b, v, 0] / vw + 1.0) * (0.5 * w) - 0.5, (pos[b, v, 1] / vw + 1.0) * (0.5 * h) - 0.5


@njit(inline="always")
def _signbit(x: float) -> bool:
    """Sign bit of x (True for negatives and -0)."""
    return math.copysign(1.0, x) < 0.0


@njit(inline="always")
def _area(x0: float, y0: float, x1: float, y1: float, x2: float, y2: float) -> float:
    """Signed area (times two) of a screen triangle."""
    return (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)


@njit(parallel=True, cache=True, error_model="numpy")
def aa_setup(pos: np.ndarray, h: int, w: int) -> np.ndarray:
    """Pixel-space vertices (B, V, 2: x, y) per view."""
    nb, nv = pos.shape[0], pos.shape[1]
    scr = np.empty((nb, nv, 2))
    for task in prange(nb * nv):
        b = task // nv
        v = task - b * nv
        x, y = _screen(pos, b, v, h, w)
        scr[b, v, 0] = x
        scr[b, v, 1] = y
    return scr


@njit(inline="always")
def _pair_event(rast: np.ndarray, scr: np.ndarray, tri: np.ndarray, opp: np.ndarray, b: int, i: int, j: int,
                i2: int, j2: int, horiz: bool, out: np.ndarray) -> bool:
    """Fill out (NEV,) with the pair's silhouette crossing if it counts (rule in antialias.py)."""
    nb, h, w, _ = rast.shape
    ia = int(rast[b, i, j, 3])
    ib = int(rast[b, i2, j2, 3])
    if ia != 0 and (ib == 0 or rast[b, i, j, 2] < rast[b, i2, j2, 2]):
        ti, tj, oi, oj, f, ds = i, j, i2, j2, ia - 1, 1.0
    else:
        ti, tj, oi, oj, f, ds = i2, j2, i, j, ib - 1, -1.0
    col = float(tj)
    row = float(ti)
    sx = np.empty(3)
    sy = np.empty(3)
    for k in range(3):
        sx[k] = scr[b, tri[f, k], 0] - col
        sy[k] = scr[b, tri[f, k], 1] - row
    best = -np.inf
    kb = -1
    for k in range(3):
        k1 = (k + 1) % 3
        k2 = (k + 2) % 3
        if horiz:
            ai, ci, aj, cj = sx[k1], sy[k1], sx[k2], sy[k2]
        else:
            ai, ci, aj, cj = sy[k1], sx[k1], sy[k2], sx[k2]
        den = cj - ci
        if _signbit(ci) == _signbit(cj) or den == 0.0:
            continue
        tk = ds * (ai * cj - ci * aj) / den
        if tk > best:
            best = tk
            kb = k
    if kb < 0:
        return False
    k1 = (kb + 1) % 3
    k2 = (kb + 2) % 3
    if horiz:
        ext_a, ext_c = sx[k2] - sx[k1], sy[k2] - sy[k1]
    else:
        ext_a, ext_c = sy[k2] - sy[k1], sx[k2] - sx[k1]
    if not (abs(ext_c) >= abs(ext_a) and best > -T_SLACK and best < 1.0 + T_SLACK):
        return False
    o = opp[f, kb]
    if o >= 0:
        bb = _area(sx[0], sy[0], sx[1], sy[1], sx[2], sy[2])
        wing = _area(scr[b, o, 0] - col, scr[b, o, 1] - row, sx[k1], sy[k1], sx[k2], sy[k2])
        if _signbit(wing) != _signbit(bb):
            return False
    t = min(max(best, 0.0), 1.0)
    out[0] = b
    out[1] = (b * h + ti) * w + tj
    out[2] = (b * h + oi) * w + oj
    out[3] = tri[f, k1]
    out[4] = tri[f, k2]
    out[5] = 1.0 if horiz else 0.0
    out[6] = ds
    out[7] = col
    out[8] = row
    out[9] = t
    out[10] = 1.0 if (t > 0.0 and t < 1.0) else 0.0
    return True


@njit(parallel=True, cache=True, error_model="numpy")
def aa_events(rast: np.ndarray, scr: np.ndarray, tri: np.ndarray, opp: np.ndarray) -> np.ndarray:
    """Counted silhouette crossings (rows of NEV values), in row-major pair order."""
    nb, h, w, _ = rast.shape
    rows = nb * h
    counts = np.zeros(rows + 1, dtype=np.int64)
    for task in prange(rows):
        b = task // h
        i = task - b * h
        c = 0
        for j in range(w):
            fid = rast[b, i, j, 3]
            if j + 1 < w and rast[b, i, j + 1, 3] != fid:
                c += 1
            if i + 1 < h and rast[b, i + 1, j, 3] != fid:
                c += 1
        counts[task + 1] = c
    offs = np.cumsum(counts)
    ev = np.empty((offs[rows], NEV))
    keep = np.zeros(offs[rows], dtype=np.bool_)
    for task in prange(rows):
        b = task // h
        i = task - b * h
        e = offs[task]
        for j in range(w):
            fid = rast[b, i, j, 3]
            if j + 1 < w and rast[b, i, j + 1, 3] != fid:
                keep[e] = _pair_event(rast, scr, tri, opp, b, i, j, i, j + 1, True, ev[e])
                e += 1
            if i + 1 < h and rast[b, i + 1, j, 3] != fid:
                keep[e] = _pair_event(rast, scr, tri, opp, b, i, j, i + 1, j, False, ev[e])
                e += 1
    return ev[keep]


@njit(cache=True, error_model="numpy")
def aa_forward(color: np.ndarray, ev: np.ndarray, out: np.ndarray) -> None:
    """out (flat pixels, C), already a copy of color, receives every event's blend."""
    nc = color.shape[1]
    for e in range(ev.shape[0]):
        pt = int(ev[e, 1])
        po = int(ev[e, 2])
        t = ev[e, 9]
        if t >= 0.5:
            tgt, src, s = po, pt, t - 0.5
        else:
            tgt, src, s = pt, po, 0.5 - t
        for c in range(nc):
            out[tgt, c] += s * (color[src, c] - color[tgt, c])


@njit(cache=True, error_model="numpy")
def aa_backward(color: np.ndarray, ev: np.ndarray, pos: np.ndarray, grad: np.ndarray,
                gcolor: np.ndarray, gpos: np.ndarray, h: int, w: int) -> None:
    """gcolor (a copy of grad) and gpos accumulate the events' gradients."""
    nc = color.shape[1]
    for e in range(ev.shape[0]):
        b = int(ev[e, 0])
        pt = int(ev[e, 1])
        po = int(ev[e, 2])
        vi = int(ev[e, 3])
        vj = int(ev[e, 4])
        horiz = ev[e, 5] == 1.0
        ds = ev[e, 6]
        col = ev[e, 7]
        row = ev[e, 8]
        t = ev[e, 9]
        far = t >= 0.5
        if far:
            tgt, src, s = po, pt, t - 0.5
        else:
            tgt, src, s = pt, po, 0.5 - t
        gs = 0.0
        for c in range(nc):
            g = grad[tgt, c]
            gcolor[src, c] += s * g
            gcolor[tgt, c] -= s * g
            gs += g * (color[src, c] - color[tgt, c])
        dt = gs if far else -gs
        if dt == 0.0 or ev[e, 10] == 0.0:
            continue
        xi, yi = _screen(pos, b, vi, h, w)
        xj, yj = _screen(pos, b, vj, h, w)
        xi -= col
        xj -= col
        yi -= row
        yj -= row
        if horiz:
            ai, ci, aj, cj = xi, yi, xj, yj
        else:
            ai, ci, aj, cj = yi, xi, yj, xj
        den = cj - ci
        dd = den + (EDGE_EPS if den >= 0.0 else -EDGE_EPS)
        num = ai * cj - ci * aj
        k = dt * ds / dd
        g_ai = k * cj
        g_aj = -k * ci
        g_ci = k * (num / dd - aj)
        g_cj = k * (ai - num / dd)
        if horiz:
            gxi, gyi, gxj, gyj = g_ai, g_ci, g_aj, g_cj
        else:
            gxi, gyi, gxj, gyj = g_ci, g_ai, g_cj, g_aj
        for v, gx, gy in ((vi, gxi, gyi), (vj, gxj, gyj)):
            vw = pos[b, v, 3]
            sxw = 0.5 * w / vw
            syw = 0.5 * h / vw
            gpos[b, v, 0] += gx * sxw
            gpos[b, v, 1] += gy * syw
            gpos[b, v, 3] -= (gx * sxw * pos[b, v, 0] + gy * syw * pos[b, v, 1]) / vw
