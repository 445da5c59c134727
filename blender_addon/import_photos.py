"""Brings a prepared photo job into the scene: cameras with their photos and masks, sparse points, the object's box.

The cameras are named by photo stem and set up so that Reconstruct gathers them as they are: image source
Camera Background (the undistorted photo is each camera's first background image), mask source Mask Folder
(the job's masks, named like the cameras), bounds the imported box object.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import bpy
import numpy as np
from mathutils import Matrix

from .job_spec import GatherError
from .photo_job import (BOX_EDGES, FLOOR_PROP, PreparedPhotos, RenderSetup, box_corners, camera_settings,
                        fallback_bbox, prepared_floor, render_setup, scene_scale, sfm_problems, sfm_summary,
                        srgb_to_linear)

MASK_PREFIX = "mask "
MASK_ALPHA = 0.6
PHOTO_ALPHA = 0.9
CAMERA_MASKS = "camera_masks"
COLOR_ATTRIBUTE = "Col"
POINT_RADIUS = 0.003


@dataclass
class ImportedPhotos:
    """What an import added to the scene, with its summary and the problems to tell the user about."""

    collection: "bpy.types.Collection"
    cameras: list
    points: Optional["bpy.types.Object"]
    bbox: Optional["bpy.types.Object"]
    mask_folder: Optional[Path]
    summary: str
    problems: list[str] = field(default_factory=list)


def _load_image(path: Path, name: str, created: list) -> "bpy.types.Image":
    """A new image datablock of a file, named `name`."""
    img = bpy.data.images.load(str(path), check_existing=False)
    created.append(img)
    img.name = name
    return img


def add_camera(view, setup: RenderSetup, collection, created: list):
    """A camera object for one view, the exact inverse of DESIGN 'Cameras' at the scene's render size."""
    s = camera_settings(view, setup)
    data = bpy.data.cameras.new(view.name)
    created.append(data)
    data.sensor_fit = s["sensor_fit"]
    data.sensor_width = s["sensor_width"]
    data.lens = s["lens"]
    data.shift_x, data.shift_y = s["shift_x"], s["shift_y"]
    obj = bpy.data.objects.new(view.name, data)
    created.append(obj)
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = s["rotation"], s["location"]
    obj.matrix_world = Matrix(m.tolist())
    collection.objects.link(obj)
    return obj


def add_backgrounds(cam, view, created: list) -> None:
    """The undistorted photo as the camera's first background image; its mask second, hidden until Show Masks."""
    data = cam.data
    data.show_background_images = True
    bg = data.background_images.new()
    bg.image = _load_image(view.image, view.image.name, created)
    size = tuple(bg.image.size)
    if size != (view.width, view.height):
        raise GatherError(f"Photo '{view.name}': {view.image} " + ("cannot be read" if size == (0, 0) else
                          f"is {size[0]}x{size[1]}, job.json says {view.width}x{view.height}") + ".",
                          "Run Import Photos again; the prepared folder is damaged.")
    bg.alpha = PHOTO_ALPHA
    bg.display_depth = "BACK"
    bg.frame_method = "STRETCH"
    if view.mask is not None:
        mbg = data.background_images.new()
        mbg.image = _load_image(view.mask, f"{MASK_PREFIX}{view.name}", created)
        mbg.alpha = MASK_ALPHA
        mbg.display_depth = "FRONT"
        mbg.frame_method = "STRETCH"
        mbg.show_background_image = False


def set_masks_visible(cameras, visible: bool) -> int:
    """Show or hide each camera's mask background image; returns how many cameras have one."""
    count = 0
    for cam in cameras:
        if cam is None or cam.type != "CAMERA":
            continue
        for bg in cam.data.background_images:
            if bg.image is not None and bg.image.name.startswith(MASK_PREFIX):
                bg.show_background_image = visible
                count += 1
    return count


