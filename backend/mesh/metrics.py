"""Mesh comparison metrics: Chamfer L1/L2, Hausdorff, F-score, normal consistency, volumetric IoU.

Definitions (the numpy-only parts live in `backend/mesh/meshmath.py`, which the add-on's
`blender_addon/compare_math.py` imports too, so the two agree within sampling noise):

- A is the reference, B the compared mesh. `diag` is the diagonal of A's bounding box.
- Each surface is sampled with `sample_surface(v, f, n, seed)`: area-weighted triangle choice by
  inverse CDF of `default_rng(seed).random(n)`, then uniform barycentrics (sqrt trick), seed 0.
- Distances are point-to-surface and exact: d_ab = distance from A's samples to B's triangles,
  d_ba = from B's samples to A's triangles.
- chamfer_l1 = (mean d_ab + mean d_ba) / 2, chamfer_l2 = (mean d_ab^2 + mean d_ba^2) / 2, in scene
  units (squared for L2); the `_norm` variants divide by diag (diag^2 for L2).
- hausdorff = max(max d_ab, max d_ba) over the samples.
- precision = share of d_ba < t, recall = share of d_ab < t, fscore = 2PR / (P + R), with
  t = fscore_threshold * diag (default 1 % of the diagonal).
- normal_consistency = mean over both directions of |n_sample . n_nearest_triangle|.
- iou: both meshes closed (every edge, after welding equal positions, has exactly two faces);
  occupancy on a res^3 grid of cell centres over the union bounding box by scan-line parity
  along z; otherwise None with a note.
- outer (`--outer`): A's triangles buried inside its own solid (`backend/mesh/outer_surface.py`) are left out
  of the samples, distances and normals (and of the alignment); diag stays that of all of A, the IoU is of all
  of A (the solid is the same); the report adds `reference_outer` and `buried_area_fraction` (area share).

`chamfer(a_pts, b_pts, diag)` is the point-set variant (nearest sample, not nearest surface) for
point clouds and quick checks in tests and benchmarks.
"""
from __future__ import annotations

from pathlib import Path
import numpy as np

from backend.mesh import meshmath
from backend.mesh.distance import point_to_surface, sample_surface
from backend.mesh.meshmath import DEFAULT_SAMPLES, IOU_RESOLUTION, distance_stats
from backend.mesh.meshmath import bbox_diagonal, is_closed  # noqa: F401 - re-exported for bench and tests
from backend.runtime.errors import JobError


def chamfer(a_pts: np.ndarray, b_pts: np.ndarray, diag: float, fscore_threshold: float = 0.01) -> dict:
    """Point-set Chamfer/Hausdorff/F-score between two point sets (nearest point, KD-tree)."""
    from scipy.spatial import cKDTree

    a_pts = np.asarray(a_pts, dtype=np.float64)
    b_pts = np.asarray(b_pts, dtype=np.float64)
    d_ab = cKDTree(b_pts).query(a_pts, workers=-1)[0]
    d_ba = cKDTree(a_pts).query(b_pts, workers=-1)[0]
    return distance_stats(d_ab, d_ba, diag, fscore_threshold)


def check_mesh(v: np.ndarray, f: np.ndarray, name: str) -> None:
    """Raise JobError for an empty mesh or a point cloud."""
    if len(v) == 0:
        raise JobError(f"{name} is empty (no vertices)", "pick a mesh with geometry")
    if len(f) == 0:
        raise JobError(f"{name} has vertices but no faces: it is a point cloud",
                       "surface metrics need faces; mesh the points first (e.g. Poisson reconstruction)")


def reference_outer(va: np.ndarray, fa: np.ndarray) -> tuple[np.ndarray, float]:
    """The reference's outer-surface triangles and its buried area share; JobError when nothing is outside."""
    from backend.mesh.outer_surface import outer_faces

    outer, fraction = outer_faces(va, fa)
    if len(outer) == 0:
        raise JobError("the reference mesh has no outer surface", "check that it is a closed or nearly closed mesh")
    return outer, fraction


