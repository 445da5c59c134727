"""Numba kernels for the CPU path: barycentrics, interpolation and antialiasing, forward and backward.

They implement exactly the maths of the torch code in torch_raster.py and antialias.py (which serves
other devices and is the reference in the tests), with hand-written gradients, in float64 inside.
"""
from __future__ import annotations

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


@njit(parallel=True, cache=True)
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


@njit(cache=True)
def bary_backward(pos: np.ndarray, tri: np.ndarray, ids: np.ndarray, grad: np.ndarray, gpos: np.ndarray) -> None:
    """Accumulate d loss / d pos from d loss / d (u, v, z/w)."""
    nb, h, w = ids.shape
    m = np.empty((3, 4))
    n = np.empty(3)
    dn = np.empty(3)
    pv = np.empty((1, 3))
    cr = np.empty(3)
    for b in range(nb):
        for i in range(h):
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
                f = fid - 1
                _tri_xyw(pos, tri, b, f, m)
                px = (2.0 * j + 1.0) / w - 1.0
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
                pv[0, 0] = px
                pv[0, 1] = py
                pv[0, 2] = 1.0
                for k in range(3):
                    vk = tri[f, k]
                    k1 = (k + 1) % 3
                    k2 = (k + 2) % 3
                    # n_{k-1} = det[p, v_k, v_{k+1}]: d/dv_k = v_{k+1} x p ; n_{k+1} = det[p, v_{k+2}, v_k]: d/dv_k = p x v_{k+2}
                    a = dn[k2]
                    c = dn[k1]
                    cr[0] = a * (m[k1, 1] * 1.0 - m[k1, 2] * py) + c * (py * m[k2, 2] - 1.0 * m[k2, 1])
                    cr[1] = a * (m[k1, 2] * px - m[k1, 0] * 1.0) + c * (1.0 * m[k2, 0] - px * m[k2, 2])
                    cr[2] = a * (m[k1, 0] * py - m[k1, 1] * px) + c * (px * m[k2, 1] - py * m[k2, 0])
                    gpos[b, vk, 0] += cr[0]
                    gpos[b, vk, 1] += cr[1]
                    gpos[b, vk, 3] += cr[2] - gz * zw * n[k] / wd
                    gpos[b, vk, 2] += gz * n[k] / wd


@njit(parallel=True, cache=True)
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


@njit(cache=True)
def interp_backward(attr: np.ndarray, rast: np.ndarray, tri: np.ndarray, grad: np.ndarray,
                    gattr: np.ndarray, grast: np.ndarray) -> None:
    """Accumulate d loss / d attr and write d loss / d (u, v) into grast."""
    nb, h, w, _ = rast.shape
    nc = attr.shape[2]
    for b in range(nb):
        ab = b if attr.shape[0] > 1 else 0
        for i in range(h):
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


@njit(inline="always")
def _screen(pos: np.ndarray, b: int, v: int, h: int, w: int) -> tuple[float, float, float]:
    """Pixel-space x, y and w of a vertex."""
    vw = pos[b, v, 3]
    ws = vw if vw > 0.0 else 1.0
    return (pos[b, v, 0] / ws + 1.0) * 0.5 * w - 0.5, (pos[b, v, 1] / ws + 1.0) * 0.5 * h - 0.5, vw


