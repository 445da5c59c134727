"""Fast UV parametrisation (numpy, under a second for 300k faces): box-projection charts, shelf packing.

Each face goes to the axis direction (+-x, +-y, +-z) closest to its normal; connected faces with
the same direction (and, given a seam plane, on the same side of it) form a chart, projected
orthographically along that axis (stretch at most sqrt(3)), turned to its principal axes and
packed in shelves at one texel density. The fallback when xatlas runs out of time.
"""
from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from backend.post.symmetry import SymmetryPlane
from backend.post.uv import UVMesh, cut_by_plane, uv_efficiency

# In-plane axes (e1, e2) per projection direction, with e1 x e2 along the direction (charts never mirrored).
PLANE_AXES = np.array([[1, 2], [2, 1], [2, 0], [0, 2], [0, 1], [1, 0]])


def face_directions(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Index 0..5 of the direction +x, -x, +y, -y, +z, -z nearest to each face normal."""
    t = vertices[faces]
    n = np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])
    axis = np.abs(n).argmax(1)
    negative = n[np.arange(len(n)), axis] < 0
    return 2 * axis + negative


def face_charts(faces: np.ndarray, label: np.ndarray) -> tuple[int, np.ndarray]:
    """Connected components of faces that share an edge and a label: (count, chart of each face)."""
    count = len(faces)
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    owner = np.tile(np.arange(count), 3)
    key = edges[:, 0] * (int(faces.max()) + 1) + edges[:, 1]
    order = np.argsort(key, kind="stable")
    key, owner = key[order], owner[order]
    same = key[1:] == key[:-1]
    a, b = owner[:-1][same], owner[1:][same]
    keep = label[a] == label[b]
    graph = coo_matrix((np.ones(int(keep.sum())), (a[keep], b[keep])), shape=(count, count))
    return connected_components(graph, directed=False)


def chart_coordinates(vertices: np.ndarray, faces: np.ndarray, direction: np.ndarray,
                      chart: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-chart vertices: (source vertex per UV vertex, UV faces, projected 2D coordinates, chart per UV vertex)."""
    corner_chart = np.repeat(chart, 3)
    corner_vertex = faces.reshape(-1)
    key = corner_chart.astype(np.int64) * len(vertices) + corner_vertex
    unique, inverse = np.unique(key, return_inverse=True)
    source = unique % len(vertices)
    uv_chart = unique // len(vertices)
    chart_direction = np.zeros(int(chart.max()) + 1, dtype=np.int64)
    chart_direction[chart] = direction
    axes = PLANE_AXES[chart_direction[uv_chart]]
    p = vertices[source]
    xy = np.stack([p[np.arange(len(p)), axes[:, 0]], p[np.arange(len(p)), axes[:, 1]]], axis=1)
    return source, inverse.reshape(-1, 3), xy, uv_chart


def align_charts(xy: np.ndarray, uv_chart: np.ndarray, charts: int) -> np.ndarray:
    """Turn each chart to its principal axes (longest along u) so its bounding box wastes less."""
    weight = np.bincount(uv_chart, minlength=charts).astype(np.float64)
    mean = np.stack([np.bincount(uv_chart, xy[:, k], charts) for k in range(2)], 1) / np.maximum(weight, 1)[:, None]
    d = xy - mean[uv_chart]
    cxx = np.bincount(uv_chart, d[:, 0] ** 2, charts)
    cyy = np.bincount(uv_chart, d[:, 1] ** 2, charts)
    cxy = np.bincount(uv_chart, d[:, 0] * d[:, 1], charts)
    angle = 0.5 * np.arctan2(2 * cxy, cxx - cyy)
    c, s = np.cos(angle)[uv_chart], np.sin(angle)[uv_chart]
    return np.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1]], axis=1)


def shelf_pack(width: np.ndarray, height: np.ndarray, gap_fraction: float) -> tuple[np.ndarray, float]:
    """Rectangles in rows, tallest first: lower-left corners (n, 2) and the square's side (gap = side * fraction).

    The gap shrinks when the charts are too many for it (their gaps alone would fill a quarter of the square).
    """
    gap_fraction = min(gap_fraction, 0.5 / np.sqrt(len(width)))
    order = np.argsort(-height, kind="stable")
    w, h = width[order], height[order]
    side = max(float(np.sqrt((w * h).sum() / 0.75)), float(w.max()))
    while True:
        gap = side * gap_fraction
        if w.max() + 2 * gap <= side:
            corners, used = _rows(w + gap, h + gap, side - gap, gap)
            if used <= side:
                break
        side *= 1.03
    out = np.empty_like(corners)
    out[order] = corners
    return out, side


def _rows(w: np.ndarray, h: np.ndarray, row_width: float, gap: float) -> tuple[np.ndarray, float]:
    """Fill rows left to right (w, h include the gap): corners and the total height used."""
    corners = np.zeros((len(w), 2))
    cum = np.concatenate([[0.0], np.cumsum(w)])
    start, y = 0, gap
    while start < len(w):
        end = int(np.searchsorted(cum, cum[start] + row_width, side="right")) - 1
        end = max(end, start + 1)
        corners[start:end, 0] = gap + cum[start:end] - cum[start]
        corners[start:end, 1] = y
        y += h[start]
        start = end
    return corners, y


def fast_uv(vertices: np.ndarray, faces: np.ndarray, seam_plane: SymmetryPlane | None = None,
            resolution: int = 1024, padding: int = 4) -> UVMesh:
    """Box-projection charts packed into [0, 1]^2 with `padding` texels at `resolution` between charts."""
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    source_of = np.arange(len(vertices))
    side_label = np.zeros(len(faces), dtype=np.int64)
    if seam_plane is not None:
        vertices, faces, side, source_of = cut_by_plane(vertices, faces, seam_plane)
        side_label = side.astype(np.int64)
    direction = face_directions(vertices, faces)
    count, chart = face_charts(faces, direction + 6 * side_label)
    source, uv_faces, xy, uv_chart = chart_coordinates(vertices, faces, direction, chart)
    xy = align_charts(xy, uv_chart, count)
    lo = np.full((count, 2), np.inf)
    hi = np.full((count, 2), -np.inf)
    np.minimum.at(lo, uv_chart, xy)
    np.maximum.at(hi, uv_chart, xy)
    size = np.maximum(hi - lo, 1e-12)
    corner, square = shelf_pack(size[:, 0], size[:, 1], padding / resolution)
    uv = (xy - lo[uv_chart] + corner[uv_chart]) / square
    return UVMesh(vertices[source], uv_faces, uv, source_of[source], count, uv_efficiency(uv, uv_faces), "fast")
