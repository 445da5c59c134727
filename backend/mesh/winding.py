"""Fast generalized winding numbers of triangle soups (numpy only), for Clean Up's interior-face test.

Why: the generalized winding number w(q) = (1/4pi) * sum of the signed solid angles of the triangles seen from
q is 1 inside and 0 outside a closed, consistently oriented surface and degrades gracefully on open or
self-intersecting ones. Crossing a face changes w by exactly 1 and the face's own solid angle from two mirror
points p+/p- is exactly opposite, so the mean of w just off both sides of a face equals the winding number of
all *other* faces at a point on it (`face_winding`): 0.5 on any face of a closed oriented surface however deep
the crevice, 1.5 on a shell nested inside another (`backend.mesh.interior` decides with a threshold of 0.75).

Speed: a Barnes-Hut tree (Morton-ordered triangles, an implicit balanced binary tree over leaves) evaluates
far clusters by their first two moments (dipole and quadrupole terms of the solid-angle kernel) and near
leaves exactly (Van Oosterom-Strackee), so n probes cost O(n log n). Blender's Python has numpy but no
scipy/libigl, so the add-on imports this module from the bundled backend.
"""
from __future__ import annotations

import numpy as np

LEAF_SIZE = 8
BLOCK_SIZE = 16
BETA = 1.25
_CHUNK = 1 << 21
_COPLANAR = 1e-12


def _spread_bits(x: np.ndarray) -> np.ndarray:
    """Spread the low 10 bits of `x` to every third bit (one axis of a 30-bit Morton code)."""
    x = x.astype(np.uint64)
    x = (x | (x << np.uint64(16))) & np.uint64(0x030000FF)
    x = (x | (x << np.uint64(8))) & np.uint64(0x0300F00F)
    x = (x | (x << np.uint64(4))) & np.uint64(0x030C30C3)
    x = (x | (x << np.uint64(2))) & np.uint64(0x09249249)
    return x


def morton_order(points: np.ndarray) -> np.ndarray:
    """Indices that sort `points` (n, 3) along a Z-order curve over their bounding box (spatially coherent)."""
    p = np.asarray(points, dtype=np.float64)
    if len(p) == 0:
        return np.zeros(0, dtype=np.int64)
    lo = p.min(axis=0)
    span = float(np.max(p.max(axis=0) - lo)) or 1.0
    q = np.clip(((p - lo) / span * 1023.0).astype(np.int64), 0, 1023)
    code = _spread_bits(q[:, 0]) | (_spread_bits(q[:, 1]) << np.uint64(1)) | (_spread_bits(q[:, 2]) << np.uint64(2))
    return np.argsort(code, kind="stable")


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot product of two (n, 3) arrays."""
    return a[:, 0] * b[:, 0] + a[:, 1] * b[:, 1] + a[:, 2] * b[:, 2]


def solid_angles(q: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Signed solid angle of triangles (a, b, c) seen from points q, all (n, 3); positive behind the face.

    A point in a triangle's plane gets 0, the mean of the two one-sided limits (+-2pi inside the triangle).
    """
    a = a - q
    b = b - q
    c = c - q
    la = np.sqrt(_dot(a, a))
    lb = np.sqrt(_dot(b, b))
    lc = np.sqrt(_dot(c, c))
    det = (a[:, 0] * (b[:, 1] * c[:, 2] - b[:, 2] * c[:, 1]) + a[:, 1] * (b[:, 2] * c[:, 0] - b[:, 0] * c[:, 2])
           + a[:, 2] * (b[:, 0] * c[:, 1] - b[:, 1] * c[:, 0]))
    prod = la * lb * lc
    den = prod + _dot(a, b) * lc + _dot(a, c) * lb + _dot(b, c) * la
    omega = 2.0 * np.arctan2(det, den)
    omega[np.abs(det) <= _COPLANAR * prod] = 0.0
    return omega


