"""Which faces of a mesh are interior (solid on both sides), for Clean Up CAD Mesh's "Remove interior faces".

Two exact-enough criteria, each where it is sound (numpy only: the add-on imports this from the bundled backend):
- Internal walls of a merged assembly (faces meeting at non-manifold edges) are found by *cells*: around every
  edge the faces are sorted by angle, and the side of a face looking into a sector is joined to the side of the
  next face looking into the same sector. The connected face sides are the cells of space the mesh bounds; a
  face none of whose sides reaches the cell outside the part (found from its outermost face) is a wall. This
  needs no orientation (walls of an assembly have none that is right) and cannot see through a gap.
- Whole parts enclosed by other parts (a nested shell) are found by the generalized winding number of the other
  faces (`backend.mesh.winding`): the mean of w just off both sides of a face is 0.5 on any face of a closed
  oriented surface however deep the crevice, and 1.5 on a shell nested in another. Deleting part of a closed part
  would open it, so a part goes whole or not at all: its six extreme faces are tested first (any of them outside
  keeps it) and the rest only if they are all inside. Faces the cells show pointing inwards are counted
  flipped, and walls are left out of the sum, so the test does not depend on the input's orientation.
"""
from __future__ import annotations

import numpy as np

from . import winding

INTERIOR_THRESHOLD = 0.75


def edge_face_counts(edge: np.ndarray, n_edges: int) -> np.ndarray:
    """Faces on each edge, from (edge, face) incidence pairs (one per polygon corner)."""
    return np.bincount(np.asarray(edge, dtype=np.int64), minlength=n_edges)


def components(link: np.ndarray, node: np.ndarray, n_nodes: int) -> np.ndarray:
    """Label of each node, nodes sharing a link id being connected (hooking and pointer jumping)."""
    link = np.asarray(link, dtype=np.int64)
    node = np.asarray(node, dtype=np.int64)
    parent = np.arange(n_nodes)
    if len(link) == 0:
        return parent
    big = np.iinfo(np.int64).max
    while True:
        pn = parent[node]
        low = np.full(int(link.max()) + 1, big)
        np.minimum.at(low, link, pn)
        if np.array_equal(low[link], pn):
            break
        np.minimum.at(parent, pn, low[link])
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped
    return np.unique(parent, return_inverse=True)[1].reshape(-1)


def face_components(edge: np.ndarray, face: np.ndarray, n_faces: int) -> np.ndarray:
    """Component label of each face (faces sharing an edge are connected)."""
    return components(edge, face, n_faces)


def face_frames(v: np.ndarray, tris: np.ndarray, tri_face: np.ndarray, n_faces: int) -> tuple[np.ndarray, ...]:
    """Area-weighted normal (unit) and centroid of each face from its triangles."""
    a, b, c = v[tris[:, 0]], v[tris[:, 1]], v[tris[:, 2]]
    cross = np.cross(b - a, c - a)
    area = np.linalg.norm(cross, axis=1)
    normal = np.zeros((n_faces, 3))
    np.add.at(normal, tri_face, cross)
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-300)
    weight = np.bincount(tri_face, weights=area, minlength=n_faces)
    centre = np.zeros((n_faces, 3))
    np.add.at(centre, tri_face, (a + b + c) / 3.0 * area[:, None])
    flat = weight <= 0
    centre[~flat] /= weight[~flat, None]
    if flat.any():
        count = np.bincount(tri_face, minlength=n_faces)
        plain = np.zeros((n_faces, 3))
        np.add.at(plain, tri_face, (a + b + c) / 3.0)
        centre[flat] = plain[flat] / np.maximum(count[flat], 1)[:, None]
    return normal, centre


def cells(v: np.ndarray, edge_verts: np.ndarray, edge: np.ndarray, face: np.ndarray, normal: np.ndarray,
          centre: np.ndarray) -> np.ndarray:
    """Cell label of each face side, (n_faces, 2): [:, 0] the side the normal points to, [:, 1] the other."""
    n_faces = len(normal)
    edge = np.asarray(edge, dtype=np.int64)
    face = np.asarray(face, dtype=np.int64)
    a, b = v[edge_verts[edge, 0]], v[edge_verts[edge, 1]]
    d = b - a
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-300)
    u = centre[face] - a
    u -= (u * d).sum(axis=1, keepdims=True) * d
    u /= np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-300)
    order = np.argsort(edge, kind="stable")
    first = np.ones(len(order), dtype=bool)
    first[1:] = edge[order][1:] != edge[order][:-1]
    start = np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))
    ref = u[order[start]]
    angle = np.empty(len(edge))
    angle[order] = np.arctan2((np.cross(ref, u[order]) * d[order]).sum(axis=1), (ref * u[order]).sum(axis=1))
    order = np.lexsort((angle, edge))
    e_sorted = edge[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = e_sorted[1:] != e_sorted[:-1]
    start = np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))
    last = np.ones(len(order), dtype=bool)
    last[:-1] = first[1:]
    nxt = np.arange(1, len(order) + 1)
    nxt[last] = start[last]
    t = np.cross(d, u)
    plus = ((normal[face] * t).sum(axis=1) <= 0).astype(np.int64)
    here, there = order, order[nxt]
    side_a = 2 * face[here] + plus[here]
    side_b = 2 * face[there] + (1 - plus[there])
    link = np.arange(len(order))
    label = components(np.concatenate([link, link]), np.concatenate([side_a, side_b]), 2 * n_faces)
    return label.reshape(n_faces, 2)


