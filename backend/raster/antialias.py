"""Analytic silhouette antialiasing with nvdiffrast's semantics, in differentiable torch.

The rule (nvdiffrast's `antialias`, as published; the numba kernels in cpu_kernels.py do the same):
1. Every pair of horizontally or vertically adjacent pixels with different ids is examined.
2. The front pixel is the covered one, or of two covered ones the one with smaller z/w (ties: the
   right / lower pixel). Its triangle is used, in pixel coordinates relative to the front pixel's
   centre; "along" is the pair's axis (x for a horizontal pair), "across" the other.
3. Of the triangle's edges whose ends lie on different sides of across = 0 (sign bits, so +0 counts
   as positive), the one crossing the axis farthest towards the other pixel is taken; t is that
   crossing's distance from the front pixel (1 = the other pixel's centre).
4. It counts only if it is a silhouette edge (no neighbour face on it, or the neighbour's third
   vertex lies on the same side of it as this triangle's: the same sign of the two signed areas),
   it is steep relative to the pair (|across extent| >= |along extent|), and -1/16 < t < 1 + 1/16;
   t is then clamped to [0, 1].
5. The pixels act as unit boxes cut by the edge: for t < 1/2 the front pixel takes (1/2 - t) of
   the other's colour, else the other pixel takes (t - 1/2) of the front's. All blends read the
   input colours and are summed.
6. Gradients: colour as the blend says; positions through t, with the edge's across extent
   d replaced by d + copysign(1e-3, d) in the derivative only, and none when t was clamped
   (t <= 0 or t >= 1).
"""
from __future__ import annotations

import torch

_I = [1, 2, 0]
_J = [2, 0, 1]
EDGE_EPS = 1e-3       # pixels added to an edge's across extent in the derivative of t
T_SLACK = 1.0 / 16.0  # crossings this far outside [0, 1] still count (clamped)