def add_points(name: str, points: np.ndarray, colors: np.ndarray, collection, created: list):
    """The sparse points as a vertex-only mesh object with a linear float colour attribute."""
    me = bpy.data.meshes.new(name)
    created.append(me)
    me.vertices.add(len(points))
    me.vertices.foreach_set("co", np.asarray(points, dtype=np.float32).ravel())
    rgba = np.ones((len(points), 4), dtype=np.float32)
    rgba[:, :3] = srgb_to_linear(colors)
    holder = me.color_attributes if hasattr(me, "color_attributes") else me.attributes
    attr = holder.new(COLOR_ATTRIBUTE, "FLOAT_COLOR", "POINT")
    attr.data.foreach_set("color", rgba.ravel())
    me.update()
    obj = bpy.data.objects.new(name, me)
    created.append(obj)
    collection.objects.link(obj)
    return obj


def point_material(name: str, created: list) -> "bpy.types.Material":
    """A material coloured by the points' colour attribute (seen in Material Preview and renders)."""
    mat = bpy.data.materials.new(name)
    created.append(mat)
    if mat.node_tree is None:
        mat.use_nodes = True
    nodes = mat.node_tree.nodes
    bsdf = next(n for n in nodes if n.type == "BSDF_PRINCIPLED")
    attr = nodes.new("ShaderNodeAttribute")
    attr.attribute_name = COLOR_ATTRIBUTE
    mat.node_tree.links.new(attr.outputs["Color"], bsdf.inputs["Base Color"])
    return mat


