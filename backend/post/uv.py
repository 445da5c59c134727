"""UV maps with xatlas, optionally with a seam on the symmetry plane and mirrored charts (OBJ files: runtime.result)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xatlas
from scipy.spatial import cKDTree

from backend.post.geometry import bbox_diagonal
from backend.post.symmetry import SymmetryPlane


@dataclass
class UVMesh:
    """Mesh split at UV seams: source_vertex[i] is the input vertex that vertex i came from."""

    vertices: np.ndarray  # (N, 3) float64
    faces: np.ndarray  # (F, 3) int64
    uv: np.ndarray  # (N, 2) float64 in [0, 1], v up (OBJ convention)
    source_vertex: np.ndarray  # (N,) int64; for vertices made by a plane cut, the nearer endpoint of the cut edge
    charts: int = 0  # number of UV charts (0: not counted)
    efficiency: float = 0.0  # packing efficiency: share of the [0, 1]^2 square covered by triangles
    method: str = "xatlas"  # "xatlas" or "fast" (the projection fallback)


def _pack_options(resolution: int, padding: int, keep_orientation: bool) -> xatlas.PackOptions:
    """xatlas packing: fixed padding in texels at the given resolution; charts never rotate when keep_orientation."""
    options = xatlas.PackOptions()
    options.resolution = resolution
    options.padding = padding
    options.rotate_charts = False
    options.rotate_charts_to_axis = not keep_orientation
    options.bilinear = True
    options.blockAlign = True  # 4x4-texel chart positions: faster packing for a few texels of waste
    return options


def uv_efficiency(uv: np.ndarray, faces: np.ndarray) -> float:
    """Share of the unit UV square covered by the triangles (packing efficiency)."""
    t = uv[faces]
    e1, e2 = t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]
    return float(0.5 * np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]).sum())


def _run_atlas(vertices: np.ndarray, faces: np.ndarray, uv: np.ndarray | None,
               resolution: int, padding: int, stats: dict | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """xatlas charting (or, given uv, packing of those charts): (vmapping, faces, uv with square texels)."""
    atlas = xatlas.Atlas()
    if uv is None:
        atlas.add_mesh(vertices.astype(np.float32), faces.astype(np.uint32))
    else:
        atlas.add_mesh(vertices.astype(np.float32), faces.astype(np.uint32), None, uv.astype(np.float32))
    chart_options = xatlas.ChartOptions()
    chart_options.use_input_mesh_uvs = uv is not None
    atlas.generate(chart_options, _pack_options(resolution, padding, uv is not None))
    vmapping, out_faces, out_uv = atlas.get_mesh(0)
    if stats is not None:
        stats["charts"] = int(atlas.chart_count)
    w, h = atlas.width, atlas.height
    out_uv = out_uv.astype(np.float64) * np.array([w, h]) / max(w, h)
    return vmapping.astype(np.int64), out_faces.astype(np.int64), out_uv


def cut_by_plane(vertices: np.ndarray, faces: np.ndarray, plane: SymmetryPlane,
                 eps: float = 1e-4) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split faces crossing the plane: (vertices, faces, positive-side flag per face, source vertex per vertex)."""
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    s = vertices @ plane.normal - plane.offset()
    s[np.abs(s) < eps * bbox_diagonal(vertices)] = 0.0
    fs = s[faces]
    crossing = (fs.max(1) > 0) & (fs.min(1) < 0)
    new_vertices: list[np.ndarray] = []
    new_source: list[int] = []
    edge_vertex: dict[tuple[int, int], int] = {}

    def cut_vertex(i: int, j: int) -> int:
        key = (min(i, j), max(i, j))
        if key not in edge_vertex:
            t = s[i] / (s[i] - s[j])
            point = vertices[i] + t * (vertices[j] - vertices[i])
            point -= (point @ plane.normal - plane.offset()) * plane.normal
            edge_vertex[key] = len(vertices) + len(new_vertices)
            new_vertices.append(point)
            new_source.append(i if t < 0.5 else j)
        return edge_vertex[key]

    out_faces: list[list[int]] = []
    out_side: list[bool] = []
    for face in faces[crossing]:
        polygons: dict[bool, list[int]] = {True: [], False: []}
        for k in range(3):
            i, j = int(face[k]), int(face[(k + 1) % 3])
            if s[i] >= 0:
                polygons[True].append(i)
            if s[i] <= 0:
                polygons[False].append(i)
            if s[i] * s[j] < 0:
                c = cut_vertex(i, j)
                polygons[True].append(c)
                polygons[False].append(c)
        for side, poly in polygons.items():
            for k in range(1, len(poly) - 1):
                out_faces.append([poly[0], poly[k], poly[k + 1]])
                out_side.append(side)
    keep = faces[~crossing]
    keep_side = fs[~crossing].sum(1) >= 0
    all_vertices = np.concatenate([vertices, np.array(new_vertices).reshape(-1, 3)])
    all_faces = np.concatenate([keep, np.array(out_faces, dtype=np.int64).reshape(-1, 3)])
    side = np.concatenate([keep_side, np.array(out_side, dtype=bool)])
    source = np.concatenate([np.arange(len(vertices)), np.array(new_source, dtype=np.int64)])
    return all_vertices, all_faces, side, source


