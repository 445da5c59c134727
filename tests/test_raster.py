"""Our torch rasterizer against a brute-force per-pixel reference, plus antialias gradients."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.raster import RasterizerUnavailable, TorchRasterizer, get_rasterizer, nvdiffrast_available
from backend.raster.topology import BOUNDARY, opposite_vertices


def random_mesh(rng: np.random.Generator, n_tri: int = 40, n_vert: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Random clip-space soup: mostly in view, some triangles behind the camera or past far."""
    w = rng.uniform(0.5, 3.0, n_vert)
    ndc = rng.uniform(-1.2, 1.2, (n_vert, 3))
    ndc[:, 2] = rng.uniform(-0.9, 1.1, n_vert)
    pos = np.concatenate([ndc * w[:, None], w[:, None]], axis=1)
    pos[:3, 3] = -pos[:3, 3]
    tri = np.stack([rng.choice(n_vert, 3, replace=False) for _ in range(n_tri)]).astype(np.int32)
    return pos.astype(np.float32), tri


def reference_rasterize(pos: np.ndarray, tri: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Brute force: per pixel, test all (snapped) triangles; returns ids+1, exact (u, v, z/w) and tie margin."""
    p = pos.astype(np.float64)
    v = p[tri]                                         # (F, 3, 4)
    ok = (v[..., 3] > 0).all(1)
    wv = np.where(v[..., 3] > 0, v[..., 3], 1.0)
    sx = np.rint(v[..., 0] / wv * 8 * w) / 16 + (w - 1) / 2     # snapped to 1/16 px, as nvdiffrast
    sy = np.rint(v[..., 1] / wv * 8 * h) / 16 + (h - 1) / 2
    sz = v[..., 2] / wv
    ids = np.zeros((h, w), np.int64)
    bary = np.zeros((h, w, 3))
    margin = np.full((h, w), np.inf)
    area = (sx[:, 1] - sx[:, 0]) * (sy[:, 2] - sy[:, 0]) - (sx[:, 2] - sx[:, 0]) * (sy[:, 1] - sy[:, 0])
    s = np.where(area > 0, 1.0, -1.0)
    for i in range(h):
        for j in range(w):
            e = []
            tie = []
            for k in range(3):
                a_, b_ = (k + 1) % 3, (k + 2) % 3
                ea = (sy[:, a_] - sy[:, b_]) * s
                eb = (sx[:, b_] - sx[:, a_]) * s
                ec = (sx[:, a_] * sy[:, b_] - sx[:, b_] * sy[:, a_]) * s
                e.append(ea * j + eb * i + ec)
                tie.append((ea > 0) | ((ea == 0) & (eb > 0)))
            e = np.stack(e, 1)
            inside = ((e > 0) | ((e == 0) & np.stack(tie, 1))).all(1) & ok & (area != 0)
            lam = e / np.where(area != 0, np.abs(area), 1.0)[:, None]
            z = (lam * sz).sum(1)
            inside &= (z >= -1) & (z <= 1)
            if not inside.any():
                continue
            cand = np.nonzero(inside)[0]
            best = cand[np.argmin(z[cand])]
            ids[i, j] = best + 1
            zs = np.sort(z[cand])
            margin[i, j] = min(np.abs(e[inside]).min(), zs[1] - zs[0] if len(zs) > 1 else np.inf)
            ndc = np.array([(2 * j + 1) / w - 1.0, (2 * i + 1) / h - 1.0, 1.0])
            m = v[best][:, [0, 1, 3]].T                # columns: vertices (x, y, w)
            bvec = np.linalg.solve(m, ndc)
            bvec /= bvec.sum()
            bary[i, j] = [bvec[0], bvec[1], (bvec * v[best][:, 2]).sum() / (bvec * v[best][:, 3]).sum()]
    return ids, bary, margin


KERNELS = pytest.mark.parametrize("kernels", ["numba", "torch"])


@KERNELS
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rasterize_matches_reference(seed: int, kernels: str) -> None:
    rng = np.random.default_rng(seed)
    pos, tri = random_mesh(rng)
    h, w = 24, 32
    r = TorchRasterizer("cpu", kernels=kernels)
    rast = r.rasterize(torch.from_numpy(pos)[None], torch.from_numpy(tri), (h, w))[0].numpy()
    ids, bary, margin = reference_rasterize(pos, tri, h, w)
    got = rast[..., 3].astype(np.int64)
    mismatch = (got != ids) & (margin > 1e-6)
    assert not mismatch.any(), np.argwhere(mismatch)
    assert (ids > 0).sum() > 100
    same = (got == ids) & (ids > 0)
    np.testing.assert_allclose(rast[same][:, :3], bary[same], atol=1e-5)
    assert (rast[got == 0] == 0).all()


@KERNELS
def test_interpolate_matches_reference(kernels: str) -> None:
    rng = np.random.default_rng(5)
    pos, tri = random_mesh(rng)
    attr = rng.normal(size=(pos.shape[0], 3)).astype(np.float32)
    h, w = 20, 24
    r = TorchRasterizer("cpu", kernels=kernels)
    rast = r.rasterize(torch.from_numpy(pos)[None], torch.from_numpy(tri), (h, w))
    out = r.interpolate(torch.from_numpy(attr), rast, torch.from_numpy(tri))[0].numpy()
    ids, bary, _ = reference_rasterize(pos, tri, h, w)
    for i, j in zip(*np.nonzero(ids)):
        f = tri[ids[i, j] - 1]
        u, v = bary[i, j, :2]
        want = u * attr[f[0]] + v * attr[f[1]] + (1 - u - v) * attr[f[2]]
        np.testing.assert_allclose(out[i, j], want, atol=1e-4)
    assert (out[ids == 0] == 0).all()


@KERNELS
def test_interpolate_is_perspective_correct(kernels: str) -> None:
    """A square receding in depth: interpolated camera depth z satisfies 1/z = 1/4 - ndc_y/2."""
    cam = torch.tensor([[-1.0, -1.0, 2.0], [1.0, -1.0, 2.0], [1.0, 1.0, 6.0], [-1.0, 1.0, 6.0]], dtype=torch.float64)
    pos = torch.cat([cam[:, :2], cam[:, 2:] * 0.9, cam[:, 2:]], 1)[None]
    tri = torch.tensor([[0, 1, 2], [0, 2, 3]], dtype=torch.int32)
    r = TorchRasterizer("cpu", kernels=kernels)
    rast = r.rasterize(pos, tri, (32, 32))
    depth = r.interpolate(cam[:, 2:], rast, tri)[0, ..., 0]
    m = rast[0, ..., 3] > 0
    ndc_y = ((2 * torch.arange(32, dtype=torch.float64) + 1) / 32 - 1)[:, None].expand(32, 32)
    assert m.sum() > 100
    torch.testing.assert_close(depth[m], 1.0 / (0.25 - 0.5 * ndc_y[m]), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(rast[0, ..., 2][m], 0.9 * torch.ones_like(depth[m]), rtol=1e-9, atol=1e-9)


def test_depth_test_and_batch() -> None:
    near = [[-0.5, -0.5, 0.0, 1.0], [0.5, -0.5, 0.0, 1.0], [0.0, 0.5, 0.0, 1.0]]
    far = [[-0.9, -0.9, 0.5, 1.0], [0.9, -0.9, 0.5, 1.0], [0.0, 0.9, 0.5, 1.0]]
    pos = torch.tensor([far + near, near + far])
    tri = torch.tensor([[0, 1, 2], [3, 4, 5]], dtype=torch.int32)
    for vis in ("numba", "torch"):
        rast = TorchRasterizer("cpu", kernels=vis).rasterize(pos, tri, (16, 16))
        assert rast[0, 8, 8, 3] == 2 and rast[1, 8, 8, 3] == 1
        assert rast[0, 8, 8, 2] == pytest.approx(0.0) and rast[1, 1, 8, 3] == 2


@KERNELS
def test_behind_camera_and_empty(kernels: str) -> None:
    r = TorchRasterizer("cpu", kernels=kernels)
    tri = torch.tensor([[0, 1, 2]], dtype=torch.int32)
    pos = torch.tensor([[[-0.5, -0.5, 0.0, 1.0], [0.5, -0.5, 0.0, 1.0], [0.0, 0.5, 0.0, -1.0]]], requires_grad=True)
    rast = r.rasterize(pos, tri, (8, 8))
    assert (rast == 0).all()
    color = r.interpolate(torch.ones(3, 1), rast, tri)
    out = r.antialias(color, rast, pos, tri)
    out.sum().backward()
    assert (out == 0).all() and torch.isfinite(pos.grad).all()
    empty = r.rasterize(pos.detach(), torch.zeros((0, 3), dtype=torch.int32), (8, 8))
    assert empty.shape == (1, 8, 8, 4) and (empty == 0).all()


@KERNELS
def test_rast_gradients_match_finite_differences(kernels: str) -> None:
    pos = torch.tensor([[[-0.7, -0.6, 0.1, 1.2], [0.8, -0.5, 0.3, 2.0], [0.1, 0.7, -0.2, 1.5]]], dtype=torch.float64)
    tri = torch.tensor([[0, 1, 2]], dtype=torch.int32)
    r = TorchRasterizer("cpu", kernels=kernels)
    weight = torch.rand(1, 16, 16, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    def loss(p: torch.Tensor) -> torch.Tensor:
        return (r.rasterize(p, tri, (16, 16))[..., :3] * weight).sum()

    torch.autograd.gradcheck(loss, (pos.clone().requires_grad_(),), eps=1e-7, atol=1e-5)


def tri_scene(dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """One triangle in front of the camera with generic (non pixel-aligned) edges."""
    pos = torch.tensor([[[-0.63, -0.52, 0.1, 1.0], [0.58, -0.41, 0.2, 1.0], [-0.07, 0.66, 0.3, 1.0]]], dtype=dtype)
    return pos, torch.tensor([[0, 1, 2]], dtype=torch.int32)


@KERNELS
def test_antialias_gradient_matches_finite_differences(kernels: str) -> None:
    r = TorchRasterizer("cpu", kernels=kernels)
    pos, tri = tri_scene()
    weight = torch.rand(1, 24, 24, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(1))

    def loss(p: torch.Tensor) -> torch.Tensor:
        rast = r.rasterize(p, tri, (24, 24))
        mask = (rast[..., 3:] > 0).to(p.dtype)
        return (r.antialias(mask, rast, p, tri) * weight).sum()

    p = pos.clone().requires_grad_()
    loss(p).backward()
    assert p.grad[0, :, :2].abs().sum() > 1.0
    eps = 1e-5
    fd = torch.zeros_like(pos)
    for k in range(3):
        for c in range(2):
            d = torch.zeros_like(pos)
            d[0, k, c] = eps
            fd[0, k, c] = (loss(pos + d) - loss(pos - d)) / (2 * eps)
    torch.testing.assert_close(p.grad[..., :2], fd[..., :2], rtol=1e-4, atol=1e-6)


@KERNELS
def test_antialias_blends_partial_coverage(kernels: str) -> None:
    """A vertical edge at x = 10.3 px: pixel 10 is 80 % covered, pixel 11 takes none."""
    w = 24
    x_edge = (10.3 + 0.5) / w * 2 - 1
    pos = torch.tensor([[[-2.0, -2.0, 0.0, 1.0], [x_edge, -2.0, 0.0, 1.0], [x_edge, 4.0, 0.0, 1.0],
                         [-2.0, 4.0, 0.0, 1.0]]])
    tri = torch.tensor([[0, 1, 2], [0, 2, 3]], dtype=torch.int32)
    r = TorchRasterizer("cpu", kernels=kernels)
    rast = r.rasterize(pos, tri, (8, w))
    mask = (rast[..., 3:] > 0).float()
    out = r.antialias(mask, rast, pos, tri)[0, 4, :, 0]
    assert out[9] == pytest.approx(1.0) and out[10] == pytest.approx(0.8, abs=1e-5) and out[11] == 0


@KERNELS
def test_silhouette_optimisation_improves_iou(kernels: str) -> None:
    r = TorchRasterizer("cpu", kernels=kernels)
    res = (48, 48)
    target_pos, tri = tri_scene(torch.float32)
    with torch.no_grad():
        rast_t = r.rasterize(target_pos, tri, res)
        target = r.antialias((rast_t[..., 3:] > 0).float(), rast_t, target_pos, tri)
    pos = (target_pos + torch.tensor([[[0.15, 0.1, 0, 0], [-0.1, 0.15, 0, 0], [0.12, -0.2, 0, 0]]])).requires_grad_()
    opt = torch.optim.Adam([pos], lr=0.01)

    def iou() -> float:
        with torch.no_grad():
            m = r.rasterize(pos, tri, res)[..., 3] > 0
        t = rast_t[..., 3] > 0
        return float((m & t).sum() / (m | t).sum())

    start = iou()
    for _ in range(80):
        opt.zero_grad()
        rast = r.rasterize(pos, tri, res)
        img = r.antialias((rast[..., 3:] > 0).float(), rast, pos, tri)
        ((img - target) ** 2).mean().backward()
        opt.step()
    assert start < 0.75 and iou() > 0.95


def test_topology_opposite_vertices() -> None:
    tri = torch.tensor([[0, 1, 2], [2, 1, 3]], dtype=torch.int32)
    opp = opposite_vertices(tri)
    assert opp[0, 0] == 3 and opp[1, 2] == 0
    assert (opp[0, 1:] == BOUNDARY).all() and (opp[1, :2] == BOUNDARY).all()
    with_degenerate = opposite_vertices(torch.tensor([[0, 1, 2], [2, 1, 1], [2, 1, 3]], dtype=torch.int32))
    assert with_degenerate[0, 0] == 3 and with_degenerate[2, 2] == 0 and (with_degenerate[1] == BOUNDARY).all()


@KERNELS
def test_internal_edges_are_not_antialiased(kernels: str) -> None:
    """Two coplanar triangles sharing an edge: only the outer silhouette is blended."""
    pos = torch.tensor([[[-0.6, -0.6, 0.0, 1.0], [0.6, -0.55, 0.0, 1.0], [0.55, 0.6, 0.0, 1.0],
                         [-0.58, 0.62, 0.0, 1.0]]])
    tri = torch.tensor([[0, 1, 2], [0, 2, 3]], dtype=torch.int32)
    r = TorchRasterizer("cpu", kernels=kernels)
    rast = r.rasterize(pos, tri, (32, 32))
    mask = (rast[..., 3:] > 0).float()
    out = r.antialias(mask, rast, pos, tri)
    changed = (out != mask)[0, ..., 0]
    assert changed.any()
    interior = torch.zeros_like(changed)
    interior[8:24, 8:24] = True
    assert not (changed & interior).any()


def test_get_rasterizer_selection() -> None:
    assert get_rasterizer("auto", "cpu").name == "torch"
    assert get_rasterizer("torch", "cpu").device.type == "cpu"
    with pytest.raises(ValueError):
        get_rasterizer("opengl", "cpu")
    if not nvdiffrast_available():
        with pytest.raises(RasterizerUnavailable, match="diffrp-nvdiffrast"):
            get_rasterizer("nvdiffrast", "cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(RasterizerUnavailable):
        get_rasterizer("nvdiffrast", "cpu")


def test_numba_kernels_match_torch_kernels_with_gradients() -> None:
    """The hand-written numba gradients equal autograd through the torch implementation."""
    rng = np.random.default_rng(11)
    pos_np, tri_np = random_mesh(rng, n_tri=30, n_vert=40)
    pos_np[:3, 3] = np.abs(pos_np[:3, 3])
    tri = torch.from_numpy(tri_np)
    attr = torch.from_numpy(rng.normal(size=(40, 3)))
    weight = torch.from_numpy(rng.normal(size=(2, 20, 28, 3)))
    pos0 = torch.from_numpy(np.stack([pos_np, pos_np * 1.05])).to(torch.float64)
    results = []
    for kernels in ("numba", "torch"):
        r = TorchRasterizer("cpu", kernels=kernels)
        pos = pos0.clone().requires_grad_()
        a = attr.clone().requires_grad_()
        rast = r.rasterize(pos, tri, (20, 28))
        img = r.antialias(r.interpolate(a, rast, tri), rast, pos, tri)
        (img * weight).sum().backward()
        results.append((rast.detach(), img.detach(), pos.grad, a.grad))
    for x, y in zip(*results):
        torch.testing.assert_close(x, y, rtol=1e-9, atol=1e-9)
    assert results[0][2].abs().sum() > 0


@KERNELS
def test_vertices_snap_to_sixteenth_pixel(kernels: str) -> None:
    """As in nvdiffrast, coverage uses vertices snapped to 1/16 px; the left edge then owns the tie.

    The quad's left edge sits at x = 10.03 px: exactly it would leave pixel 10 out, snapped it lies
    on pixel 10's centre, and a left edge covers the pixels on it (top-left rule).
    """
    w = 24
    x_left = (10.03 + 0.5) / w * 2 - 1
    pos = torch.tensor([[[x_left, -2.0, 0.0, 1.0], [2.0, -2.0, 0.0, 1.0], [2.0, 4.0, 0.0, 1.0],
                         [x_left, 4.0, 0.0, 1.0]]], dtype=torch.float64)
    tri = torch.tensor([[0, 1, 2], [0, 2, 3]], dtype=torch.int32)
    rast = TorchRasterizer("cpu", kernels=kernels).rasterize(pos, tri, (8, w))
    row = rast[0, 4, :, 3] > 0
    assert not row[9] and row[10] and row[11]