@njit(cache=True)
def aa_events(rast: np.ndarray, pos: np.ndarray, tri: np.ndarray, opp: np.ndarray) -> np.ndarray:
    """Silhouette crossings: rows (b, pt, po, vi, vj, horiz, dirn, pal, pac, t) as float64."""
    nb, h, w, _ = rast.shape
    cap = 1024
    ev = np.empty((cap, 10))
    ne = 0
    for b in range(nb):
        for i in range(h):
            for j in range(w):
                for horiz in range(2):
                    if horiz == 1:
                        if j + 1 >= w:
                            continue
                        i2, j2 = i, j + 1
                    else:
                        if i + 1 >= h:
                            continue
                        i2, j2 = i + 1, j
                    ia = int(rast[b, i, j, 3])
                    ib = int(rast[b, i2, j2, 3])
                    if ia == ib:
                        continue
                    a_front = ib == 0 or (ia != 0 and rast[b, i, j, 2] < rast[b, i2, j2, 2])
                    if a_front:
                        ti, tj, oi, oj, f = i, j, i2, j2, ia - 1
                    else:
                        ti, tj, oi, oj, f = i2, j2, i, j, ib - 1
                    pal = float(tj if horiz == 1 else ti)
                    pac = float(ti if horiz == 1 else tj)
                    oal = float(oj if horiz == 1 else oi)
                    dirn = 1.0 if oal > pal else -1.0
                    for k in range(3):
                        vi = tri[f, (k + 1) % 3]
                        vj = tri[f, (k + 2) % 3]
                        xi, yi, _ = _screen(pos, b, vi, h, w)
                        xj, yj, _ = _screen(pos, b, vj, h, w)
                        if horiz == 1:
                            ai, ci, aj, cj = xi, yi, xj, yj
                        else:
                            ai, ci, aj, cj = yi, xi, yj, xj
                        if not ((ci - pac) * (cj - pac) <= 0.0 and ci != cj):
                            continue
                        t = (ai + (pac - ci) * (aj - ai) / (cj - ci) - pal) * dirn
                        if t < 0.0 or t > 1.0:
                            continue
                        o = opp[f, k]
                        if o >= 0:
                            xk, yk, _ = _screen(pos, b, tri[f, k], h, w)
                            xo, yo, wo = _screen(pos, b, o, h, w)
                            if wo > 0.0:
                                if horiz == 1:
                                    ak, ck, ao, co = xk, yk, xo, yo
                                else:
                                    ak, ck, ao, co = yk, xk, yo, xo
                                ex = aj - ai
                                ey = cj - ci
                                s1 = ex * (ck - ci) - ey * (ak - ai)
                                s2 = ex * (co - ci) - ey * (ao - ai)
                                if not s1 * s2 > 0.0:
                                    continue
                        if ne == cap:
                            bigger = np.empty((cap * 2, 10))
                            bigger[:cap] = ev
                            ev = bigger
                            cap *= 2
                        ev[ne, 0] = b
                        ev[ne, 1] = (b * h + ti) * w + tj
                        ev[ne, 2] = (b * h + oi) * w + oj
                        ev[ne, 3] = vi
                        ev[ne, 4] = vj
                        ev[ne, 5] = horiz
                        ev[ne, 6] = dirn
                        ev[ne, 7] = pal
                        ev[ne, 8] = pac
                        ev[ne, 9] = t
                        ne += 1
                        break
    return ev[:ne]


@njit(cache=True)
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


@njit(cache=True)
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
        dirn = ev[e, 6]
        pac = ev[e, 8]
        t = ev[e, 9]
        far = t >= 0.5
        if far:
            tgt, src, s = po, pt, t - 0.5
        else:
            tgt, src, s = pt, po, 0.5 - t
        ds = 0.0
        for c in range(nc):
            g = grad[tgt, c]
            gcolor[src, c] += s * g
            gcolor[tgt, c] -= s * g
            ds += g * (color[src, c] - color[tgt, c])
        dt = ds if far else -ds
        if dt == 0.0:
            continue
        xi, yi, wi = _screen(pos, b, vi, h, w)
        xj, yj, wj = _screen(pos, b, vj, h, w)
        if horiz:
            ai, ci, aj, cj = xi, yi, xj, yj
        else:
            ai, ci, aj, cj = yi, xi, yj, xj
        r = (pac - ci) / (cj - ci)
        g_ai = dt * dirn * (1.0 - r)
        g_aj = dt * dirn * r
        g_ci = dt * dirn * (aj - ai) * (r - 1.0) / (cj - ci)
        g_cj = -dt * dirn * (aj - ai) * r / (cj - ci)
        if horiz:
            gxi, gyi, gxj, gyj = g_ai, g_ci, g_aj, g_cj
        else:
            gxi, gyi, gxj, gyj = g_ci, g_ai, g_cj, g_aj
        for v, gx, gy, vw in ((vi, gxi, gyi, wi), (vj, gxj, gyj, wj)):
            sxw = 0.5 * w / vw
            syw = 0.5 * h / vw
            gpos[b, v, 0] += gx * sxw
            gpos[b, v, 1] += gy * syw
            gpos[b, v, 3] -= (gx * sxw * pos[b, v, 0] + gy * syw * pos[b, v, 1]) / vw
