"""Clean-up steps for dirty CAD/scan meshes: each takes a bmesh (or mesh) and returns what it changed."""
from __future__ import annotations

import math

import bmesh
import bpy
import numpy as np

try:
    from .backend.mesh import fairing, interior  # the installed add-on: backend/ is bundled inside it
except ImportError:
    from backend.mesh import fairing, interior  # the repository: backend/ beside blender_addon/

SYMMETRY_AXES = ("X", "-X", "Y", "-Y", "Z", "-Z")
FAIR_MAX_TRIANGLES = 20_000


def bm_size(bm: bmesh.types.BMesh) -> float:
    """Diagonal of the bmesh's bounding box (1.0 when empty or flat to a point)."""
    if not bm.verts:
        return 1.0
    co = np.array([v.co for v in bm.verts])
    d = float(np.linalg.norm(co.max(axis=0) - co.min(axis=0)))
    return d if d > 0 else 1.0


def merge_by_distance(bm: bmesh.types.BMesh, dist: float) -> dict:
    """Weld vertices closer than `dist`."""
    n = len(bm.verts)
    bmesh.ops.remove_doubles(bm, verts=list(bm.verts), dist=dist)
    return {"vertices_merged": n - len(bm.verts)}


def dissolve_degenerate(bm: bmesh.types.BMesh, dist: float) -> dict:
    """Collapse zero-length edges and zero-area faces; delete faces that stay area-less."""
    nf, ne = len(bm.faces), len(bm.edges)
    bmesh.ops.dissolve_degenerate(bm, dist=dist, edges=list(bm.edges))
    flat = [f for f in bm.faces if f.calc_area() <= dist * dist * 1e-3]
    if flat:
        bmesh.ops.delete(bm, geom=flat, context="FACES_ONLY")
    return {"faces_removed": nf - len(bm.faces), "edges_removed": ne - len(bm.edges)}


