"""Symmetry plane display object and the "Add Mirror Modifier" operator (Blender side, no torch/scipy)."""
from __future__ import annotations

import bmesh
import bpy
from mathutils import Matrix, Vector

PLANE_PROPERTY = "symmetry_plane"
PLANE_OBJECT_TAG = "photomesh_symmetry_plane"
MODIFIER_NAME = "Photomesh Symmetry"


def _plane_frame(normal: Vector) -> Matrix:
    """3x3 rotation whose Z column is the plane normal."""
    return normal.to_track_quat("Z", "Y").to_matrix()


def _mesh_extent(mesh_obj) -> tuple[Vector, float]:
    """Centre and diagonal of the mesh's local bounding box."""
    corners = [Vector(c) for c in mesh_obj.bound_box]
    lo = Vector(tuple(min(c[i] for c in corners) for i in range(3)))
    hi = Vector(tuple(max(c[i] for c in corners) for i in range(3)))
    return (lo + hi) / 2, max((hi - lo).length, 1e-6)


def _plane_values(plane) -> tuple[Vector, Vector, float]:
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
    point, normal, score = _plane_values(plane)
    mesh_obj[PLANE_PROPERTY] = {"point": list(point), "normal": list(normal), "score": score}
    centre, diagonal = _mesh_extent(mesh_obj)
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


def bisect_keep_positive(mesh_obj, point: Vector, normal: Vector) -> None:
    """Cut the mesh data along the plane and delete the half behind the normal."""
    bm = bmesh.new()
    bm.from_mesh(mesh_obj.data)
    geom = list(bm.verts) + list(bm.edges) + list(bm.faces)
    _, diagonal = _mesh_extent(mesh_obj)
    bmesh.ops.bisect_plane(bm, geom=geom, dist=1e-5 * diagonal, plane_co=point, plane_no=normal, clear_inner=True)
    bm.to_mesh(mesh_obj.data)
    bm.free()
    mesh_obj.data.update()


def add_mirror_modifier(context, mesh_obj, bisect: bool = True):
    """Mirror modifier about the stored symmetry plane (through its plane object); returns the modifier."""
    point, normal, _ = _plane_values(mesh_obj[PLANE_PROPERTY])
    plane_obj = find_plane_object(mesh_obj) or add_symmetry_plane(context, mesh_obj, mesh_obj[PLANE_PROPERTY])
    if bisect:
        bisect_keep_positive(mesh_obj, point, normal)
    modifier = mesh_obj.modifiers.get(MODIFIER_NAME) or mesh_obj.modifiers.new(MODIFIER_NAME, "MIRROR")
    modifier.mirror_object = plane_obj
    modifier.use_axis = (False, False, True)
    modifier.use_bisect_axis = (False, False, False)
    modifier.use_clip = True
    modifier.use_mirror_merge = True
    modifier.merge_threshold = 1e-4 * _mesh_extent(mesh_obj)[1]
    return modifier


class OBJECT_OT_photomesh_add_mirror(bpy.types.Operator):
    """Mirror the mesh about its detected symmetry plane (keeps the side the normal points to)"""

    bl_idname = "object.photomesh_add_mirror"
    bl_label = "Add Mirror Modifier"
    bl_options = {"REGISTER", "UNDO"}

    bisect: bpy.props.BoolProperty(name="Cut Other Half", default=True,
                                   description="Delete the half behind the plane so the mirror rebuilds it")

    @classmethod
    def poll(cls, context) -> bool:
        obj = context.active_object
        return obj is not None and obj.type == "MESH" and PLANE_PROPERTY in obj

    def execute(self, context) -> set:
        obj = context.active_object
        if obj.mode != "OBJECT":
            bpy.ops.object.mode_set(mode="OBJECT")
        add_mirror_modifier(context, obj, self.bisect)
        self.report({"INFO"}, f"Mirror modifier added to {obj.name}")
        return {"FINISHED"}


CLASSES = (OBJECT_OT_photomesh_add_mirror,)
