"""The photo-capture scene built with bpy: the object standing on a textured floor in a room, lit like indoors."""
from __future__ import annotations

import math
from pathlib import Path

import bpy
import cv2
import numpy as np
from mathutils import Matrix

from scenegen import objects, textures

Y_UP_TO_Z_UP = np.array([[1.0, 0, 0, 0], [0, 0, -1, 0], [0, 1, 0, 0], [0, 0, 0, 1]])


def save_png(path: Path, rgb: np.ndarray) -> Path:
    """Write an RGB uint8 image as PNG (OpenCV wants BGR)."""
    cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    return path


def standing_transform(vertices: np.ndarray, size: float) -> np.ndarray:
    """4x4 that scales the points to largest side `size`, centred on the z axis with the lowest point at z = 0."""
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    scale = size / float(np.max(hi - lo))
    m = np.eye(4)
    m[:3, :3] *= scale
    m[:3, 3] = -scale * np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]])
    return m


def add_standing_subject(mesh: str, size: float = 2.0) -> tuple[bpy.types.Object, np.ndarray]:
    """The object standing on the floor at the origin, z up, its transform baked into the mesh data.

    .obj files are Y-up (as Blender's OBJ importer assumes) and turned to Z-up; built-in shapes are Z-up.
    Returns the object and the 4x4 source-to-world matrix. Baking keeps object texture coordinates in world units.
    """
    obj = objects.add_subject(mesh)
    obj.matrix_world = Matrix.Identity(4)
    turn = Y_UP_TO_Z_UP if Path(mesh).suffix.lower() == ".obj" else np.eye(4)
    obj.data.transform(Matrix(turn.tolist()))
    bpy.context.view_layer.update()
    co, _ = objects.evaluated_geometry(obj)
    stand = standing_transform(co, size)
    obj.data.transform(Matrix(stand.tolist()))
    obj.data.update()
    bpy.context.view_layer.update()
    return obj, stand @ turn


def image_node(nodes, path: Path, colorspace: str = "sRGB"):
    """An Image Texture node reading `path`, linear filtering."""
    node = nodes.new("ShaderNodeTexImage")
    node.image = bpy.data.images.load(str(path))
    node.image.colorspace_settings.name = colorspace
    node.interpolation = "Linear"
    return node


def add_object_material(obj: bpy.types.Object, texture: Path, period: float) -> None:
    """Principled BSDF whose colour is the detail image box-projected in object (= world) space.

    Box projection needs no UVs; the image repeats every `period` world units.
    """
    mat = bpy.data.materials.new("capture_object")
    mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = next(n for n in nodes if n.type == "BSDF_PRINCIPLED")
    bsdf.inputs["Roughness"].default_value = 0.55
    coord = nodes.new("ShaderNodeTexCoord")
    mapping = nodes.new("ShaderNodeMapping")
    mapping.inputs["Scale"].default_value = (1 / period,) * 3
    tex = image_node(nodes, texture)
    tex.projection = "BOX"
    tex.projection_blend = 0.2
    links.new(coord.outputs["Object"], mapping.inputs["Vector"])
    links.new(mapping.outputs["Vector"], tex.inputs["Vector"])
    links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
    obj.data.materials.clear()
    obj.data.materials.append(mat)


def add_floor(texture: Path, size: float) -> bpy.types.Object:
    """A square table top of side `size` centred under the object, the detail image spread once over it."""
    bpy.ops.mesh.primitive_plane_add(size=size)
    floor = bpy.context.active_object
    floor.name = "floor"
    mat = bpy.data.materials.new("capture_floor")
    mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = next(n for n in nodes if n.type == "BSDF_PRINCIPLED")
    bsdf.inputs["Roughness"].default_value = 0.7
    tex = image_node(nodes, texture)
    links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
    floor.data.materials.append(mat)
    return floor


def add_room(environment: Path, strength: float = 1.0, turn: float = 0.0) -> None:
    """The world: an equirectangular room image seen behind the table and lighting it softly."""
    world = bpy.data.worlds.new("capture_room")
    world.use_nodes = True
    nodes, links = world.node_tree.nodes, world.node_tree.links
    bg = next(n for n in nodes if n.type == "BACKGROUND")
    bg.inputs["Strength"].default_value = strength
    coord = nodes.new("ShaderNodeTexCoord")
    mapping = nodes.new("ShaderNodeMapping")
    mapping.inputs["Rotation"].default_value = (0.0, 0.0, turn)
    env = nodes.new("ShaderNodeTexEnvironment")
    env.image = bpy.data.images.load(str(environment))
    links.new(coord.outputs["Generated"], mapping.inputs["Vector"])
    links.new(mapping.outputs["Vector"], env.inputs["Vector"])
    links.new(env.outputs["Color"], bg.inputs["Color"])
    bpy.context.scene.world = world


def add_ceiling_lamp(rng: np.random.Generator) -> None:
    """A soft sun from above at an angle: the room's main light, giving a soft contact shadow."""
    data = bpy.data.lights.new("lamp", type="SUN")
    data.energy = 2.5
    data.angle = math.radians(12.0)
    lamp = bpy.data.objects.new("lamp", data)
    lamp.rotation_euler = (math.radians(rng.uniform(25, 40)), 0.0, rng.uniform(0, 2 * math.pi))
    bpy.context.scene.collection.objects.link(lamp)


def build_capture_scene(mesh: str, tmp: Path, seed: int, detail: float = 1.0, size: float = 2.0,
                        floor_size: float = 12.0) -> tuple[bpy.types.Object, bpy.types.Object, np.ndarray]:
    """Object, table, room and lamp, their textures generated from `seed` into `tmp`.

    `detail` scales the textures' pixel sizes (1: full size, used from 480 px wide photos up), so smaller
    photos get the same-looking scene with less work. Returns (object, floor, source-to-world 4x4).
    """
    rng = np.random.default_rng(seed)

    def px(n: int) -> int:
        return max(128, int(round(n * detail / 64)) * 64)

    obj_tex = save_png(tmp / "object.png", textures.detail_texture(
        px(1024), seed * 7 + 1, textures.OBJECT_PALETTE, feature_px=(8.0 * detail, 180.0 * detail),
        shapes_per_megapixel=7000))
    floor_tex = save_png(tmp / "floor.png", textures.detail_texture(
        px(2048), seed * 7 + 2, textures.FLOOR_PALETTE, feature_px=(5.0 * detail, 120.0 * detail),
        shapes_per_megapixel=7000))
    env_tex = save_png(tmp / "room.png", textures.room_environment(px(2048), seed * 7 + 3))
    obj, source_to_world = add_standing_subject(mesh, size)
    add_object_material(obj, obj_tex, period=size)
    floor = add_floor(floor_tex, floor_size)
    add_room(env_tex, strength=1.0, turn=float(rng.uniform(0, 2 * math.pi)))
    add_ceiling_lamp(rng)
    return obj, floor, source_to_world