def part_sizes(bm: bmesh.types.BMesh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edge-connected part of each face, and per part its bounding-box diagonal and surface area (numpy)."""
    v, tris, tri_face, _, edge, face = topology_arrays(bm)
    part = interior.face_components(edge, face, len(bm.faces))
    n = int(part.max()) + 1 if len(part) else 0
    lo, hi = np.full((n, 3), np.inf), np.full((n, 3), -np.inf)
    owner = part[tri_face]
    for k in range(3):
        np.minimum.at(lo, owner, v[tris[:, k]])
        np.maximum.at(hi, owner, v[tris[:, k]])
    a, b, c = v[tris[:, 0]], v[tris[:, 1]], v[tris[:, 2]]
    area = np.bincount(owner, weights=0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1), minlength=n)
    return part, np.linalg.norm(np.where(np.isfinite(hi - lo), hi - lo, 0.0), axis=1), area


def _delete_parts(bm: bmesh.types.BMesh, part: np.ndarray, drop: np.ndarray) -> None:
    """Delete the faces of the parts flagged in `drop`."""
    bm.faces.ensure_lookup_table()
    doomed = [bm.faces[i] for i in np.flatnonzero(drop[part])]
    if doomed:
        bmesh.ops.delete(bm, geom=doomed, context="FACES")


def _delete_loose_wire(bm: bmesh.types.BMesh) -> tuple[int, int]:
    """Delete edges without faces and vertices without edges: (edges, vertices) removed."""
    edges = [e for e in bm.edges if not e.link_faces]
    if edges:
        bmesh.ops.delete(bm, geom=edges, context="EDGES")
    verts = [v for v in bm.verts if not v.link_edges]
    if verts:
        bmesh.ops.delete(bm, geom=verts, context="VERTS")
    return len(edges), len(verts)


def delete_loose(bm: bmesh.types.BMesh, min_size: float) -> dict:
    """Delete wire edges, lone vertices and face parts whose bounding-box diagonal is under `min_size`."""
    small = np.zeros(0, dtype=bool)
    if bm.faces:
        part, diagonal, _ = part_sizes(bm)
        small = diagonal < min_size
        _delete_parts(bm, part, small)
    edges, verts = _delete_loose_wire(bm)
    return {"small_parts_removed": int(small.sum()), "loose_edges_removed": edges, "loose_vertices_removed": verts}


def keep_largest(bm: bmesh.types.BMesh, n: int) -> dict:
    """Keep the `n` components with the largest surface area, delete the rest."""
    if not bm.faces:
        return {"parts_removed": 0}
    part, _, area = part_sizes(bm)
    if n <= 0 or len(area) <= n:
        return {"parts_removed": 0}
    drop = np.ones(len(area), dtype=bool)
    drop[np.argsort(-area, kind="stable")[:n]] = False
    _delete_parts(bm, part, drop)
    _delete_loose_wire(bm)
    return {"parts_removed": int(drop.sum())}


def fill_holes(bm: bmesh.types.BMesh, sides: int) -> dict:
    """Fill boundary loops of at most `sides` edges (0: every loop); large fills follow the surface around them."""
    out = bmesh.ops.holes_fill(bm, edges=[e for e in bm.edges if e.is_boundary], sides=sides)
    added = sum(_refine_and_fair(bm, f) for f in out["faces"] if f.is_valid and len(f.verts) > 4)
    return {"holes_filled": len(out["faces"]), "vertices_added": added}


def _refine_and_fair(bm: bmesh.types.BMesh, face: bmesh.types.BMFace) -> int:
    """Triangulate a fill polygon, split its triangles until they match the rim's edge length (centroid
    splits + edge flips) and fair the new vertices so the patch continues the surrounding surface."""
    rim = list(face.verts)
    edge_len = sum(e.calc_length() for e in face.edges) / len(face.edges)
    edge_len = max(edge_len, math.sqrt(face.calc_area() / (FAIR_MAX_TRIANGLES * 0.433)))
    target = 1.5 * 0.433 * edge_len * edge_len
    patch = dict.fromkeys(bmesh.ops.triangulate(bm, faces=[face], quad_method="BEAUTY",
                                                ngon_method="BEAUTY")["faces"])
    new_verts = []
    for _ in range(16):
        big = [f for f in patch if f.calc_area() > target]
        if not big:
            break
        poked = bmesh.ops.poke(bm, faces=big)
        new_verts += poked["verts"]
        patch = dict.fromkeys([f for f in patch if f.is_valid] + poked["faces"])
        inner = list(dict.fromkeys(e for f in patch for e in f.edges if all(g in patch for g in e.link_faces)))
        flipped = bmesh.ops.beautify_fill(bm, faces=list(patch), edges=inner)["geom"]
        patch = dict.fromkeys([f for f in patch if f.is_valid]
                              + [g for g in flipped if isinstance(g, bmesh.types.BMFace)])
    if new_verts:
        _fair(rim, new_verts)
    return len(new_verts)


def _fair(rim: list[bmesh.types.BMVert], free: list[bmesh.types.BMVert]) -> None:
    """Bi-Laplacian fairing of `free` with the rim and the ring of surface around it held fixed."""
    core = list(dict.fromkeys(free + rim))
    local = {v: i for i, v in enumerate(core)}
    for v in rim:
        for e in v.link_edges:
            local.setdefault(e.other_vert(v), len(local))
    verts = list(local)
    edges = {tuple(sorted((local[e.verts[0]], local[e.verts[1]]))) for v in core for e in v.link_edges}
    co = np.array([v.co for v in verts], dtype=np.float64)
    is_free = np.zeros(len(verts), dtype=bool)
    is_free[:len(free)] = True
    rows = np.zeros(len(verts), dtype=bool)
    rows[:len(core)] = True
    faired = fairing.bilaplacian_fair(co, np.array(sorted(edges)), is_free, rows)
    for v, p in zip(free, faired[:len(free)]):
        v.co = p


def surface_area(bm: bmesh.types.BMesh) -> float:
    """Total face area."""
    return float(sum(f.calc_area() for f in bm.faces))


def edge_counts(bm: bmesh.types.BMesh) -> tuple[int, int]:
    """(boundary edges: one face, non-manifold edges: no face or more than two)."""
    counts = np.fromiter((len(e.link_faces) for e in bm.edges), dtype=np.int64, count=len(bm.edges))
    return int((counts == 1).sum()), int(((counts == 0) | (counts > 2)).sum())


def hole_sizes(bm: bmesh.types.BMesh) -> list[int]:
    """Edge count of each hole (connected run of boundary edges), largest first."""
    boundary = [e for e in bm.edges if e.is_boundary]
    seen: set = set()
    sizes = []
    for start in boundary:
        if start in seen:
            continue
        seen.add(start)
        stack, n = [start], 0
        while stack:
            e = stack.pop()
            n += 1
            for v in e.verts:
                for g in v.link_edges:
                    if g not in seen and g.is_boundary:
                        seen.add(g)
                        stack.append(g)
        sizes.append(n)
    return sorted(sizes, reverse=True)


def recalc_normals(bm: bmesh.types.BMesh) -> dict:
    """Make face winding consistent and pointing outwards in each component."""
    before = {f: f.normal.copy() for f in bm.faces}
    bmesh.ops.recalc_face_normals(bm, faces=list(bm.faces))
    bm.normal_update()
    flipped = sum(1 for f in bm.faces if f.normal.dot(before[f]) < 0)
    return {"faces_flipped": flipped}


def topology_arrays(bm: bmesh.types.BMesh) -> tuple[np.ndarray, ...]:
    """(vertices, triangles, triangle -> face, edge vertices, edge and face of each polygon corner), in bmesh
    index order."""
    bm.verts.index_update()
    bm.faces.index_update()
    me = bpy.data.meshes.new("photomesh_cleanup_arrays")
    try:
        bm.to_mesh(me)
        me.calc_loop_triangles()
        v = np.zeros(len(me.vertices) * 3)
        me.vertices.foreach_get("co", v)
        tris = np.zeros(len(me.loop_triangles) * 3, dtype=np.int64)
        me.loop_triangles.foreach_get("vertices", tris)
        tri_face = np.zeros(len(me.loop_triangles), dtype=np.int64)
        me.loop_triangles.foreach_get("polygon_index", tri_face)
        edge_verts = np.zeros(len(me.edges) * 2, dtype=np.int64)
        me.edges.foreach_get("vertices", edge_verts)
        edge = np.zeros(len(me.loops), dtype=np.int64)
        me.loops.foreach_get("edge_index", edge)
        totals = np.zeros(len(me.polygons), dtype=np.int64)
        me.polygons.foreach_get("loop_total", totals)
        starts = np.zeros(len(me.polygons), dtype=np.int64)
        me.polygons.foreach_get("loop_start", starts)
    finally:
        bpy.data.meshes.remove(me)
    polygon = np.repeat(np.arange(len(totals)), totals)
    corner = np.arange(len(polygon)) - np.repeat(np.cumsum(totals) - totals, totals)
    face = np.zeros(len(edge), dtype=np.int64)
    face[starts[polygon] + corner] = polygon
    return v.reshape(-1, 3), tris.reshape(-1, 3), tri_face, edge_verts.reshape(-1, 2), edge, face


def remove_interior(bm: bmesh.types.BMesh) -> dict:
    """Delete faces with solid on both sides (`backend.mesh.interior`: cells for internal walls, winding numbers for
    enclosed parts), never opening an edge: nested shells and internal walls go, crevices and tunnels stay."""
    if not bm.faces:
        return {"interior_faces_removed": 0}
    v, tris, tri_face, edge_verts, edge, face = topology_arrays(bm)
    found = interior.interior_faces(v, tris, tri_face, edge_verts, edge, face, len(bm.faces))
    gone = interior.without_opening(found, edge, face)
    bm.faces.ensure_lookup_table()
    doomed = [bm.faces[i] for i in np.flatnonzero(gone)]
    if doomed:
        bmesh.ops.delete(bm, geom=doomed, context="FACES")
    _delete_loose_wire(bm)
    counts = {"interior_faces_removed": len(doomed)}
    if found.sum() > len(doomed):
        counts["kept_as_removal_would_open_the_mesh"] = int(found.sum()) - len(doomed)
    return counts


def triangulate(bm: bmesh.types.BMesh) -> dict:
    """Split every polygon into triangles. Two faces folded onto each other along two consecutive edges (they
    share three corners) would both get the diagonal joining the ends of that path, a duplicate triangle and a
    non-manifold edge; such a quad is split through the middle corner of the shared path instead."""
    n = len(bm.faces)
    if bm.faces:
        _, _, _, _, edge, face = topology_arrays(bm)
        order = np.argsort(edge, kind="stable")
        e, fc = edge[order], face[order]
        pair = (e[1:] == e[:-1]) & np.append(e[2:] != e[1:-1], True) & np.insert(e[1:-1] != e[:-2], 0, True)
        a_f, b_f = np.minimum(fc[:-1][pair], fc[1:][pair]), np.maximum(fc[:-1][pair], fc[1:][pair])
        twice, count = np.unique(np.stack([a_f, b_f], axis=1), axis=0, return_counts=True)
        bm.faces.ensure_lookup_table()
        for f in [bm.faces[int(i)] for i in np.unique(twice[count >= 2])]:
            _split_folded_quad(f)
    bmesh.ops.triangulate(bm, faces=[f for f in bm.faces if len(f.verts) > 3])
    return {"faces_added": len(bm.faces) - n}


def _split_folded_quad(f: bmesh.types.BMFace) -> None:
    """Split quad `f` through the corner whose two edges it shares with one other face, if there is one."""
    if not f.is_valid or len(f.verts) != 4:
        return
    for loop in f.loops:
        before, after = loop.link_loop_prev.edge, loop.edge
        if (set(before.link_faces) & set(after.link_faces)) - {f}:
            bmesh.utils.face_split(f, loop.vert, loop.link_loop_next.link_loop_next.vert)
            return


def symmetrize(bm: bmesh.types.BMesh, direction: str, dist: float) -> dict:
    """Mirror one half onto the other about an axis plane through the object origin."""
    n = len(bm.faces)
    bmesh.ops.symmetrize(bm, input=list(bm.verts) + list(bm.edges) + list(bm.faces), direction=direction, dist=dist)
    return {"faces_before": n, "faces_after": len(bm.faces)}


def boundary_edge_count(bm: bmesh.types.BMesh) -> int:
    """Edges with a number of faces other than two (0 on a closed manifold mesh)."""
    return sum(1 for e in bm.edges if len(e.link_faces) != 2)
