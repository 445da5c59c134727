"""The "Add Mirror Modifier" operator: the mesh mirrored about its stored symmetry plane (no torch/scipy)."""
from __future__ import annotations

import bmesh
import bpy
from mathutils import Vector

from .symmetry_plane import PLANE_PROPERTY, add_symmetry_plane, find_plane_object, mesh_extent, plane_values

MODIFIER_NAME = "Photomesh Symmetry"


def bisect_keep_positive(mesh_obj, point: Vector, normal: Vector) -> None:
    """Cut the mesh data along the plane and delete the half behind the normal."""
    bm = bmesh.new()
    bm.from_mesh(mesh_obj.data)
    geom = list(bm.verts) + list(bm.edges) + list(bm.faces)
    _, diagonal = mesh_extent(mesh_obj)
    bmesh.ops.bisect_plane(bm, geom=geom, dist=1e-5 * diagonal, plane_co=point, plane_no=normal, clear_inner=True)
    bm.to_mesh(mesh_obj.data)
    bm.free()
    mesh_obj.data.update()


def add_mirror_modifier(context, mesh_obj, bisect: bool = True):
    """Mirror modifier about the stored symmetry plane (through its plane object); returns the modifier."""
    point, normal, _ = plane_values(mesh_obj[PLANE_PROPERTY])
    plane_obj = find_plane_object(mesh_obj) or add_symmetry_plane(context, mesh_obj, mesh_obj[PLANE_PROPERTY])
    if bisect:
        bisect_keep_positive(mesh_obj, point, normal)
    modifier = mesh_obj.modifiers.get(MODIFIER_NAME) or mesh_obj.modifiers.new(MODIFIER_NAME, "MIRROR")
    modifier.mirror_object = plane_obj
    modifier.use_axis = (False, False, True)
    modifier.use_bisect_axis = (False, False, False)
    modifier.use_clip = True
    modifier.use_mirror_merge = True
    modifier.merge_threshold = 1e-4 * mesh_extent(mesh_obj)[1]
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
