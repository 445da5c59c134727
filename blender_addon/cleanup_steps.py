"""Clean-up steps for dirty CAD/scan meshes: each takes a bmesh (or mesh) and returns what it changed."""
from __future__ import annotations

import math

import bmesh
import numpy as np
from mathutils import Vector
from mathutils.bvhtree import BVHTree

SYMMETRY_AXES = ("X", "-X", "Y", "-Y", "Z", "-Z")


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


def face_components(bm: bmesh.types.BMesh) -> list[list[bmesh.types.BMFace]]:
    """Faces grouped into edge-connected components."""
    bm.faces.ensure_lookup_table()
    seen = set()
    parts = []
    for start in bm.faces:
        if start.index in seen:
            continue
        seen.add(start.index)
        stack, part = [start], []
        while stack:
            f = stack.pop()
            part.append(f)
            for e in f.edges:
                for g in e.link_faces:
                    if g.index not in seen:
                        seen.add(g.index)
                        stack.append(g)
        parts.append(part)
    return parts


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
    bm.faces.index_update()
    small = []
    for part in face_components(bm):
        co = np.array([v.co for f in part for v in f.verts])
        if np.linalg.norm(co.max(axis=0) - co.min(axis=0)) < min_size:
            small.append(part)
    if small:
        bmesh.ops.delete(bm, geom=[f for part in small for f in part], context="FACES")
    edges, verts = _delete_loose_wire(bm)
    return {"small_parts_removed": len(small), "loose_edges_removed": edges, "loose_vertices_removed": verts}


def keep_largest(bm: bmesh.types.BMesh, n: int) -> dict:
    """Keep the `n` components with the largest surface area, delete the rest."""
    bm.faces.index_update()
    parts = face_components(bm)
    if n <= 0 or len(parts) <= n:
        return {"parts_removed": 0}
    parts.sort(key=lambda p: sum(f.calc_area() for f in p), reverse=True)
    drop = [f for part in parts[n:] for f in part]
    bmesh.ops.delete(bm, geom=drop, context="FACES")
    _delete_loose_wire(bm)
    return {"parts_removed": len(parts) - n}


def fill_holes(bm: bmesh.types.BMesh, sides: int) -> dict:
    """Fill boundary loops of at most `sides` edges."""
    out = bmesh.ops.holes_fill(bm, edges=list(bm.edges), sides=sides)
    return {"holes_filled": len(out["faces"])}


def recalc_normals(bm: bmesh.types.BMesh) -> dict:
    """Make face winding consistent and pointing outwards in each component."""
    before = {f: f.normal.copy() for f in bm.faces}
    bmesh.ops.recalc_face_normals(bm, faces=list(bm.faces))
    bm.normal_update()
    flipped = sum(1 for f in bm.faces if f.normal.dot(before[f]) < 0)
    return {"faces_flipped": flipped}


def sphere_directions(n: int) -> list[Vector]:
    """`n` nearly uniform unit directions (Fibonacci sphere)."""
    golden = math.pi * (3.0 - math.sqrt(5.0))
    dirs = []
    for i in range(n):
        z = 1.0 - 2.0 * (i + 0.5) / n
        r = math.sqrt(max(0.0, 1.0 - z * z))
        dirs.append(Vector((r * math.cos(golden * i), r * math.sin(golden * i), z)))
    return dirs


def _probe_points(face: bmesh.types.BMFace) -> list[Vector]:
    """The face centre and points between the centre and each corner."""
    c = face.calc_center_median()
    return [c] + [c.lerp(v.co, 0.8) for v in face.verts]


def hidden_faces(bm: bmesh.types.BMesh, n_rays: int = 64) -> list[bmesh.types.BMFace]:
    """Faces from which no ray (normal, reverse normal, `n_rays` sphere directions) escapes the mesh."""
    bm.normal_update()
    tree = BVHTree.FromBMesh(bm)
    eps = bm_size(bm) * 1e-5
    dirs = sphere_directions(n_rays)
    hidden = []
    for f in bm.faces:
        candidates = [f.normal, -f.normal] + dirs if f.normal.length > 0 else dirs
        if not any(tree.ray_cast(p + d * eps, d)[0] is None for p in _probe_points(f) for d in candidates):
            hidden.append(f)
    return hidden


def remove_interior(bm: bmesh.types.BMesh, n_rays: int = 64) -> dict:
    """Delete faces that cannot be seen from outside (ray casts through a BVH)."""
    hidden = hidden_faces(bm, n_rays)
    if hidden:
        bmesh.ops.delete(bm, geom=hidden, context="FACES")
    _delete_loose_wire(bm)
    return {"interior_faces_removed": len(hidden)}


def triangulate(bm: bmesh.types.BMesh) -> dict:
    """Split every polygon into triangles."""
    n = len(bm.faces)
    bmesh.ops.triangulate(bm, faces=list(bm.faces))
    return {"faces_added": len(bm.faces) - n}


def symmetrize(bm: bmesh.types.BMesh, direction: str, dist: float) -> dict:
    """Mirror one half onto the other about an axis plane through the object origin."""
    n = len(bm.faces)
    bmesh.ops.symmetrize(bm, input=list(bm.verts) + list(bm.edges) + list(bm.faces), direction=direction, dist=dist)
    return {"faces_before": n, "faces_after": len(bm.faces)}


def boundary_edge_count(bm: bmesh.types.BMesh) -> int:
    """Edges with a number of faces other than two (0 on a closed manifold mesh)."""
    return sum(1 for e in bm.edges if len(e.link_faces) != 2)
