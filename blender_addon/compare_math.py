"""Mesh comparison maths for the add-on (numpy + mathutils.bvhtree; no bpy import).

Same definitions as the backend's `backend/mesh/metrics.py`: the numpy-only parts (sampling, distance
statistics, closedness, IoU, PCA + ICP alignment) are `backend/mesh/meshmath.py`, imported by both:

- A is the reference, B the compared mesh; `diag` is the diagonal of A's world bounding box.
- Each surface is sampled with `sample_surface(v, f, n, seed)`: area-weighted triangle choice by
  inverse CDF of `default_rng(seed).random(n)`, then uniform barycentrics (sqrt trick), seed 0.
- Distances are point-to-surface and exact (BVH `find_nearest`): d_ab from A's samples to B's
  triangles, d_ba from B's samples to A's triangles.
- chamfer_l1 = (mean d_ab + mean d_ba) / 2, chamfer_l2 = (mean d_ab^2 + mean d_ba^2) / 2 (scene
  units, squared for L2); `_norm` variants divide by diag (diag^2 for L2).
- hausdorff = max over both sample sets; precision = share of d_ba < t, recall = share of d_ab < t,
  fscore = 2PR / (P + R), t = fscore_threshold * diag.
- normal_consistency = mean over both directions of |n_sample . n_nearest_triangle|.
- iou only when both meshes are closed (every edge of the position-welded mesh has two faces),
  by scan-line parity along z on a res^3 grid over the union bounding box.
- outer: the reference's triangles buried inside its own solid (`backend/mesh/outer_surface.py`, generalized
  winding number) are left out of the samples, distances, normals, alignment and heatmap; diag and IoU stay
  those of the whole reference; `buried_area_fraction` is the area share left out.
- Alignment: PCA starts (centroid shift, four proper axis matchings), short point-to-surface ICP
  probes (Umeyama steps), the best one refined; optional uniform scale.
"""
from __future__ import annotations

import csv
import gc
import json
from contextlib import contextmanager
from itertools import chain, repeat
from pathlib import Path
from typing import Iterator

import numpy as np

try:
    from .backend.mesh import meshmath, outer_surface  # the installed add-on: backend/ is bundled inside it
except ImportError:
    from backend.mesh import meshmath, outer_surface  # the repository: backend/ beside blender_addon/

DEFAULT_SAMPLES = meshmath.DEFAULT_SAMPLES
IOU_RESOLUTION = meshmath.IOU_RESOLUTION
MeshInputError = meshmath.MeshInputError
apply = meshmath.apply
bbox_diagonal = meshmath.bbox_diagonal
is_closed = meshmath.is_closed
sample_surface = meshmath.sample_surface
_PILOT = 512
_CHUNK = 1 << 16
_COLORMAP = np.array([[0.05, 0.05, 0.6], [0.0, 0.45, 1.0], [0.1, 0.85, 0.3], [1.0, 0.85, 0.0], [0.9, 0.05, 0.05]])


def _mesh_positions(mesh) -> np.ndarray:
    """Vertex positions (n, 3) float64: the float32 `position` attribute read in one copy."""
    pos = mesh.attributes.get("position")
    if pos is not None and pos.data_type == "FLOAT_VECTOR" and pos.domain == "POINT":
        buf = np.empty(len(mesh.vertices) * 3, dtype=np.float32)
        pos.data.foreach_get("vector", buf)
    else:
        buf = np.empty(len(mesh.vertices) * 3, dtype=np.float64)
        mesh.vertices.foreach_get("co", buf)
    return buf.astype(np.float64).reshape(-1, 3)


def _mesh_triangles(mesh) -> np.ndarray:
    """Triangles (m, 3) int64 in loop-triangle order; read straight from the corners when all faces are triangles."""
    corners = mesh.attributes.get(".corner_vert")
    n_faces = len(mesh.polygons)
    if corners is not None and len(mesh.loops) == 3 * n_faces:
        start = np.empty(n_faces, dtype=np.int32)
        mesh.polygons.foreach_get("loop_start", start)
        if np.array_equal(start, np.arange(0, 3 * n_faces, 3, dtype=np.int32)):
            buf = np.empty(3 * n_faces, dtype=np.int32)
            corners.data.foreach_get("value", buf)
            return buf.astype(np.int64).reshape(-1, 3)
    mesh.calc_loop_triangles()
    buf = np.empty(len(mesh.loop_triangles) * 3, dtype=np.int32)
    mesh.loop_triangles.foreach_get("vertices", buf)
    return buf.astype(np.int64).reshape(-1, 3)


