"""Analytic silhouette antialiasing with nvdiffrast's semantics, in differentiable torch.

For every horizontally or vertically adjacent pixel pair whose triangle ids differ, the triangle in
front (the one of the covered pixel, or the nearer of the two) is examined: if one of its silhouette
edges (a boundary edge, or one whose neighbouring face folds back onto the same side in screen
space) crosses the segment between the two pixel centres at distance t from the front pixel, the
pixels are treated as unit boxes cut by that edge: for t > 1/2 the other pixel takes (t - 1/2) of
the front pixel's colour, otherwise the front pixel takes (1/2 - t) of the other's. All blends use
the input colours and are summed. Gradients reach pos through t, which moves silhouettes.
"""
from __future__ import annotations

import torch

_I = [1, 2, 0]
_J = [2, 0, 1]


def _screen(p: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pixel-space x, y (pixel centres on integers) and w of clip-space points (..., 4)."""
    w = p[..., 3]
    ws = torch.where(w > 0, w, torch.ones_like(w))
    return (p[..., 0] / ws + 1.0) * (0.5 * width) - 0.5, (p[..., 1] / ws + 1.0) * (0.5 * height) - 0.5, w


def discontinuities(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flat indices of pixel pairs (a, b) with different ids, and whether each pair is horizontal."""
    nb, h, w = ids.shape
    hb, hi, hj = (ids[:, :, 1:] != ids[:, :, :-1]).nonzero(as_tuple=True)
    vb, vi, vj = (ids[:, 1:, :] != ids[:, :-1, :]).nonzero(as_tuple=True)
    ha = (hb * h + hi) * w + hj
    va = (vb * h + vi) * w + vj
    pa = torch.cat([ha, va])
    pb = torch.cat([ha + 1, va + w])
    horiz = torch.cat([torch.ones_like(ha, dtype=torch.bool), torch.zeros_like(va, dtype=torch.bool)])
    return pa, pb, horiz


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
        a_front = (ib == 0) | ((ia != 0) & (zf[pa] < zf[pb]))
        pt = torch.where(a_front, pa, pb)
        po = torch.where(a_front, pb, pa)
        face = torch.where(a_front, ia, ib) - 1
        b = pt // (height * width)
        rem = pt - b * (height * width)
        row = (rem // width).to(pos.dtype)
        col = (rem % width).to(pos.dtype)
        dirn = torch.where(a_front, 1.0, -1.0).to(pos.dtype)
        pal = torch.where(horiz, col, row)                      # along the pair's axis
        pac = torch.where(horiz, row, col)                      # across it
        flatpos = pos.detach().reshape(-1, 4)
        tv = tri.long()[face]                                   # (N, 3)
        sx, sy, _ = _screen(flatpos[b[:, None] * nv + tv], height, width)
        hz = horiz[:, None]
        al = torch.where(hz, sx, sy)
        ac = torch.where(hz, sy, sx)
        opp = opposite[face]                                    # (N, 3)
        qx, qy, qw = _screen(flatpos[b[:, None] * nv + opp.clamp(min=0)], height, width)
        qal = torch.where(hz, qx, qy)
        qac = torch.where(hz, qy, qx)
        ai, aj, ci, cj = al[:, _I], al[:, _J], ac[:, _I], ac[:, _J]
        ex, ey = aj - ai, cj - ci

        def side(xa: torch.Tensor, xc: torch.Tensor) -> torch.Tensor:
            """Which side of each edge line a point lies on (sign)."""
            return ex * (xc - ci) - ey * (xa - ai)

        sil = (opp < 0) | (qw <= 0) | (side(al, ac) * side(qal, qac) > 0)
        p = pac[:, None]
        straddle = ((ci - p) * (cj - p) <= 0) & (ci != cj)
        ey_safe = torch.where(ey != 0, ey, torch.ones_like(ey))
        t = (ai + (p - ci) * ex / ey_safe - pal[:, None]) * dirn[:, None]
        ok = sil & straddle & (t >= 0) & (t <= 1)
        hit = ok.any(1)
        k = ok.to(torch.int8).argmax(1)
        sel = hit.nonzero().squeeze(1)
        if sel.numel() == 0:
            return color
        k, pt, po, b, tv, pal, pac, dirn, hz = (x[sel] for x in (k, pt, po, b, tv, pal, pac, dirn, hz))
        vi = tv.gather(1, torch.tensor(_I, device=tv.device)[k][:, None]).squeeze(1)
        vj = tv.gather(1, torch.tensor(_J, device=tv.device)[k][:, None]).squeeze(1)
    flat = pos.reshape(-1, 4)
    xi, yi, _ = _screen(flat[b * nv + vi], height, width)
    xj, yj, _ = _screen(flat[b * nv + vj], height, width)
    hz = hz[:, 0]
    ai, aj = torch.where(hz, xi, yi), torch.where(hz, xj, yj)
    ci, cj = torch.where(hz, yi, xi), torch.where(hz, yj, xj)
    t = (ai + (pac - ci) * (aj - ai) / (cj - ci) - pal) * dirn
    far = (t >= 0.5).detach()
    c_t, c_o = cflat[pt], cflat[po]
    wgt = torch.where(far, t - 0.5, 0.5 - t)[:, None]
    delta = wgt * torch.where(far[:, None], c_t - c_o, c_o - c_t)
    target = torch.where(far, po, pt)
    return cflat.index_add(0, target, delta.to(cflat.dtype)).reshape(nb, height, width, nc)
