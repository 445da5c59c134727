"""Antialiasing follows nvdiffrast's rule: both our kernels against a slow, direct loop over pixel pairs.

The reference below is written independently of backend/raster (per-pixel Python loops, edge crossings
by segment parameter, the blend in nvdiffrast's "alpha" form, position derivatives by central
differences of the crossing), so it needs no nvdiffrast and no GPU. The rule it states:
- each right/down neighbour pair with different ids; the front pixel is the covered one, or the one
  with smaller z/w (ties: the second pixel); its triangle is examined relative to its centre;
- of that triangle's edges straddling the pair's axis, the one crossing farthest towards the other
  pixel (distance t, 1 = other centre); it counts if it is a silhouette edge (boundary, or the
  neighbour face's third vertex on the same side as this face's), steep (across extent >= along
  extent), and -1/16 < t < 17/16, t clamped to [0, 1] (t leaves [0, 1] only where rast and pos
  disagree slightly, as with nvdiffrast's snapped coverage);
- alpha = ds (1/2 - t), ds = +1 when the front is the first pixel; the first pixel (alpha > 0) or
  the second receives alpha (c_second - c_first);
- d t / d pos uses the across extent enlarged by 1e-3 px; no position gradient when t was clamped.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from backend.raster import TorchRasterizer

RES = (40, 52)
EPS_EDGE = 1e-3


def bumpy_sphere(n_lat: int = 7, n_lon: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Small closed UV sphere with bumps (so some edges fold back), vertices (V, 3), faces (F, 3)."""
    th = np.linspace(0, math.pi, n_lat + 1)[1:-1]
    ph = np.linspace(0, 2 * math.pi, n_lon, endpoint=False)
    t, p = np.meshgrid(th, ph, indexing="ij")
    d = np.stack([np.sin(t) * np.cos(p), np.cos(t), np.sin(t) * np.sin(p)], -1).reshape(-1, 3)
    d = np.concatenate([[[0, 1, 0]], d, [[0, -1, 0]]])
    verts = d * (1 + 0.2 * np.sin(3 * d[:, :1] + 2 * d[:, 1:2]) * np.cos(4 * d[:, 2:]))
    ring = lambda i, j: 1 + i * n_lon + (j % n_lon)  # noqa: E731
    faces = []
    for j in range(n_lon):
        faces += [[0, ring(0, j + 1), ring(0, j)], [len(d) - 1, ring(n_lat - 2, j), ring(n_lat - 2, j + 1)]]
    for i in range(n_lat - 2):
        for j in range(n_lon):
            a, b, c, e = ring(i, j), ring(i, j + 1), ring(i + 1, j), ring(i + 1, j + 1)
            faces += [[a, b, e], [a, e, c]]
    return verts, np.array(faces)


def scene() -> tuple[torch.Tensor, torch.Tensor]:
    """Two views (float64 clip space) of a bumpy sphere and an open quad partly in front of it."""
    sv, sf = bumpy_sphere()
    quad = np.array([[-1.6, -0.3, 1.2], [0.2, -0.5, 1.0], [0.3, 0.9, 1.1], [-1.4, 0.7, 1.3]])
    verts = np.concatenate([sv, quad])
    n = len(sv)
    faces = np.concatenate([sf, [[n, n + 1, n + 2], [n, n + 2, n + 3]]])
    views = []
    for ang, dist in ((0.3, 4.2), (-0.8, 3.6)):
        c, s = math.cos(ang), math.sin(ang)
        rot = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
        cam = verts @ rot.T + [0.05, -0.1, dist]
        f = 1.9
        clip = np.stack([cam[:, 0] * f, cam[:, 1] * f * RES[1] / RES[0], (cam[:, 2] - 3.0) / 3.0 * cam[:, 2],
                         cam[:, 2]], 1)
        views.append(clip)
    return torch.tensor(np.stack(views)), torch.tensor(faces, dtype=torch.int32)


def neighbour_thirds(tri: np.ndarray) -> dict[tuple[int, int], list[tuple[int, int]]]:
    """Edge (min, max) -> [(face, third vertex)] over all faces having that edge."""
    out: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for f, (a, b, c) in enumerate(tri):
        for u, v, o in ((b, c, a), (c, a, b), (a, b, c)):
            out.setdefault((min(u, v), max(u, v)), []).append((f, int(o)))
    return out


