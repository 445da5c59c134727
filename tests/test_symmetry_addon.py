"""Add-on side of symmetry: the plane object and the Add Mirror Modifier operator (bpy as a module)."""
from __future__ import annotations

import bpy  # noqa: I001 - bpy first: it makes mathutils importable
import numpy as np
import pytest
from mathutils import Matrix, Vector

from blender_addon.ops_symmetry import MODIFIER_NAME
from blender_addon.symmetry_plane import PLANE_PROPERTY, add_symmetry_plane, find_plane_object
from blender_helpers import addon  # noqa: F401 - the module's autouse fixture


@pytest.fixture(autouse=True)
def empty_scene():
    """No objects or meshes left from earlier tests."""
    for coll in (bpy.data.objects, bpy.data.meshes):
        for idb in list(coll):
            coll.remove(idb)


@pytest.fixture()
def moved_monkey():
    """Suzanne with its data rotated and shifted (plane no longer x = 0), made a little asymmetric on -x."""
    bpy.ops.mesh.primitive_monkey_add()
    obj = bpy.context.active_object
    for v in obj.data.vertices:
        if v.co.x < -0.5:
            v.co.y += 0.2
    motion = Matrix.Translation((0.5, -1.0, 2.0)) @ Matrix.Rotation(0.7, 4, Vector((1.0, 2.0, 0.5)).normalized())
    obj.data.transform(motion)
    obj.data.update()
    normal = motion.to_3x3() @ Vector((1.0, 0.0, 0.0))
    plane = {"point": list(motion.translation), "normal": list(normal), "score": 0.001}
    return obj, plane


def evaluated_vertices(obj) -> np.ndarray:
    """Vertex positions of the evaluated mesh (modifiers applied), in the object's local space."""
    depsgraph = bpy.context.evaluated_depsgraph_get()
    mesh = obj.evaluated_get(depsgraph).to_mesh()
    out = np.array([v.co[:] for v in mesh.vertices])
    obj.evaluated_get(depsgraph).to_mesh_clear()
    return out


def mirror_gap(points: np.ndarray, point: np.ndarray, normal: np.ndarray) -> float:
    """Largest distance from a mirrored point to the nearest point."""
    mirrored = points - 2 * ((points - point) @ normal)[:, None] * normal
    return float(np.sqrt(((mirrored[:, None] - points[None]) ** 2).sum(-1).min(1)).max())


def test_plane_object_is_wire_child_with_normal_as_z(moved_monkey) -> None:
    obj, plane = moved_monkey
    plane_obj = add_symmetry_plane(bpy.context, obj, plane)
    assert plane_obj.parent is obj and plane_obj.display_type == "WIRE"
    assert find_plane_object(obj) is plane_obj
    assert dict(obj[PLANE_PROPERTY].to_dict())["score"] == pytest.approx(0.001)
    z_axis = np.array(plane_obj.matrix_world.to_3x3().col[2][:])
    assert abs(z_axis @ np.array(plane["normal"])) == pytest.approx(1.0, abs=1e-6)
    offset = (np.array(plane_obj.matrix_world.translation[:]) - plane["point"]) @ np.array(plane["normal"])
    assert abs(offset) < 1e-5
    size = max(plane_obj.dimensions[:])
    assert 2.0 < size < 6.0
    again = add_symmetry_plane(bpy.context, obj, plane)
    assert [c for c in obj.children if c.get("photomesh_symmetry_plane")] == [again]


def test_add_mirror_operator_makes_mesh_symmetric(moved_monkey) -> None:
    obj, plane = moved_monkey
    add_symmetry_plane(bpy.context, obj, plane)
    point, normal = np.array(plane["point"]), np.array(plane["normal"])
    assert mirror_gap(np.array([v.co[:] for v in obj.data.vertices]), point, normal) > 0.1
    bpy.context.view_layer.objects.active = obj
    assert bpy.ops.object.photomesh_add_mirror() == {"FINISHED"}
    modifier = obj.modifiers[MODIFIER_NAME]
    assert modifier.type == "MIRROR" and modifier.mirror_object is find_plane_object(obj)
    data = np.array([v.co[:] for v in obj.data.vertices])
    assert ((data - point) @ normal).min() > -1e-4
    evaluated = evaluated_vertices(obj)
    assert len(evaluated) > len(data)
    assert mirror_gap(evaluated, point, normal) < 1e-4


def test_operator_needs_a_stored_plane() -> None:
    bpy.ops.mesh.primitive_cube_add()
    assert not bpy.ops.object.photomesh_add_mirror.poll()