def mesh_arrays(mesh, matrix=None) -> tuple[np.ndarray, np.ndarray]:
    """World-space vertices (n, 3) float64 and triangles (m, 3) int64 of a bpy Mesh."""
    v = _mesh_positions(mesh)
    f = _mesh_triangles(mesh)
    if matrix is not None:
        m = np.array(matrix, dtype=np.float64)
        v = v @ m[:3, :3].T + m[:3, 3]
    return v, f


def check_mesh(v: np.ndarray, f: np.ndarray, name: str) -> None:
    """Raise MeshInputError for an empty mesh or a point cloud."""
    if len(v) == 0:
        raise MeshInputError(f"{name} is empty (no vertices)")
    if len(f) == 0:
        raise MeshInputError(f"{name} has no faces: it is a point cloud; surface metrics need faces")


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector (millions of new lists and tuples re-trigger it)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _spread_bits(x: np.ndarray) -> np.ndarray:
    """The low 10 bits of each integer moved to every third bit (Morton code helper)."""
    x = x & 0x3FF
    x = (x | (x << 16)) & 0x030000FF
    x = (x | (x << 8)) & 0x0300F00F
    x = (x | (x << 4)) & 0x030C30C3
    return (x | (x << 2)) & 0x09249249


def spatial_order(points: np.ndarray) -> np.ndarray:
    """Permutation putting points in Morton (Z-curve) order, so that consecutive BVH queries share cache."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    lo = p.min(axis=0)
    span = max(float(np.ptp(p, axis=0).max()), 1e-300)
    q = np.clip((p - lo) * (1023.0 / span), 0, 1023).astype(np.int64)
    key = _spread_bits(q[:, 0]) | (_spread_bits(q[:, 1]) << 1) | (_spread_bits(q[:, 2]) << 2)
    return np.argsort(key, kind="stable")


class SurfaceQuery:
    """Exact nearest-point queries on a triangle mesh through `mathutils.bvhtree`."""

    def __init__(self, v: np.ndarray, f: np.ndarray) -> None:
        """Build the BVH of world-space triangles."""
        from mathutils.bvhtree import BVHTree

        with gc_paused():
            self.bvh = BVHTree.FromPolygons(v.tolist(), f.tolist(), all_triangles=True)
        self.diag = max(bbox_diagonal(v), 1e-12)

    def start_radius(self, pilot: list) -> float:
        """First search radius: a margin over the 95th percentile of the unbounded distances of `pilot`."""
        d = np.fromiter((h[3] for h in map(self.bvh.find_nearest, pilot)), dtype=np.float64, count=len(pilot))
        return max(1.5 * float(np.percentile(d, 95)), 1e-6 * self.diag)

    def nearest(self, points: np.ndarray, want_location: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(distance, triangle index, closest point or None) of each point; growing search radius."""
        n = len(points)
        dist = np.empty(n)
        index = np.empty(n, dtype=np.int64)
        loc = np.empty((n, 3)) if want_location else None
        if n == 0:
            return dist, index, loc
        order = spatial_order(points)
        points = np.asarray(points, dtype=np.float64)[order]
        fn = self.bvh.find_nearest
        with gc_paused():
            radius = self.start_radius(points[::max(n // _PILOT, 1)].tolist())
            for lo in range(0, n, _CHUNK):
                plist = points[lo:lo + _CHUNK].tolist()
                hits = list(map(fn, plist, repeat(radius)))
                pending = [i for i, h in enumerate(hits) if h[0] is None]
                grown = radius
                for _ in range(12):
                    if not pending:
                        break
                    grown *= 8.0
                    for i, h in zip(pending, map(fn, [plist[i] for i in pending], repeat(grown))):
                        hits[i] = h
                    pending = [i for i in pending if hits[i][0] is None]
                for i in pending:
                    hits[i] = fn(plist[i])
                m = len(hits)
                rows = order[lo:lo + m]
                dist[rows] = np.fromiter((h[3] for h in hits), dtype=np.float64, count=m)
                index[rows] = np.fromiter((h[2] for h in hits), dtype=np.int64, count=m)
                if loc is not None:
                    loc[rows] = np.fromiter(chain.from_iterable(h[0] for h in hits), dtype=np.float64,
                                            count=3 * m).reshape(m, 3)
        return dist, index, loc


def reference_faces(va: np.ndarray, fa: np.ndarray, outer: bool = False) -> tuple[np.ndarray, float | None]:
    """The reference triangles to measure against: all of them (and None), or its outer surface and the share of
    its area buried inside its own solid, left out."""
    if not outer:
        return np.asarray(fa), None
    seen, fraction = outer_surface.outer_faces(va, fa)
    if len(seen) == 0:
        raise MeshInputError("the reference mesh has no outer surface (every face lies inside its own solid)")
    return seen, fraction


def compare_arrays(va: np.ndarray, fa: np.ndarray, vb: np.ndarray, fb: np.ndarray,
                   fscore_threshold: float = 0.01, n_samples: int = DEFAULT_SAMPLES, seed: int = 0,
                   iou_resolution: int = IOU_RESOLUTION, query_b: SurfaceQuery | None = None,
                   query_a: SurfaceQuery | None = None, outer: bool = False,
                   reference: tuple[np.ndarray, float | None] | None = None) -> dict:
    """All metrics between reference (va, fa) and compared (vb, fb) world-space triangle meshes; `outer`: against
    the reference's outer surface only (`reference`: `reference_faces`' answer when known, `query_a` built on it)."""
    check_mesh(va, fa, "the reference mesh")
    check_mesh(vb, fb, "the compared mesh")
    seen, fraction = reference if reference is not None else reference_faces(va, fa, outer)
    query_a = query_a or SurfaceQuery(va, seen)
    query_b = query_b or SurfaceQuery(vb, fb)
    out = meshmath.surface_metrics(va, seen, vb, fb, query_a.nearest, query_b.nearest, fscore_threshold,
                                   n_samples, seed, iou_resolution, solid_a=fa)
    if fraction is not None:
        out["buried_area_fraction"] = fraction
    return out


def align_arrays(v_mov: np.ndarray, f_mov: np.ndarray, v_ref: np.ndarray, f_ref: np.ndarray,
                 scale: bool = False, n_samples: int = 4000, seed: int = 0,
                 query_ref: SurfaceQuery | None = None) -> np.ndarray:
    """4x4 world transform that maps the moving mesh onto the reference mesh."""
    src = sample_surface(v_mov, f_mov, n_samples, seed)[0]
    dst = sample_surface(v_ref, f_ref, n_samples, seed)[0]
    query_ref = query_ref or SurfaceQuery(v_ref, f_ref)
    return meshmath.align_points(src, dst, lambda p: query_ref.nearest(p, want_location=True)[2], scale)


def colormap(values: np.ndarray, vmax: float) -> np.ndarray:
    """RGBA (n, 4) float32 colours: dark blue at 0 through green and yellow to red at vmax."""
    x = np.clip(values / vmax, 0.0, 1.0) if vmax > 0 else np.zeros(len(values))
    pos = x * (len(_COLORMAP) - 1)
    i = np.minimum(pos.astype(np.int64), len(_COLORMAP) - 2)
    w = (pos - i)[:, None]
    rgb = (1 - w) * _COLORMAP[i] + w * _COLORMAP[i + 1]
    return np.concatenate([rgb, np.ones((len(values), 1))], axis=1).astype(np.float32)


def heat_range(values: np.ndarray, percentile: float = 99.0) -> float:
    """Upper end of the heatmap legend: the given percentile of the distances (never 0)."""
    top = float(np.percentile(values, percentile)) if len(values) else 0.0
    return top if top > 0 else max(float(np.max(values)) if len(values) else 0.0, 1e-12)


def report_rows(report: dict) -> list[tuple[str, str]]:
    """(key, value) rows of a report, the transform flattened, for CSV."""
    rows = []
    for key, value in report.items():
        if key == "transform":
            value = " ".join(f"{x:.9g}" for row in value for x in row)
        rows.append((key, "" if value is None else str(value)))
    return rows


def write_report(path: Path, report: dict) -> Path:
    """Write the report as CSV (.csv) or JSON (anything else; .json added when there is no suffix)."""
    path = Path(path)
    if path.suffix == "":
        path = path.with_suffix(".json")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".csv":
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(("metric", "value"))
            writer.writerows(report_rows(report))
    else:
        path.write_text(json.dumps(report, indent=2))
    return path
