"""Scene content built with bpy: the subject mesh, its material, and the lights."""
from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix

PRIMITIVES = ("suzanne", "sphere", "torus", "cube")


def read_obj(path: Path) -> tuple[np.ndarray, list[list[int]]]:
    """Vertices (N, 3) and polygon index lists (0-based) of a Wavefront OBJ file."""
    verts: list[list[float]] = []
    faces: list[list[int]] = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "v":
                verts.append([float(x) for x in parts[1:4]])
            elif parts[0] == "f":
                idx = [int(p.split("/")[0]) for p in parts[1:]]
                faces.append([i - 1 if i > 0 else len(verts) + i for i in idx])
    if not verts or not faces:
        raise ValueError(f"{path}: no vertices or faces found")
    return np.asarray(verts, dtype=np.float64), faces


def add_subject(mesh: str, subdivision: int = 2) -> bpy.types.Object:
    """Create the object to photograph: a named primitive or an .obj file (source coordinates)."""
    if mesh == "suzanne":
        bpy.ops.mesh.primitive_monkey_add(size=2.0)
        obj = bpy.context.active_object
        if subdivision > 0:
            mod = obj.modifiers.new("subsurf", "SUBSURF")
            mod.levels = mod.render_levels = subdivision
    elif mesh == "sphere":
        bpy.ops.mesh.primitive_uv_sphere_add(radius=1.0, segments=64, ring_count=32)
        obj = bpy.context.active_object
    elif mesh == "torus":
        bpy.ops.mesh.primitive_torus_add(major_radius=0.75, minor_radius=0.3, major_segments=64,
                                         minor_segments=24)
        obj = bpy.context.active_object
    elif mesh == "cube":
        bpy.ops.mesh.primitive_cube_add(size=2.0)
        obj = bpy.context.active_object
    else:
        path = Path(mesh)
        if path.suffix.lower() != ".obj" or not path.is_file():
            raise ValueError(f"mesh {mesh!r} is neither one of {PRIMITIVES} nor an existing .obj file")
        verts, faces = read_obj(path)
        data = bpy.data.meshes.new(path.stem)
        data.from_pydata(verts.tolist(), [], faces)
        data.validate()
        obj = bpy.data.objects.new(path.stem, data)
        bpy.context.scene.collection.objects.link(obj)
    if mesh != "cube":
        smooth = np.ones(len(obj.data.polygons), dtype=bool)
        obj.data.polygons.foreach_set("use_smooth", smooth)
    obj.data.update()
    return obj


def evaluated_geometry(obj: bpy.types.Object) -> tuple[np.ndarray, np.ndarray]:
    """World-space vertices (N, 3) and triangles (F, 3) of the object after modifiers."""
    depsgraph = bpy.context.evaluated_depsgraph_get()
    obj_eval = obj.evaluated_get(depsgraph)
    me = obj_eval.to_mesh()
    try:
        me.calc_loop_triangles()
        co = np.empty(len(me.vertices) * 3, dtype=np.float64)
        me.vertices.foreach_get("co", co)
        tris = np.empty(len(me.loop_triangles) * 3, dtype=np.int64)
        me.loop_triangles.foreach_get("vertices", tris)
    finally:
        obj_eval.to_mesh_clear()
    m = np.array(obj.matrix_world, dtype=np.float64)
    co = co.reshape(-1, 3) @ m[:3, :3].T + m[:3, 3]
    return co, tris.reshape(-1, 3)


def normalize_object(obj: bpy.types.Object, size: float = 2.0) -> tuple[float, np.ndarray]:
    """Scale and move the object so its evaluated bbox is centred at the origin with largest side `size`.

    Returns (scale, translation) such that world = scale * source + translation.
    """
    obj.matrix_world = Matrix.Identity(4)
    bpy.context.view_layer.update()
    co, _ = evaluated_geometry(obj)
    lo, hi = co.min(axis=0), co.max(axis=0)
    scale = size / float(np.max(hi - lo))
    translation = -scale * (lo + hi) / 2.0
    m = np.eye(4)
    m[:3, :3] *= scale
    m[:3, 3] = translation
    obj.matrix_world = Matrix(m.tolist())
    bpy.context.view_layer.update()
    return scale, translation


def add_material(obj: bpy.types.Object, seed: int = 0, roughness: float = 0.6) -> None:
    """Give the object a procedural noise colour pattern on a principled BSDF, fixed to the object.

    A lower `roughness` makes sharper highlights (view-dependent colour) for glossy test objects.
    """
    mat = bpy.data.materials.new("scenegen_material")
    mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = next(n for n in nodes if n.type == "BSDF_PRINCIPLED")
    bsdf.inputs["Roughness"].default_value = roughness
    coord = nodes.new("ShaderNodeTexCoord")
    noise = nodes.new("ShaderNodeTexNoise")
    noise.inputs["Scale"].default_value = 3.0
    noise.inputs["Detail"].default_value = 3.0
    if "W" in noise.inputs:
        noise.inputs["W"].default_value = float(seed)
    ramp = nodes.new("ShaderNodeValToRGB")
    ramp.color_ramp.elements[0].position = 0.35
    ramp.color_ramp.elements[0].color = (0.8, 0.25, 0.05, 1.0)
    ramp.color_ramp.elements[1].position = 0.65
    ramp.color_ramp.elements[1].color = (0.15, 0.5, 0.85, 1.0)
    links.new(coord.outputs["Object"], noise.inputs["Vector"])
    links.new(noise.outputs["Fac"], ramp.inputs["Fac"])
    links.new(ramp.outputs["Color"], bsdf.inputs["Base Color"])
    obj.data.materials.clear()
    obj.data.materials.append(mat)


def add_lights() -> None:
    """A key sun, a fill area light and a dim grey world, so shading varies with the normal."""
    scene = bpy.context.scene
    sun_data = bpy.data.lights.new("key", type="SUN")
    sun_data.energy = 3.0
    sun = bpy.data.objects.new("key", sun_data)
    sun.rotation_euler = (0.7, 0.2, 0.6)
    scene.collection.objects.link(sun)
    fill_data = bpy.data.lights.new("fill", type="POINT")
    fill_data.energy = 400.0
    fill = bpy.data.objects.new("fill", fill_data)
    fill.location = (-4.0, -3.0, -1.0)
    scene.collection.objects.link(fill)
    world = bpy.data.worlds.new("scenegen_world")
    world.use_nodes = True
    bg = next(n for n in world.node_tree.nodes if n.type == "BACKGROUND")
    bg.inputs["Color"].default_value = (0.3, 0.3, 0.3, 1.0)
    bg.inputs["Strength"].default_value = 1.0
    scene.world = world