def compare_meshes(va: np.ndarray, fa: np.ndarray, vb: np.ndarray, fb: np.ndarray,
                   fscore_threshold: float = 0.01, n_samples: int = DEFAULT_SAMPLES, seed: int = 0,
                   iou_resolution: int = IOU_RESOLUTION, outer: bool = False) -> dict:
    """All metrics between reference (va, fa) and compared (vb, fb) triangle meshes; `outer`: against the
    reference's outer surface only (its parts buried in its own solid left out; IoU still of its whole solid)."""
    va, vb = np.asarray(va, dtype=np.float64), np.asarray(vb, dtype=np.float64)
    fa, fb = np.asarray(fa, dtype=np.int64), np.asarray(fb, dtype=np.int64)
    check_mesh(va, fa, "the reference mesh")
    check_mesh(vb, fb, "the compared mesh")
    seen, fraction = reference_outer(va, fa) if outer else (fa, None)
    return scored(va, fa, seen, fraction, vb, fb, fscore_threshold, n_samples, seed, iou_resolution)


def scored(va: np.ndarray, fa: np.ndarray, seen: np.ndarray, fraction: float | None, vb: np.ndarray, fb: np.ndarray,
           fscore_threshold: float, n_samples: int, seed: int, iou_resolution: int) -> dict:
    """The metrics against the reference triangles `seen` (all of `fa`, or its outer surface when `fraction`, the
    buried area share, is given); the IoU of all of `fa`."""
    out = meshmath.surface_metrics(va, seen, vb, fb, lambda p: point_to_surface(p, va, seen),
                                   lambda p: point_to_surface(p, vb, fb), fscore_threshold, n_samples, seed,
                                   iou_resolution, sample_surface, solid_a=fa)
    if fraction is not None:
        out.update(reference_outer=True, buried_area_fraction=fraction)
    return out


def outer_metrics(va: np.ndarray, fa: np.ndarray, vb: np.ndarray, fb: np.ndarray,
                  n_samples: int = DEFAULT_SAMPLES, seed: int = 0) -> dict:
    """Chamfer L1 (over the whole reference's bbox diagonal) and normal consistency against the reference's outer
    surface only (`backend.mesh.outer_surface`: its parts buried in its own solid left out), with their area share
    (no IoU: cheaper than `compare_meshes(..., outer=True)`)."""
    va, vb = np.asarray(va, dtype=np.float64), np.asarray(vb, dtype=np.float64)
    fa, fb = np.asarray(fa, dtype=np.int64), np.asarray(fb, dtype=np.int64)
    check_mesh(va, fa, "the reference mesh")
    check_mesh(vb, fb, "the compared mesh")
    outer, fraction = reference_outer(va, fa)
    pa, ia = sample_surface(va, outer, n_samples, seed)
    pb, ib = sample_surface(vb, fb, n_samples, seed)
    d_ab, near_b = point_to_surface(pa, vb, fb)[:2]
    d_ba, near_a = point_to_surface(pb, va, outer)[:2]
    out = distance_stats(d_ab, d_ba, bbox_diagonal(va))
    nc_ab = np.abs(np.sum(meshmath.face_normals(va, outer[ia]) * meshmath.face_normals(vb, fb[near_b]), axis=1)).mean()
    nc_ba = np.abs(np.sum(meshmath.face_normals(vb, fb[ib]) * meshmath.face_normals(va, outer[near_a]), axis=1)).mean()
    out["normal_consistency"] = float(0.5 * (nc_ab + nc_ba))
    out["buried_area_fraction"] = fraction
    return out