def _submesh(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Faces reindexed over their used vertices, and the used vertex indices."""
    used, inverse = np.unique(faces, return_inverse=True)
    return inverse.reshape(faces.shape), used


def _mirror_partners(vp: np.ndarray, fp: np.ndarray, vn: np.ndarray, fn: np.ndarray,
                     plane: SymmetryPlane, tol: float) -> tuple[np.ndarray, np.ndarray] | None:
    """If the negative half is the exact mirror of the positive one: (partner vertex, partner face)."""
    if len(vp) != len(vn) or len(fp) != len(fn):
        return None
    dist, partner = cKDTree(vp).query(plane.reflect(vn), k=1)
    if dist.max() > tol or len(np.unique(partner)) != len(vn):
        return None
    lookup = {tuple(sorted(f)): k for k, f in enumerate(fp.tolist())}
    face_partner = [lookup.get(tuple(sorted(f))) for f in partner[fn].tolist()]
    if any(k is None for k in face_partner):
        return None
    return partner, np.array(face_partner, dtype=np.int64)


def _mirrored_layout(vp: np.ndarray, fp: np.ndarray, vn: np.ndarray, fn: np.ndarray,
                     partner: np.ndarray, face_partner: np.ndarray,
                     resolution: int, padding: int, stats: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chart the positive half, give the negative half the mirrored charts, pack both together."""
    vm, idx, uv = _run_atlas(vp, fp, None, resolution, padding)
    inverse_partner = np.empty(len(vp), dtype=np.int64)
    inverse_partner[partner] = np.arange(len(vn))
    neg_faces = np.empty_like(fn)
    pos_corners = vm[idx[face_partner]]
    for c in range(3):
        hit = pos_corners == partner[fn[:, c]][:, None]
        neg_faces[:, c] = idx[face_partner][np.arange(len(fn)), hit.argmax(1)] + len(vm)
    positions = np.concatenate([vp[vm], vn[inverse_partner[vm]]])
    source = np.concatenate([vm, inverse_partner[vm] + len(vp)])
    uvs = np.concatenate([uv, uv * np.array([-1.0, 1.0])])
    vm2, idx2, uv2 = _run_atlas(positions, np.concatenate([idx, neg_faces]), uvs, resolution, padding, stats)
    return source[vm2], idx2, uv2


def compute_uv(vertices: np.ndarray, faces: np.ndarray, seam_plane: SymmetryPlane | None = None,
               resolution: int = 1024, padding: int = 4) -> UVMesh:
    """UV map by xatlas; with seam_plane, a seam on the plane, and mirrored charts when the halves mirror."""
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    stats: dict = {}
    if seam_plane is None:
        vm, idx, uv = _run_atlas(vertices, faces, None, resolution, padding, stats)
        return UVMesh(vertices[vm], idx, uv, vm, stats["charts"], uv_efficiency(uv, idx))
    cut_v, cut_f, side, cut_source = cut_by_plane(vertices, faces, seam_plane)
    fp, used_p = _submesh(cut_v, cut_f[side])
    fn, used_n = _submesh(cut_v, cut_f[~side])
    vp, vn = cut_v[used_p], cut_v[used_n]
    half_vertex = np.concatenate([used_p, used_n])
    partners = _mirror_partners(vp, fp, vn, fn, seam_plane, 1e-5 * bbox_diagonal(vertices)) if len(fn) else None
    if partners is not None:
        local, idx, uv = _mirrored_layout(vp, fp, vn, fn, *partners, resolution, padding, stats)
    else:
        both = np.concatenate([vp, vn])
        local, idx, uv = _run_atlas(both, np.concatenate([fp, fn + len(vp)]), None, resolution, padding, stats)
    cut_index = half_vertex[local]
    return UVMesh(cut_v[cut_index], idx, uv, cut_source[cut_index], stats["charts"], uv_efficiency(uv, idx))

