"""Brings the backend's result (mesh, UVs, texture, symmetry plane) and previews into the scene."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import bpy
import numpy as np

from .camera_refine import RefinedCamera, RunCameras, parse_refined_cameras
from .camera_store import store_refined_cameras
from .job_spec import GatherError
from .mesh_io import MeshData, read_mesh
from .symmetry_plane import add_symmetry_plane

SYMMETRY_PROPERTY = "symmetry_plane"
REFINED_PROPERTY = "photomesh_refined_cameras"


def _path_field(value) -> Optional[str]:
    """A relative path from a result.json field that is a string or a dict with a path."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in ("path", "file", "obj", "png"):
            if isinstance(value.get(key), str):
                return value[key]
    return None


def symmetry_from_result(result: dict) -> Optional[dict]:
    """The symmetry plane {'point', 'normal', 'score'} of result.json, or None."""
    for key in ("symmetry", "symmetry_plane", "plane"):
        value = result.get(key)
        if isinstance(value, dict):
            if "normal" in value and "point" in value:
                return {"point": [float(x) for x in value["point"]], "normal": [float(x) for x in value["normal"]],
                        "score": float(value.get("score", 0.0) or 0.0)}
            inner = symmetry_from_result(value)
            if inner is not None:
                return inner
    return None


def read_result(result_path: Path) -> tuple[dict, Path, Optional[Path]]:
    """(result.json content, mesh path, texture path or None), checking the files exist."""
    result_path = Path(result_path)
    if not result_path.is_file():
        raise GatherError(f"The backend reported a result but {result_path} is missing.",
                          "See the system console for the backend's log.")
    result = json.loads(result_path.read_text(encoding="utf-8"))
    out = result_path.parent
    mesh_rel = _path_field(result.get("mesh")) or _path_field(result.get("mesh_path")) or "mesh.obj"
    mesh_path = out / mesh_rel
    if not mesh_path.is_file():
        raise GatherError(f"The result mesh {mesh_path} is missing.", "See the system console for the backend's log.")
    tex_rel = _path_field(result.get("texture")) or _path_field(result.get("texture_path"))
    tex_path = out / tex_rel if tex_rel else None
    if tex_path is not None and not tex_path.is_file():
        tex_path = None
    return result, mesh_path, tex_path


def mesh_datablock(name: str, data: MeshData) -> "bpy.types.Mesh":
    """A new Blender mesh from triangle arrays, with a 'UVMap' layer when corner UVs are given."""
    v = np.ascontiguousarray(data.vertices, dtype=np.float32)
    f = np.ascontiguousarray(data.faces, dtype=np.int32)
    me = bpy.data.meshes.new(name)
    me.vertices.add(len(v))
    me.vertices.foreach_set("co", v.ravel())
    me.loops.add(3 * len(f))
    me.loops.foreach_set("vertex_index", f.ravel())
    me.polygons.add(len(f))
    me.polygons.foreach_set("loop_start", np.arange(0, 3 * len(f), 3, dtype=np.int32))
    if bpy.app.version < (4, 0, 0):
        me.polygons.foreach_set("loop_total", np.full(len(f), 3, dtype=np.int32))
    me.update(calc_edges=True)
    if data.corner_uv is not None:
        uv = me.uv_layers.new(name="UVMap")
        uv.data.foreach_set("uv", np.ascontiguousarray(data.corner_uv, dtype=np.float32).ravel())
    me.polygons.foreach_set("use_smooth", np.ones(len(f), dtype=bool))
    me.validate(clean_customdata=False)
    me.update()
    return me


def textured_material(name: str, texture: Optional[Path], created: list) -> "bpy.types.Material":
    """A Principled material, with the texture (packed into the .blend) as base colour when given."""
    mat = bpy.data.materials.new(name)
    created.append(mat)
    if bpy.app.version < (5, 0, 0):
        mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = next((n for n in nodes if n.type == "BSDF_PRINCIPLED"), None)
    if bsdf is None:
        bsdf = nodes.new("ShaderNodeBsdfPrincipled")
        out = next(n for n in nodes if n.type == "OUTPUT_MATERIAL")
        links.new(bsdf.outputs[0], out.inputs["Surface"])
    if "Roughness" in bsdf.inputs:
        bsdf.inputs["Roughness"].default_value = 0.8
    if texture is not None:
        img = bpy.data.images.load(str(texture), check_existing=False)
        created.append(img)
        img.name = f"{name}_texture"
        img.pack()
        tex = nodes.new("ShaderNodeTexImage")
        tex.image = img
        tex.location = (bsdf.location[0] - 350, bsdf.location[1])
        links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
    return mat