def add_point_display(obj, radius: float, created: list) -> None:
    """A Geometry Nodes modifier that draws the vertices as points in their colour.

    Blender does not draw loose vertices in Object mode; the modifier leaves the mesh data (what Points to
    Mesh and Start From read) as it is.
    """
    ng = bpy.data.node_groups.new(f"{obj.name} display", "GeometryNodeTree")
    created.append(ng)
    if hasattr(ng, "interface"):
        ng.interface.new_socket(name="Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
        ng.interface.new_socket(name="Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
    else:
        ng.inputs.new("NodeSocketGeometry", "Geometry")
        ng.outputs.new("NodeSocketGeometry", "Geometry")
    group_in, group_out = ng.nodes.new("NodeGroupInput"), ng.nodes.new("NodeGroupOutput")
    to_points = ng.nodes.new("GeometryNodeMeshToPoints")
    to_points.inputs["Radius"].default_value = radius
    set_material = ng.nodes.new("GeometryNodeSetMaterial")
    set_material.inputs["Material"].default_value = point_material(f"{obj.name} colour", created)
    ng.links.new(group_in.outputs[0], to_points.inputs["Mesh"])
    ng.links.new(to_points.outputs[0], set_material.inputs["Geometry"])
    ng.links.new(set_material.outputs[0], group_out.inputs[0])
    mod = obj.modifiers.new("Show Points", "NODES")
    mod.node_group = ng


def add_box(name: str, lo: np.ndarray, hi: np.ndarray, collection, created: list):
    """A wire box around the found object: a unit cube's edges, placed and scaled so its bounds are (lo, hi)."""
    me = bpy.data.meshes.new(name)
    created.append(me)
    me.from_pydata(box_corners((-1, -1, -1), (1, 1, 1)).tolist(), list(BOX_EDGES), [])
    obj = bpy.data.objects.new(name, me)
    created.append(obj)
    obj.location = ((np.asarray(lo) + np.asarray(hi)) / 2).tolist()
    obj.scale = ((np.asarray(hi) - np.asarray(lo)) / 2).tolist()
    obj.display_type = "WIRE"
    obj.hide_render = True
    collection.objects.link(obj)
    return obj


def camera_mask_folder(prepared: PreparedPhotos, cameras: list) -> Optional[Path]:
    """The folder Reconstruct reads masks from: the job's masks when every camera is named by its photo stem,
    else a folder of the same masks named after the cameras (Blender renames a camera whose name is taken)."""
    masks = {v.name: v.mask for v in prepared.views if v.mask is not None}
    if not masks or any(cam.get("photomesh_view") not in masks for cam in cameras):
        return None
    folders = {Path(m).parent for m in masks.values()}
    if len(folders) == 1 and all(cam.name == Path(masks[cam["photomesh_view"]]).stem for cam in cameras):
        return folders.pop()
    folder = prepared.out_dir / CAMERA_MASKS
    folder.mkdir(exist_ok=True)
    for cam in cameras:
        src = Path(masks[cam["photomesh_view"]])
        dst = folder / f"{cam.name}{src.suffix}"
        if dst.exists():
            dst.unlink()
        try:
            os.link(src, dst)
        except OSError:
            shutil.copyfile(src, dst)
    return folder


def configure_reconstruct(scene, name: str, cameras: list, box, mask_folder: Optional[Path]) -> None:
    """Point Reconstruct's settings at the import: background photos, the masks (none: the images' alpha, so the
    backend makes them), the box, the result named after the photos; select the cameras."""
    settings = getattr(scene, "photomesh", None)
    if settings is not None:
        settings.job_name = name
        settings.image_source = "BACKGROUND"
        if mask_folder is not None:
            settings.mask_source = "FOLDER"
            settings.mask_folder = str(mask_folder)
        else:
            settings.mask_source = "ALPHA"
        if box is not None:
            settings.bbox_source = "OBJECT"
            settings.bbox_object = box
    layer = bpy.context.view_layer
    layer.update()
    for obj in layer.objects:
        if obj is not None:
            obj.select_set(False)
    for cam in cameras:
        cam.select_set(True)
    if cameras:
        layer.objects.active = cameras[0]
        scene.camera = cameras[0]


def remove_created(created: list) -> None:
    """Remove the datablocks an import made (newest first), so a failed import leaves nothing."""
    kinds = ((bpy.types.Object, bpy.data.objects), (bpy.types.Camera, bpy.data.cameras),
             (bpy.types.Mesh, bpy.data.meshes), (bpy.types.Image, bpy.data.images),
             (bpy.types.Material, bpy.data.materials), (bpy.types.NodeTree, bpy.data.node_groups),
             (bpy.types.Collection, bpy.data.collections))
    for idb in reversed(created):
        for kind, coll in kinds:
            try:
                if isinstance(idb, kind):
                    coll.remove(idb)
                    break
            except ReferenceError:
                break


def import_prepared(context, prepared: PreparedPhotos, name: str) -> ImportedPhotos:
    """Add a collection `name` with one camera per view, the points and the box; set the render size.

    All or nothing: on any error the datablocks made so far are removed and the scene's render settings restored.
    """
    scene = context.scene
    render = scene.render
    saved = (render.resolution_x, render.resolution_y, render.resolution_percentage,
             render.pixel_aspect_x, render.pixel_aspect_y)
    created: list = []
    try:
        setup = render_setup(prepared.views)
        coll = bpy.data.collections.new(name)
        created.append(coll)
        scene.collection.children.link(coll)
        render.resolution_x, render.resolution_y, render.resolution_percentage = setup.width, setup.height, 100
        render.pixel_aspect_x, render.pixel_aspect_y = setup.pixel_aspect_x, setup.pixel_aspect_y
        scale = scene_scale(prepared)
        cameras = []
        for view in prepared.views:
            if view.name not in setup.kept:
                continue
            cam = add_camera(view, setup, coll, created)
            cam["photomesh_view"] = view.name
            cam.data.display_size = 0.08 * scale
            cam.data.clip_start = 0.001 * scale
            cam.data.clip_end = 1000.0 * scale
            add_backgrounds(cam, view, created)
            cameras.append(cam)
        points = None
        if len(prepared.points):
            points = add_points(f"{name} points", prepared.points, prepared.colors, coll, created)
            add_point_display(points, POINT_RADIUS * scale, created)
        box_range = fallback_bbox(prepared)
        box = add_box(f"{name} bounds", box_range[0], box_range[1], coll, created) if box_range else None
        floor = prepared_floor(prepared.sfm)
        if box is not None and floor is not None:
            box[FLOOR_PROP] = floor  # Reconstruct sets the mesh down on it (world coordinates, not the box's)
        mask_folder = camera_mask_folder(prepared, cameras)
        configure_reconstruct(scene, name, cameras, box, mask_folder)
    except BaseException:
        remove_created(created)
        (render.resolution_x, render.resolution_y, render.resolution_percentage,
         render.pixel_aspect_x, render.pixel_aspect_y) = saved
        raise
    return ImportedPhotos(coll, cameras, points, box, mask_folder, sfm_summary(prepared.sfm, len(prepared.views)),
                          sfm_problems(prepared.sfm, setup.left_out))