def brute_force_winding(points: np.ndarray, v: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """Exact winding numbers at `points` (O(points x triangles)); the reference the tree is tested against."""
    v = np.asarray(v, dtype=np.float64)
    tris = np.asarray(tris, dtype=np.int64)
    out = np.zeros(len(points))
    for i, q in enumerate(np.asarray(points, dtype=np.float64)):
        qq = np.broadcast_to(q, (len(tris), 3))
        out[i] = solid_angles(qq, v[tris[:, 0]], v[tris[:, 1]], v[tris[:, 2]]).sum() / (4.0 * np.pi)
    return out


class WindingTree:
    """Barnes-Hut tree over a triangle soup answering winding-number queries, optionally skipping a group."""

    def __init__(self, v: np.ndarray, tris: np.ndarray, groups: np.ndarray | None = None,
                 leaf_size: int = LEAF_SIZE, beta: float = BETA) -> None:
        """Build the tree; `groups` (one int per triangle, e.g. its polygon) lets a query leave its own out."""
        v = np.asarray(v, dtype=np.float64)
        tris = np.asarray(tris, dtype=np.int64).reshape(-1, 3)
        groups = np.arange(len(tris)) if groups is None else np.asarray(groups, dtype=np.int64)
        self.beta = float(beta)
        self.leaf_size = leaf_size
        n = len(tris)
        a, b, c = v[tris[:, 0]], v[tris[:, 1]], v[tris[:, 2]]
        cen = (a + b + c) / 3.0
        order = morton_order(cen)
        n_leaves = max(1, -(-n // leaf_size))
        self.n_leaves = 1 << int(np.ceil(np.log2(n_leaves)))
        slots = self.n_leaves * leaf_size
        pad = slots - n
        fill = cen[order[-1]] if n else np.zeros(3)

        def padded(x: np.ndarray, value) -> np.ndarray:
            return np.concatenate([x[order], np.broadcast_to(value, (pad,) + x.shape[1:])])

        self.a, self.b, self.c = padded(a, fill), padded(b, fill), padded(c, fill)
        self.group = padded(groups, -2)
        cen = (self.a + self.b + self.c) / 3.0
        normal = 0.5 * np.cross(self.b - self.a, self.c - self.a)
        area = np.sqrt(_dot(normal, normal))
        self._build(cen, normal, area)

    def _build(self, cen: np.ndarray, normal: np.ndarray, area: np.ndarray) -> None:
        """Moments of every node (heap order, root 1, leaves n_leaves..2*n_leaves-1), bottom-up."""
        m, k = self.n_leaves, self.leaf_size
        total = 2 * m
        self.centre = np.zeros((total, 3))
        self.radius = np.zeros(total)
        self.dipole = np.zeros((total, 3))
        self.quad = np.zeros((total, 3, 3))
        area_sum = np.zeros(total)
        w = area.reshape(m, k)
        cen_l = cen.reshape(m, k, 3)
        wsum = w.sum(axis=1)
        mean = cen_l.mean(axis=1)
        safe = np.where(wsum > 0, wsum, 1.0)
        p = np.where((wsum > 0)[:, None], np.einsum("lk,lkd->ld", w, cen_l) / safe[:, None], mean)
        leaves = slice(m, 2 * m)
        self.centre[leaves] = p
        area_sum[leaves] = wsum
        nl = normal.reshape(m, k, 3)
        self.dipole[leaves] = nl.sum(axis=1)
        self.quad[leaves] = np.einsum("lki,lkj->lij", nl, cen_l - p[:, None, :])
        corners = np.stack([self.a, self.b, self.c], axis=1).reshape(m, k * 3, 3)
        self.radius[leaves] = np.sqrt(((corners - p[:, None, :]) ** 2).sum(axis=2)).max(axis=1)
        lo = m // 2
        while lo >= 1:
            parents = np.arange(lo, 2 * lo)
            left, right = 2 * parents, 2 * parents + 1
            wl, wr = area_sum[left], area_sum[right]
            ws = wl + wr
            safe = np.where(ws > 0, ws, 1.0)
            pc = np.where((ws > 0)[:, None],
                          (wl[:, None] * self.centre[left] + wr[:, None] * self.centre[right]) / safe[:, None],
                          0.5 * (self.centre[left] + self.centre[right]))
            self.centre[parents] = pc
            area_sum[parents] = ws
            self.dipole[parents] = self.dipole[left] + self.dipole[right]
            self.quad[parents] = (self.quad[left] + self.quad[right]
                                  + np.einsum("li,lj->lij", self.dipole[left], self.centre[left] - pc)
                                  + np.einsum("li,lj->lij", self.dipole[right], self.centre[right] - pc))
            dl = np.sqrt(((self.centre[left] - pc) ** 2).sum(axis=1)) + self.radius[left]
            dr = np.sqrt(((self.centre[right] - pc) ** 2).sum(axis=1)) + self.radius[right]
            self.radius[parents] = np.maximum(dl, dr)
            lo //= 2
        sym = 0.5 * (self.quad + self.quad.transpose(0, 2, 1))
        self._farm = np.ascontiguousarray(np.concatenate([
            self.centre.T, self.dipole.T, sym[:, 0, 0][None], sym[:, 0, 1][None], sym[:, 0, 2][None],
            sym[:, 1, 1][None], sym[:, 1, 2][None], sym[:, 2, 2][None],
            (self.quad[:, 0, 0] + self.quad[:, 1, 1] + self.quad[:, 2, 2])[None]]))
        self._tri = np.ascontiguousarray(np.concatenate([self.a.T, self.b.T, self.c.T]))

    def _pairs(self, bc: np.ndarray, br: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Traverse the tree for query blocks (centre, radius): (block, far node) and (block, near leaf) pairs."""
        blk = np.arange(len(bc))
        node = np.ones(len(bc), dtype=np.int64)
        far_b, far_n, near_b, near_n = [], [], [], []
        while len(blk):
            d = np.sqrt(((self.centre[node] - bc[blk]) ** 2).sum(axis=1))
            far = d > self.beta * self.radius[node] + br[blk]
            far_b.append(blk[far])
            far_n.append(node[far])
            rest = ~far
            leaf = rest & (node >= self.n_leaves)
            near_b.append(blk[leaf])
            near_n.append(node[leaf] - self.n_leaves)
            inner = rest & ~leaf
            blk = np.repeat(blk[inner], 2)
            node = np.repeat(2 * node[inner], 2) + np.tile([0, 1], int(inner.sum()))
        return (np.concatenate(far_b), np.concatenate(far_n), np.concatenate(near_b), np.concatenate(near_n))

    def _far(self, qx: np.ndarray, qy: np.ndarray, qz: np.ndarray, node: np.ndarray) -> np.ndarray:
        """Dipole + quadrupole approximation of the solid angle of each node's triangles seen from q."""
        f = self._farm[:, node]
        rx, ry, rz = f[0] - qx, f[1] - qy, f[2] - qz
        r2 = rx * rx + ry * ry + rz * rz
        inv3 = 1.0 / (r2 * np.sqrt(r2))
        rqr = (rx * (f[6] * rx + 2.0 * (f[7] * ry + f[8] * rz)) + ry * (f[9] * ry + 2.0 * f[10] * rz)
               + f[11] * rz * rz)
        return (rx * f[3] + ry * f[4] + rz * f[5] + f[12]) * inv3 - 3.0 * rqr * inv3 / r2

    def winding(self, points: np.ndarray, skip: np.ndarray | None = None) -> np.ndarray:
        """Winding number at each point, leaving out the triangles whose group equals skip[i] (-1: none)."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        n = len(pts)
        if n == 0:
            return np.zeros(0)
        skip = np.full(n, -1, dtype=np.int64) if skip is None else np.asarray(skip, dtype=np.int64)
        order = morton_order(pts)
        n_blocks = -(-n // BLOCK_SIZE)
        idx = np.concatenate([order, np.full(n_blocks * BLOCK_SIZE - n, -1, dtype=np.int64)])
        idx = idx.reshape(n_blocks, BLOCK_SIZE)
        valid = idx >= 0
        bp = np.where(valid[..., None], pts[np.maximum(idx, 0)], np.nan)
        bc = np.nanmean(bp, axis=1)
        br = np.nanmax(np.sqrt(((bp - bc[:, None, :]) ** 2).sum(axis=2)), axis=1)
        far_b, far_n, near_b, near_n = self._pairs(bc, br)
        q = np.ascontiguousarray(pts.T)
        out = np.zeros(n)
        self._accumulate_far(out, q, idx, far_b, far_n)
        self._accumulate_near(out, q, skip, idx, near_b, near_n)
        return out / (4.0 * np.pi)

    def _accumulate_far(self, out: np.ndarray, q: np.ndarray, idx: np.ndarray, fb: np.ndarray,
                        fn: np.ndarray) -> None:
        """Add the far-field terms of every (block, node) pair to each point of the block."""
        step = max(1, _CHUNK // BLOCK_SIZE)
        for s in range(0, len(fb), step):
            qi = idx[fb[s:s + step]].ravel()
            node = np.repeat(fn[s:s + step], BLOCK_SIZE)
            ok = qi >= 0
            qi, node = qi[ok], node[ok]
            out += np.bincount(qi, weights=self._far(q[0][qi], q[1][qi], q[2][qi], node), minlength=len(out))

    def _accumulate_near(self, out: np.ndarray, q: np.ndarray, skip: np.ndarray, idx: np.ndarray,
                         nb: np.ndarray, nl: np.ndarray) -> None:
        """Add the exact solid angles of every triangle of each near leaf, except the point's skipped group."""
        k = self.leaf_size
        step = max(1, _CHUNK // (BLOCK_SIZE * k))
        lane = np.arange(k)
        for s in range(0, len(nb), step):
            blocks, leaves = nb[s:s + step], nl[s:s + step]
            qi = np.broadcast_to(idx[blocks][:, :, None], (len(blocks), BLOCK_SIZE, k)).ravel()
            slot = np.broadcast_to((leaves * k)[:, None, None] + lane, (len(blocks), BLOCK_SIZE, k)).ravel()
            g = self.group[slot]
            ok = (qi >= 0) & (g != -2)
            ok[ok] = g[ok] != skip[qi[ok]]
            qi, slot = qi[ok], slot[ok]
            omega = _solid_angles_soa(q[0][qi], q[1][qi], q[2][qi], self._tri[:, slot])
            out += np.bincount(qi, weights=omega, minlength=len(out))


def _solid_angles_soa(qx: np.ndarray, qy: np.ndarray, qz: np.ndarray, t: np.ndarray) -> np.ndarray:
    """`solid_angles` on coordinate rows: t is (9, n) = a, b, c corner coordinates."""
    ax, ay, az = t[0] - qx, t[1] - qy, t[2] - qz
    bx, by, bz = t[3] - qx, t[4] - qy, t[5] - qz
    cx, cy, cz = t[6] - qx, t[7] - qy, t[8] - qz
    la = np.sqrt(ax * ax + ay * ay + az * az)
    lb = np.sqrt(bx * bx + by * by + bz * bz)
    lc = np.sqrt(cx * cx + cy * cy + cz * cz)
    det = ax * (by * cz - bz * cy) + ay * (bz * cx - bx * cz) + az * (bx * cy - by * cx)
    prod = la * lb * lc
    den = (prod + (ax * bx + ay * by + az * bz) * lc + (ax * cx + ay * cy + az * cz) * lb
           + (bx * cx + by * cy + bz * cz) * la)
    omega = 2.0 * np.arctan2(det, den)
    omega[np.abs(det) <= _COPLANAR * prod] = 0.0
    return omega


def probe_points(v: np.ndarray, tris: np.ndarray, tri_face: np.ndarray, n_faces: int) -> np.ndarray:
    """One point on each face: the centroid of its largest triangle (inside the face even if non-convex)."""
    v = np.asarray(v, dtype=np.float64)
    a, b, c = v[tris[:, 0]], v[tris[:, 1]], v[tris[:, 2]]
    area = np.linalg.norm(np.cross(b - a, c - a), axis=1)
    order = np.lexsort((area, tri_face))
    last = np.ones(len(order), dtype=bool)
    last[:-1] = tri_face[order][1:] != tri_face[order][:-1]
    best = order[last]
    probes = np.zeros((n_faces, 3))
    probes[tri_face[best]] = (a[best] + b[best] + c[best]) / 3.0
    return probes


def face_winding(v: np.ndarray, tris: np.ndarray, tri_face: np.ndarray, n_faces: int,
                 beta: float = BETA) -> np.ndarray:
    """Mean of the winding numbers just off both sides of each face (= the other faces' winding number there)."""
    tri_face = np.asarray(tri_face, dtype=np.int64)
    tree = WindingTree(v, tris, tri_face, beta=beta)
    return tree.winding(probe_points(v, tris, tri_face, n_faces), skip=np.arange(n_faces))