def pixel_xy(p: np.ndarray, h: int, w: int) -> tuple[float, float]:
    """Pixel-space position of a clip-space vertex (pixel (row i, col j) centre at (j, i))."""
    return (p[0] / p[3] + 1) * w / 2 - 0.5, (p[1] / p[3] + 1) * h / 2 - 0.5


def smooth_t(pi: np.ndarray, pj: np.ndarray, ox: float, oy: float, horiz: bool, ds: float,
             h: int, w: int) -> float:
    """Crossing distance of edge (pi, pj) with the enlarged across extent (what the derivative uses)."""
    xi, yi = pixel_xy(pi, h, w)
    xj, yj = pixel_xy(pj, h, w)
    a1, c1, a2, c2 = (xi - ox, yi - oy, xj - ox, yj - oy) if horiz else (yi - oy, xi - ox, yj - oy, xj - ox)
    den = c2 - c1
    return ds * (a1 * c2 - c1 * a2) / (den + math.copysign(EPS_EDGE, den))


def reference(color: np.ndarray, rast: np.ndarray, pos: np.ndarray, tri: np.ndarray,
              gout: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    """Antialiased colour, d L / d colour, d L / d pos for L = sum(out * gout), and counts per branch."""
    nb, h, w, _ = color.shape
    out = color.copy()
    gcol = gout.copy()
    gpos = np.zeros_like(pos)
    thirds = neighbour_thirds(tri)
    stats = {"pairs": 0, "depth_decided": 0, "not_silhouette": 0, "not_steep": 0, "outside": 0,
             "clamped": 0, "front_blended": 0, "other_blended": 0}
    for b in range(nb):
        for y in range(h):
            for x in range(w):
                for dy_, dx_ in ((0, 1), (1, 0)):
                    y1, x1 = y + dy_, x + dx_
                    if y1 >= h or x1 >= w:
                        continue
                    id0, id1 = int(rast[b, y, x, 3]), int(rast[b, y1, x1, 3])
                    if id0 == id1:
                        continue
                    stats["pairs"] += 1
                    if id0 and id1:
                        stats["depth_decided"] += 1
                    first = id0 != 0 and (id1 == 0 or rast[b, y, x, 2] < rast[b, y1, x1, 2])
                    f, ds, oy, ox = (id0 - 1, 1.0, y, x) if first else (id1 - 1, -1.0, y1, x1)
                    horiz = dx_ == 1
                    pts = [pixel_xy(pos[b, v], h, w) for v in tri[f]]
                    rel = [(px - ox, py - oy) for px, py in pts]
                    ac = [(rx, ry) if horiz else (ry, rx) for rx, ry in rel]   # (along, across)
                    best, kb = -math.inf, -1
                    for k in range(3):
                        (a1, c1), (a2, c2) = ac[(k + 1) % 3], ac[(k + 2) % 3]
                        if np.signbit(c1) == np.signbit(c2) or c1 == c2:
                            continue
                        s = c1 / (c1 - c2)
                        t = ds * (a1 + s * (a2 - a1))
                        if t > best:
                            best, kb = t, k
                    if kb < 0:
                        continue
                    (a1, c1), (a2, c2) = ac[(kb + 1) % 3], ac[(kb + 2) % 3]
                    vi, vj, vk = tri[f, (kb + 1) % 3], tri[f, (kb + 2) % 3], tri[f, kb]
                    others = [o for g, o in thirds[(min(vi, vj), max(vi, vj))] if g != f]
                    if len(others) == 1:
                        (xi, yi), (xj, yj) = rel[(kb + 1) % 3], rel[(kb + 2) % 3]
                        qx, qy = pixel_xy(pos[b, others[0]], h, w)

                        def side(px: float, py: float) -> bool:
                            return np.signbit((xj - xi) * (py - yi) - (yj - yi) * (px - xi))
                        if side(*rel[kb]) != side(qx - ox, qy - oy):
                            stats["not_silhouette"] += 1
                            continue
                    if abs(c2 - c1) < abs(a2 - a1):
                        stats["not_steep"] += 1
                        continue
                    if not -1 / 16 < best < 1 + 1 / 16:
                        stats["outside"] += 1
                        continue
                    t = min(max(best, 0.0), 1.0)
                    alpha = ds * (0.5 - t)
                    p0, p1 = (b, y, x), (b, y1, x1)
                    tgt = p0 if alpha > 0 else p1
                    stats["front_blended" if (tgt == p0) == first else "other_blended"] += 1
                    diff = color[p1] - color[p0]
                    out[tgt] += alpha * diff
                    gcol[p1] += alpha * gout[tgt]
                    gcol[p0] -= alpha * gout[tgt]
                    if not 0.0 < t < 1.0:
                        stats["clamped"] += 1
                        continue
                    dl_dt = -ds * float(gout[tgt] @ diff)
                    for v in (vi, vj):
                        for c in (0, 1, 3):
                            hstep = 1e-6 * max(1.0, abs(pos[b, v, c]))
                            pp, pm = pos[b].copy(), pos[b].copy()
                            pp[v, c] += hstep
                            pm[v, c] -= hstep
                            tp = smooth_t(pp[vi], pp[vj], ox, oy, horiz, ds, h, w)
                            tm = smooth_t(pm[vi], pm[vj], ox, oy, horiz, ds, h, w)
                            gpos[b, v, c] += dl_dt * (tp - tm) / (2 * hstep)
    return out, gcol, gpos, stats


@pytest.fixture(scope="module")
def case() -> dict:
    """Scene, its rast, random colour and output weights, and the reference results.

    The positions given to antialias are jittered by about 0.1 px from those that made rast (as
    nvdiffrast's snapped coverage is), so crossings outside [0, 1] (clamped or ignored) occur too.
    """
    pos0, tri = scene()
    rast = TorchRasterizer("cpu", kernels="numba").rasterize(pos0, tri, RES)
    rng = np.random.default_rng(3)
    pos = pos0.clone()
    pos[..., :2] += torch.from_numpy(rng.normal(scale=0.015, size=pos[..., :2].shape))
    color = rng.uniform(size=(2, *RES, 3))
    color[..., 0] = (rast[..., 3] > 0).numpy()
    gout = rng.normal(size=color.shape)
    out, gcol, gpos, stats = reference(color, rast.numpy(), pos.numpy(), tri.numpy(), gout)
    return {"pos": pos, "tri": tri, "rast": rast, "color": color, "gout": gout, "out": out, "gcol": gcol,
            "gpos": gpos, "stats": stats}


def test_scene_exercises_every_branch(case: dict) -> None:
    s = case["stats"]
    blended = s["front_blended"] + s["other_blended"]
    assert s["pairs"] > 300 and blended > 100, s
    for key in ("depth_decided", "not_silhouette", "not_steep", "outside", "clamped", "front_blended",
                "other_blended"):
        assert s[key] > 0, (key, s)


@pytest.mark.parametrize("kernels", ["numba", "torch"])
def test_antialias_matches_direct_rule(case: dict, kernels: str) -> None:
    r = TorchRasterizer("cpu", kernels=kernels)
    pos = case["pos"].clone().requires_grad_()
    color = torch.tensor(case["color"], requires_grad=True)
    out = r.antialias(color, case["rast"], pos, case["tri"])
    (out * torch.tensor(case["gout"])).sum().backward()
    np.testing.assert_allclose(out.detach().numpy(), case["out"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(color.grad.numpy(), case["gcol"], rtol=0, atol=1e-10)
    g, want = pos.grad.numpy(), case["gpos"]
    assert np.abs(want).sum() > 10
    np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_float32_input_matches_direct_rule(case: dict) -> None:
    """The usual float32 path (torch kernels) agrees with the rule to float32 accuracy."""
    r = TorchRasterizer("cpu", kernels="torch")
    out = r.antialias(torch.tensor(case["color"], dtype=torch.float32), case["rast"].float(),
                      case["pos"].float(), case["tri"])
    diff = np.abs(out.numpy() - case["out"])
    assert np.quantile(diff, 0.999) < 1e-4, diff.max()
