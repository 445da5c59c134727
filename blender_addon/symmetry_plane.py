"""The symmetry plane of a result: stored on the mesh and shown as a wire plane object parented to it."""
from __future__ import annotations

import bpy
from mathutils import Matrix, Vector

PLANE_PROPERTY = "symmetry_plane"
PLANE_OBJECT_TAG = "photomesh_symmetry_plane"


def _plane_frame(normal: Vector) -> Matrix:
    """3x3 rotation whose Z column is the plane normal."""
    return normal.to_track_quat("Z", "Y").to_matrix()


def mesh_extent(mesh_obj) -> tuple[Vector, float]:
    """Centre and diagonal of the mesh's local bounding box."""
    corners = [Vector(c) for c in mesh_obj.bound_box]
    lo = Vector(tuple(min(c[i] for c in corners) for i in range(3)))
    hi = Vector(tuple(max(c[i] for c in corners) for i in range(3)))
    return (lo + hi) / 2, max((hi - lo).length, 1e-6)


def plane_values(plane) -> tuple[Vector, Vector, float]:
    """Point, unit normal and score from a plane dict (or the stored ID property)."""
    point = Vector(tuple(float(x) for x in plane["point"]))
    normal = Vector(tuple(float(x) for x in plane["normal"])).normalized()
    return point, normal, float(plane.get("score", 0.0))


def find_plane_object(mesh_obj):
    """The symmetry plane object parented to mesh_obj, or None."""
    for child in mesh_obj.children:
        if child.get(PLANE_OBJECT_TAG):
            return child
    return None


def add_symmetry_plane(context, mesh_obj, plane: dict):
    """Wire plane object (local Z = normal) sized to the mesh, parented to it; plane stored on the mesh."""
    point, normal, score = plane_values(plane)
    mesh_obj[PLANE_PROPERTY] = {"point": list(point), "normal": list(normal), "score": score}
    centre, diagonal = mesh_extent(mesh_obj)
    origin = centre - (centre - point).dot(normal) * normal
    half = 0.6 * diagonal
    data = bpy.data.meshes.new(f"{mesh_obj.name}_symmetry")
    data.from_pydata([(-half, -half, 0.0), (half, -half, 0.0), (half, half, 0.0), (-half, half, 0.0)], [],
                     [(0, 1, 2, 3)])
    data.update()
    old = find_plane_object(mesh_obj)
    if old is not None:
        bpy.data.objects.remove(old, do_unlink=True)
    plane_obj = bpy.data.objects.new(f"{mesh_obj.name}_symmetry", data)
    collections = mesh_obj.users_collection or (context.collection,)
    for collection in collections:
        collection.objects.link(plane_obj)
    plane_obj.parent = mesh_obj
    plane_obj.matrix_parent_inverse = Matrix.Identity(4)
    plane_obj.matrix_basis = Matrix.Translation(origin) @ _plane_frame(normal).to_4x4()
    plane_obj.display_type = "WIRE"
    plane_obj.hide_render = True
    plane_obj[PLANE_OBJECT_TAG] = True
    plane_obj["symmetry_score"] = score
    context.view_layer.update()
    return plane_obj