def walls(v: np.ndarray, edge_verts: np.ndarray, edge: np.ndarray, face: np.ndarray, normal: np.ndarray,
          centre: np.ndarray, component: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(faces neither of whose sides lies in the cell outside their component, faces whose back side does while
    their front side does not: those point inwards)."""
    side = cells(v, edge_verts, edge, face, normal, centre)
    n_comp = int(component.max()) + 1
    order = np.lexsort((centre[:, 0], component))
    last = np.ones(len(order), dtype=bool)
    last[:-1] = component[order][1:] != component[order][:-1]
    outer = order[last]
    outside = np.full(n_comp, -1)
    outside[component[outer]] = side[outer, np.where(normal[outer, 0] > 0, 0, 1)]
    own = outside[component]
    return (side[:, 0] != own) & (side[:, 1] != own), (side[:, 0] != own) & (side[:, 1] == own)


def _extreme_faces(points: np.ndarray, component: np.ndarray) -> np.ndarray:
    """Per component, the faces whose points lie furthest along -x, +x, -y, +y, -z, +z (where it would poke out)."""
    picks = []
    for axis in range(3):
        order = np.lexsort((points[:, axis], component))
        comp = component[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = comp[1:] != comp[:-1]
        last = np.ones(len(order), dtype=bool)
        last[:-1] = comp[1:] != comp[:-1]
        picks += [order[first], order[last]]
    return np.unique(np.concatenate(picks))


def interior_faces(v: np.ndarray, tris: np.ndarray, tri_face: np.ndarray, edge_verts: np.ndarray,
                   edge: np.ndarray, face: np.ndarray, n_faces: int,
                   threshold: float = INTERIOR_THRESHOLD) -> np.ndarray:
    """Faces with solid on both sides (boolean per face): internal walls by cells, enclosed parts by winding number.

    tris/tri_face: the faces' triangles and the face of each; edge_verts: (n_edges, 2) vertex indices;
    edge/face: (edge, face) incidence pairs, one per polygon corner.
    """
    v = np.asarray(v, dtype=np.float64)
    tris = np.asarray(tris, dtype=np.int64).reshape(-1, 3)
    tri_face = np.asarray(tri_face, dtype=np.int64)
    edge_verts = np.asarray(edge_verts, dtype=np.int64).reshape(-1, 2)
    edge = np.asarray(edge, dtype=np.int64)
    face = np.asarray(face, dtype=np.int64)
    if n_faces == 0 or len(tris) == 0:
        return np.zeros(n_faces, dtype=bool)
    component = face_components(edge, face, n_faces)
    normal, centre = face_frames(v, tris, tri_face, n_faces)
    inner, inward = walls(v, edge_verts, edge, face, normal, centre, component)
    if component.max() == 0:
        return inner
    shell = ~inner
    keep_tri = shell[tri_face]
    oriented = np.where(inward[tri_face][:, None], tris[:, ::-1], tris)
    tree = winding.WindingTree(v, oriented[keep_tri], tri_face[keep_tri])
    probes = winding.probe_points(v, tris, tri_face, n_faces)
    w = np.full(n_faces, -np.inf)

    def evaluate(faces: np.ndarray) -> None:
        w[faces] = tree.winding(probes[faces], skip=faces)

    candidates = np.flatnonzero(shell)
    extremes = candidates[_extreme_faces(probes[candidates], component[candidates])]
    evaluate(extremes)
    enclosed = np.ones(int(component.max()) + 1, dtype=bool)
    np.logical_and.at(enclosed, component[extremes], w[extremes] >= threshold)
    evaluate(np.flatnonzero(shell & enclosed[component] & np.isneginf(w)))
    np.logical_and.at(enclosed, component[shell], w[shell] >= threshold)
    return inner | (shell & enclosed[component])


def without_opening(mask: np.ndarray, edge: np.ndarray, face: np.ndarray) -> np.ndarray:
    """The faces of `mask` whose deletion opens no edge: each edge-connected region of masked faces that would
    leave some edge with exactly one face (where it had more) is kept whole."""
    mask = np.asarray(mask, dtype=bool)
    edge = np.asarray(edge, dtype=np.int64)
    face = np.asarray(face, dtype=np.int64)
    if not mask.any():
        return mask.copy()
    n_edges = int(edge.max()) + 1
    total = np.bincount(edge, minlength=n_edges)
    gone = np.bincount(edge, weights=mask[face].astype(np.float64), minlength=n_edges).astype(np.int64)
    opens = (total >= 2) & (gone >= 1) & (total - gone == 1)
    inside = mask[face]
    region = face_components(edge[inside], face[inside], len(mask))
    bad = np.zeros(int(region.max()) + 1, dtype=bool)
    bad[region[face[inside & opens[edge]]]] = True
    return mask & ~bad[region]