def _screen(p: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-space x, y of clip-space points (..., 4), pixel centres on integers."""
    w = p[..., 3]
    return (p[..., 0] / w + 1.0) * (0.5 * width) - 0.5, (p[..., 1] / w + 1.0) * (0.5 * height) - 0.5


def discontinuities(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flat indices of pixel pairs (a, b) with different ids (b right of or below a), and whether horizontal."""
    nb, h, w = ids.shape
    hb, hi, hj = (ids[:, :, 1:] != ids[:, :, :-1]).nonzero(as_tuple=True)
    vb, vi, vj = (ids[:, 1:, :] != ids[:, :-1, :]).nonzero(as_tuple=True)
    ha = (hb * h + hi) * w + hj
    va = (vb * h + vi) * w + vj
    pa = torch.cat([ha, va])
    pb = torch.cat([ha + 1, va + w])
    horiz = torch.cat([torch.ones_like(ha, dtype=torch.bool), torch.zeros_like(va, dtype=torch.bool)])
    return pa, pb, horiz


def _crossing(ai: torch.Tensor, ci: torch.Tensor, aj: torch.Tensor, cj: torch.Tensor,
              ds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """t where edge (a_i, c_i)-(a_j, c_j) crosses c = 0, times ds; and its across extent c_j - c_i."""
    den = cj - ci
    return ds * (ai * cj - ci * aj) / den, den


def _same_sign(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Sign bits equal (+0 is positive, -0 negative)."""
    return torch.signbit(a) == torch.signbit(b)


def _area(x0, y0, x1, y1, x2, y2) -> torch.Tensor:
    """Signed area (times two) of a screen triangle."""
    return (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)


def antialias(color: torch.Tensor, rast: torch.Tensor, pos: torch.Tensor, tri: torch.Tensor,
              opposite: torch.Tensor) -> torch.Tensor:
    """Antialiased color (B, H, W, C); `opposite` is topology.opposite_vertices(tri)."""
    nb, height, width, nc = color.shape
    nv = pos.shape[1]
    cflat = color.reshape(-1, nc)
    with torch.no_grad():
        ids = rast[..., 3].detach().to(torch.int64)
        pa, pb, horiz = discontinuities(ids)
        if pa.numel() == 0:
            return color
        idf = ids.reshape(-1)
        zf = rast[..., 2].detach().reshape(-1)
        ia, ib = idf[pa], idf[pb]
        a_front = (ia != 0) & ((ib == 0) | (zf[pa] < zf[pb]))
        pt = torch.where(a_front, pa, pb)
        po = torch.where(a_front, pb, pa)
        face = torch.where(a_front, ia, ib) - 1
        b = pt // (height * width)
        rem = pt - b * (height * width)
        row = (rem // width).to(pos.dtype)
        col = (rem % width).to(pos.dtype)
        ds = torch.where(a_front, 1.0, -1.0).to(pos.dtype)
        flatpos = pos.detach().reshape(-1, 4)
        tv = tri.long()[face]                                   # (N, 3)
        sx, sy = _screen(flatpos[b[:, None] * nv + tv], height, width)
        sx = sx - col[:, None]
        sy = sy - row[:, None]
        hz = horiz[:, None]
        al = torch.where(hz, sx, sy)
        ac = torch.where(hz, sy, sx)
        ai, aj, ci, cj = al[:, _I], al[:, _J], ac[:, _I], ac[:, _J]
        t, den = _crossing(ai, ci, aj, cj, ds[:, None])
        straddle = ~_same_sign(ci, cj) & (den != 0)
        t = torch.where(straddle, t, torch.full_like(t, -torch.inf))
        k = t.argmax(1)
        kk = k[:, None]
        tk = t.gather(1, kk).squeeze(1)
        steep = den.gather(1, kk).squeeze(1).abs() >= (aj - ai).gather(1, kk).squeeze(1).abs()
        ok = steep & (tk > -T_SLACK) & (tk < 1.0 + T_SLACK)
        opp = opposite[face].gather(1, kk).squeeze(1)           # (N,)
        ox, oy = _screen(flatpos[b * nv + opp.clamp(min=0)], height, width)
        ox = ox - col
        oy = oy - row
        bb = _area(sx[:, 0], sy[:, 0], sx[:, 1], sy[:, 1], sx[:, 2], sy[:, 2])
        xi, yi = sx.gather(1, (kk + 1) % 3).squeeze(1), sy.gather(1, (kk + 1) % 3).squeeze(1)
        xj, yj = sx.gather(1, (kk + 2) % 3).squeeze(1), sy.gather(1, (kk + 2) % 3).squeeze(1)
        wing = _area(ox, oy, xi, yi, xj, yj)
        ok &= (opp < 0) | _same_sign(wing, bb)
        sel = ok.nonzero().squeeze(1)
        if sel.numel() == 0:
            return color
        k, pt, po, b, tv, col, row, ds, hz = (x[sel] for x in (k, pt, po, b, tv, col, row, ds, horiz))
        t_val = tk[sel].clamp(0.0, 1.0)
        moving = (t_val > 0.0) & (t_val < 1.0)
        vi = tv.gather(1, ((k + 1) % 3)[:, None]).squeeze(1)
        vj = tv.gather(1, ((k + 2) % 3)[:, None]).squeeze(1)
    flat = pos.reshape(-1, 4)
    xi, yi = _screen(flat[b * nv + vi], height, width)
    xj, yj = _screen(flat[b * nv + vj], height, width)
    xi, xj, yi, yj = xi - col, xj - col, yi - row, yj - row
    ai, aj = torch.where(hz, xi, yi), torch.where(hz, xj, yj)
    ci, cj = torch.where(hz, yi, xi), torch.where(hz, yj, xj)
    num = ds * (ai * cj - ci * aj)
    den = cj - ci
    t_grad = num / (den + torch.where(den.detach() < 0, -EDGE_EPS, EDGE_EPS))
    t = torch.where(moving, t_grad - t_grad.detach() + t_val, t_val)
    far = (t_val >= 0.5)
    c_t, c_o = cflat[pt], cflat[po]
    wgt = torch.where(far, t - 0.5, 0.5 - t)[:, None]
    delta = wgt * torch.where(far[:, None], c_t - c_o, c_o - c_t)
    target = torch.where(far, po, pt)
    return cflat.index_add(0, target, delta.to(cflat.dtype)).reshape(nb, height, width, nc)
