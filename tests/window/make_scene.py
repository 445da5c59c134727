"""Build the window test's scene in `blender -b`: Suzanne, cameras around it, each with its Cycles photo.

Usage: blender -b --factory-startup --python make_scene.py -- CONFIG.json, where CONFIG.json holds
`out` (folder for photos and scene.blend), `views`, `size` (pixels) and `samples`. Each camera gets
its photo (RGBA, the alpha is the object's mask) as its background image, the way photogrammetry
importers set cameras up; the cameras are left selected, Suzanne hidden in the viewport.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import bpy
from mathutils import Vector


def clear_scene() -> None:
    """Remove every object of the factory scene."""
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj, do_unlink=True)


def add_subject() -> bpy.types.Object:
    """Smooth, coloured Suzanne at the origin."""
    bpy.ops.mesh.primitive_monkey_add(size=2.0, location=(0.0, 0.0, 0.0))
    obj = bpy.context.active_object
    obj.name = "Suzanne"
    mod = obj.modifiers.new("Subdivision", "SUBSURF")
    mod.levels = mod.render_levels = 1
    for poly in obj.data.polygons:
        poly.use_smooth = True
    mat = bpy.data.materials.new("Suzanne")
    mat.use_nodes = True
    bsdf = mat.node_tree.nodes.get("Principled BSDF")
    bsdf.inputs["Base Color"].default_value = (0.8, 0.45, 0.2, 1.0)
    bsdf.inputs["Roughness"].default_value = 0.6
    obj.data.materials.append(mat)
    return obj


def add_lights(scene: bpy.types.Scene) -> None:
    """A sun and a grey world so every side of the subject is lit."""
    sun = bpy.data.lights.new("Sun", "SUN")
    sun.energy = 3.0
    sun_obj = bpy.data.objects.new("Sun", sun)
    sun_obj.rotation_euler = (math.radians(40), math.radians(10), math.radians(30))
    scene.collection.objects.link(sun_obj)
    if scene.world is None:
        scene.world = bpy.data.worlds.new("World")
    scene.world.use_nodes = True
    scene.world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.35, 0.35, 0.35, 1.0)


def add_cameras(scene: bpy.types.Scene, count: int, radius: float = 5.5) -> list:
    """Cameras on a ring around the origin, alternating above and below, all looking at it."""
    cams = []
    for i in range(count):
        azimuth = 2.0 * math.pi * i / count
        elevation = math.radians(25.0 if i % 2 == 0 else -10.0)
        loc = Vector((radius * math.cos(elevation) * math.cos(azimuth),
                      radius * math.cos(elevation) * math.sin(azimuth),
                      radius * math.sin(elevation)))
        data = bpy.data.cameras.new(f"Cam.{i:02d}")
        data.lens = 50.0
        cam = bpy.data.objects.new(f"Cam.{i:02d}", data)
        cam.location = loc
        cam.rotation_euler = (-loc).to_track_quat("-Z", "Y").to_euler()
        scene.collection.objects.link(cam)
        cams.append(cam)
    return cams


def render_photos(scene: bpy.types.Scene, cams: list, out: Path, size: int, samples: int) -> None:
    """Render each camera's RGBA photo with Cycles and attach it as the camera's background image."""
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    if hasattr(scene.cycles, "use_denoising"):
        scene.cycles.use_denoising = False
    scene.render.resolution_x = scene.render.resolution_y = size
    scene.render.resolution_percentage = 100
    scene.render.film_transparent = True
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA"
    for cam in cams:
        scene.camera = cam
        path = out / "photos" / f"{cam.name}.png"
        scene.render.filepath = str(path)
        bpy.ops.render.render(write_still=True)
        img = bpy.data.images.load(str(path))
        bg = cam.data.background_images.new()
        bg.image = img
        cam.data.show_background_images = True


def main() -> None:
    """Build, render and save the scene described by the configuration file."""
    cfg = json.loads(Path(sys.argv[sys.argv.index("--") + 1]).read_text())
    out = Path(cfg["out"])
    scene = bpy.context.scene
    clear_scene()
    subject = add_subject()
    add_lights(scene)
    cams = add_cameras(scene, int(cfg.get("views", 8)))
    render_photos(scene, cams, out, int(cfg.get("size", 128)), int(cfg.get("samples", 8)))
    for obj in scene.objects:
        obj.select_set(obj.type == "CAMERA")
    bpy.context.view_layer.objects.active = cams[0]
    subject.hide_set(True)
    bpy.ops.wm.save_as_mainfile(filepath=str(out / "scene.blend"))
    (out / "scene.json").write_text(json.dumps({
        "objects": sorted(o.name for o in scene.objects),
        "cameras": [c.name for c in cams]}))


main()