def _add_symmetry_plane(context, obj, plane: dict) -> None:
    """Store the plane as a custom property and add the plane object (another engineer's module)."""
    obj[SYMMETRY_PROPERTY] = {"point": list(plane["point"]), "normal": list(plane["normal"]),
                              "score": float(plane["score"])}
    add_symmetry_plane(context, obj, plane)


def remove_ids(ids: list) -> None:
    """Remove datablocks (objects, meshes, materials, images) created during a failed import."""
    for idb in reversed(ids):
        try:
            if isinstance(idb, bpy.types.Object):
                bpy.data.objects.remove(idb, do_unlink=True)
            elif isinstance(idb, bpy.types.Mesh):
                bpy.data.meshes.remove(idb)
            elif isinstance(idb, bpy.types.Material):
                bpy.data.materials.remove(idb)
            elif isinstance(idb, bpy.types.Image):
                bpy.data.images.remove(idb)
        except ReferenceError:
            continue


def frame_selected(context) -> None:
    """Frame the selection in every 3D viewport (no-op without a window)."""
    if bpy.app.background or context.window_manager is None or not hasattr(context, "temp_override"):
        return
    for window in context.window_manager.windows:
        for area in window.screen.areas:
            if area.type != "VIEW_3D":
                continue
            region = next((r for r in area.regions if r.type == "WINDOW"), None)
            if region is None:
                continue
            try:
                with context.temp_override(window=window, area=area, region=region):
                    bpy.ops.view3d.view_selected()
            except RuntimeError:
                continue


def refined_cameras_of(result: dict, run: Optional[RunCameras]) -> Optional[tuple[list[RefinedCamera], float]]:
    """result.json's refined cameras mapped to the run's camera objects (None when it has none)."""
    if run is None or "cameras" not in result:
        return None
    try:
        return parse_refined_cameras(result, run.job_views, run.view_cameras)
    except ValueError as exc:
        raise GatherError(f"The result's refined cameras are malformed: {exc}",
                          "The backend wrote a result.json that breaks its contract; see the system console.") from exc


def import_result(context, result_path: Path, name: str, run: Optional[RunCameras] = None) -> "bpy.types.Object":
    """Import result.json's mesh, UVs, material and symmetry plane as one selected object named `name`.

    With the run's cameras (`run`), a result that lists refined cameras also stores them with the scene.
    """
    result, mesh_path, tex_path = read_result(result_path)
    refined = refined_cameras_of(result, run)
    data = read_mesh(mesh_path)
    if tex_path is None and data.texture and Path(data.texture).is_file():
        tex_path = Path(data.texture)
    if len(data.faces) == 0:
        raise GatherError("The backend returned an empty mesh.", "Check the masks and the bounding box.")
    created: list = []
    before_objects = set(bpy.data.objects)
    try:
        me = mesh_datablock(name, data)
        created.append(me)
        obj = bpy.data.objects.new(name, me)
        created.append(obj)
        (context.collection or context.scene.collection).objects.link(obj)
        me.materials.append(textured_material(name, tex_path, created))
        obj["photomesh_result"] = str(result_path)
        plane = symmetry_from_result(result)
        if plane is not None:
            _add_symmetry_plane(context, obj, plane)
        for o in context.view_layer.objects:
            o.select_set(False)
        obj.select_set(True)
        context.view_layer.objects.active = obj
    except Exception:
        created.extend(o for o in bpy.data.objects if o not in before_objects and o not in created)
        remove_ids(created)
        raise
    if refined is not None:
        store_refined_cameras(context.scene, refined[0], refined[1], obj.name)
        obj[REFINED_PROPERTY] = len(refined[0])
    frame_selected(context)
    return obj


class PreviewObject:
    """One preview object whose mesh is replaced by each new preview; survives its deletion by the user."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.object_name: Optional[str] = None

    def _object(self):
        """The preview object if it still exists."""
        return bpy.data.objects.get(self.object_name) if self.object_name else None

    def update(self, context, mesh_path: Path) -> None:
        """Show the mesh at mesh_path (PLY/OBJ) in the preview object, creating it when needed."""
        data = read_mesh(mesh_path)
        me = mesh_datablock(f"{self.name}_mesh", data)
        obj = self._object()
        if obj is None:
            obj = bpy.data.objects.new(self.name, me)
            obj.show_wire = True
            obj.hide_select = True
            context.scene.collection.objects.link(obj)
            self.object_name = obj.name
        else:
            old = obj.data
            obj.data = me
            if old is not None and old.users == 0:
                bpy.data.meshes.remove(old)

    def remove(self) -> None:
        """Delete the preview object and its mesh, if they still exist."""
        obj = self._object()
        if obj is not None:
            me = obj.data
            bpy.data.objects.remove(obj, do_unlink=True)
            if me is not None and me.users == 0:
                bpy.data.meshes.remove(me)
        self.object_name = None