def load_mesh(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and triangles of a mesh file (OBJ, PLY, STL, OFF, GLB...), scenes concatenated."""
    import trimesh

    path = Path(path)
    if not path.is_file():
        raise JobError(f"mesh file not found: {path}", "check the path")
    try:
        loaded = trimesh.load(str(path), process=False)
    except Exception as exc:  # trimesh raises many types for unreadable files
        raise JobError(f"cannot read {path.name}: {exc}", "use OBJ, PLY, STL, OFF or glTF") from exc
    if isinstance(loaded, trimesh.Scene):
        geoms = list(loaded.dump()) if loaded.geometry else []
        meshes = [g for g in geoms if isinstance(g, trimesh.Trimesh)]
        if not meshes:
            clouds = [g for g in geoms if hasattr(g, "vertices")]
            v = np.concatenate([g.vertices for g in clouds]) if clouds else np.zeros((0, 3))
            return np.asarray(v, dtype=np.float64), np.zeros((0, 3), dtype=np.int64)
        loaded = trimesh.util.concatenate(meshes)
    v = np.asarray(getattr(loaded, "vertices", np.zeros((0, 3))), dtype=np.float64)
    f = np.asarray(getattr(loaded, "faces", np.zeros((0, 3))), dtype=np.int64).reshape(-1, 3)
    return v, f


def compare_files(a_path: str | Path, b_path: str | Path, align: bool = False, fscore_threshold: float = 0.01,
                  n_samples: int = DEFAULT_SAMPLES, scale: bool = False, seed: int = 0, outer: bool = False) -> dict:
    """Metrics between the reference mesh file `a_path` and the compared one `b_path` (prints nothing); `outer`:
    aligned to and scored against the reference's outer surface only (see `compare_meshes`)."""
    va, fa = load_mesh(a_path)
    vb, fb = load_mesh(b_path)
    check_mesh(va, fa, f"reference {Path(a_path).name}")
    check_mesh(vb, fb, f"compared {Path(b_path).name}")
    seen, fraction = reference_outer(va, fa) if outer else (fa, None)
    transform = np.eye(4)
    if align:
        from backend.mesh.align import align_meshes

        transform = align_meshes(vb, fb, va, seen, scale=scale, seed=seed)
        vb = vb @ transform[:3, :3].T + transform[:3, 3]
    out = scored(va, fa, seen, fraction, vb, fb, fscore_threshold, n_samples, seed, IOU_RESOLUTION)
    out.update({"reference": str(a_path), "compared": str(b_path), "aligned": bool(align),
                "transform": transform.tolist()})
    return out



def genus(vertices: np.ndarray, faces: np.ndarray) -> int:
    """Genus of a triangle mesh (vertices welded by position): per connected component (2 - V + E - F - b) / 2
    from its Euler characteristic and b boundary loops, summed over the components."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    if len(faces) == 0:
        return 0
    _, weld = np.unique(np.asarray(vertices, dtype=np.float64), axis=0, return_inverse=True)
    f = weld.reshape(-1)[faces]
    used, f = np.unique(f, return_inverse=True)
    f = f.reshape(-1, 3)
    nv = len(used)
    half = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    edges, uses = np.unique(half, axis=0, return_counts=True)
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(nv, nv))
    n_comp, comp = connected_components(graph, directed=False)
    v_count = np.bincount(comp, minlength=n_comp)
    e_count = np.bincount(comp[edges[:, 0]], minlength=n_comp)
    f_count = np.bincount(comp[f[:, 0]], minlength=n_comp)
    border = edges[uses == 1]
    loops = np.zeros(n_comp, dtype=np.int64)
    if len(border):
        bv, bidx = np.unique(border, return_inverse=True)
        bgraph = coo_matrix((np.ones(len(border)), (bidx.reshape(-1, 2)[:, 0], bidx.reshape(-1, 2)[:, 1])),
                            shape=(len(bv), len(bv)))
        n_loops, loop_of = connected_components(bgraph, directed=False)
        first = np.zeros(n_loops, dtype=np.int64)
        first[loop_of] = bv
        loops = np.bincount(comp[first], minlength=n_comp)
    chi = v_count - e_count + f_count
    return int(np.sum((2 - chi - loops) // 2))
