"""Compare Meshes (active = reference, selected = compared): metrics, heatmap, report export."""
from __future__ import annotations

import json
import time
from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix

from . import compare_math as cm

HEAT_ATTRIBUTE = "photomesh_distance"
VALUE_ATTRIBUTE = "photomesh_distance_value"


class PHOTOMESH_PG_compare(bpy.types.PropertyGroup):
    """Compare settings shown in the panel and the last result."""

    align: bpy.props.BoolProperty(name="Align first", default=False,
                                  description="Rigidly align the compared mesh to the reference (PCA, then ICP)")
    scale: bpy.props.BoolProperty(name="Allow scale", default=False,
                                  description="Let the alignment change the uniform scale too")
    outer: bpy.props.BoolProperty(name="Outer surface only", default=False,
                                  description="Measure against the reference's outer surface: its parts buried "
                                              "inside its own solid (overlapping parts of CAD or sculpted models, "
                                              "which no camera sees) are left out of the distances, alignment and "
                                              "heatmap; IoU stays of the whole solid. Slower on large references")
    fscore_threshold: bpy.props.FloatProperty(name="F-score threshold", default=1.0, min=0.001, max=100.0,
                                              subtype="PERCENTAGE", precision=3,
                                              description="Distance threshold, in % of the reference's bounding-box diagonal")
    n_samples: bpy.props.IntProperty(name="Samples", default=cm.DEFAULT_SAMPLES, min=1000, max=10_000_000,
                                     description="Surface samples per mesh")
    heat_max: bpy.props.FloatProperty(name="Heatmap max", default=0.0, min=0.0, subtype="DISTANCE",
                                      description="Distance shown in red; 0: the 99th percentile")
    result: bpy.props.StringProperty(name="Result", default="", options={"HIDDEN"},
                                     description="JSON of the last comparison")


def compare_selection(context) -> tuple[bpy.types.Object, bpy.types.Object, list[str]]:
    """(reference, compared, ignored non-mesh names) from the selection; ValueError if unusable."""
    ref = context.active_object
    selected = list(context.selected_objects)
    ignored = [o.name for o in selected if o.type != "MESH"]
    if ref is None or ref.type != "MESH":
        raise ValueError("the active object must be a mesh: it is the reference")
    others = [o for o in selected if o.type == "MESH" and o != ref]
    if not others:
        raise ValueError("select two meshes: the compared one, then the reference as the active object")
    if len(others) > 1:
        raise ValueError(f"select exactly two meshes ({len(others) + 1} are selected)")
    return ref, others[0], ignored


def paint_heatmap(mesh: bpy.types.Mesh, distances: np.ndarray, vmax: float) -> None:
    """Per-vertex distance as a colour attribute (and a float attribute), made active."""
    for name in (HEAT_ATTRIBUTE, VALUE_ATTRIBUTE):
        old = mesh.attributes.get(name)
        if old is not None:
            mesh.attributes.remove(old)
    colours = mesh.color_attributes.new(HEAT_ATTRIBUTE, "FLOAT_COLOR", "POINT")
    colours.data.foreach_set("color", cm.colormap(distances, vmax).ravel())
    values = mesh.attributes.new(VALUE_ATTRIBUTE, "FLOAT", "POINT")
    values.data.foreach_set("value", distances.astype(np.float32))
    colours = mesh.color_attributes[HEAT_ATTRIBUTE]
    mesh.color_attributes.active_color = colours
    if hasattr(mesh.color_attributes, "render_color_index"):
        mesh.color_attributes.render_color_index = mesh.color_attributes.active_color_index
    mesh.update()


def show_vertex_colours(screens) -> int:
    """Switch every 3D viewport to solid shading with attribute colours; how many were switched."""
    count = 0
    for screen in screens:
        for area in screen.areas:
            for space in area.spaces:
                if space.type == "VIEW_3D":
                    space.shading.type = "SOLID"
                    space.shading.color_type = "VERTEX"
                    count += 1
    return count


def run_compare(ref: bpy.types.Object, cmp_obj: bpy.types.Object, align: bool = False, scale: bool = False,
                fscore_threshold: float = 0.01, n_samples: int = cm.DEFAULT_SAMPLES, heat_max: float = 0.0,
                outer: bool = False) -> dict:
    """Compare two mesh objects in world space, align/paint the compared one, return the report; `outer`: against
    the reference's outer surface only (its parts buried inside its own solid left out)."""
    t0, c0 = time.perf_counter(), time.process_time()
    va, fa = cm.mesh_arrays(ref.data, ref.matrix_world)
    vb, fb = cm.mesh_arrays(cmp_obj.data, cmp_obj.matrix_world)
    cm.check_mesh(va, fa, f"reference '{ref.name}'")
    cm.check_mesh(vb, fb, f"compared '{cmp_obj.name}'")
    t_outer, c_outer = time.perf_counter(), time.process_time()
    seen, fraction = cm.reference_faces(va, fa, outer)
    t_outer, c_outer = time.perf_counter() - t_outer, time.process_time() - c_outer
    query_a = cm.SurfaceQuery(va, seen)
    transform = np.eye(4)
    if align:
        transform = cm.align_arrays(vb, fb, va, seen, scale=scale, query_ref=query_a)
        cmp_obj.matrix_world = Matrix(transform.tolist()) @ cmp_obj.matrix_world
        vb = cm.apply(transform, vb)
    t1, c1 = time.perf_counter(), time.process_time()
    report = cm.compare_arrays(va, fa, vb, fb, fscore_threshold, n_samples, query_a=query_a,
                               reference=(seen, fraction))
    t2, c2 = time.perf_counter(), time.process_time()
    dist = query_a.nearest(vb)[0]
    vmax = heat_max if heat_max > 0 else cm.heat_range(dist)
    paint_heatmap(cmp_obj.data, dist, vmax)
    report.update({
        "reference": ref.name, "compared": cmp_obj.name, "aligned": align, "scaled": scale and align,
        "reference_outer": outer, "buried_area_fraction": fraction,
        "transform": transform.tolist(), "heat_min": 0.0, "heat_max": vmax,
        "time_align_s": t1 - t0, "time_metrics_s": t2 - t1, "time_heatmap_s": time.perf_counter() - t2,
        "cpu_align_s": c1 - c0, "cpu_metrics_s": c2 - c1, "cpu_heatmap_s": time.process_time() - c2,
        "time_outer_s": t_outer, "cpu_outer_s": c_outer,  # part of the align (preparation) time
        "faces_reference": int(len(fa)), "faces_compared": int(len(fb)),
    })
    return report


def _settings(context) -> PHOTOMESH_PG_compare:
    """The scene's compare settings."""
    return context.scene.photomesh_compare


class PHOTOMESH_OT_compare_meshes(bpy.types.Operator):
    """Measure the distance between the selected mesh and the active (reference) mesh, and paint it"""

    bl_idname = "photomesh.compare_meshes"
    bl_label = "Compare Meshes"
    bl_options = {"REGISTER", "UNDO"}

    align: bpy.props.BoolProperty(name="Align first", default=False)
    scale: bpy.props.BoolProperty(name="Allow scale", default=False)
    outer: bpy.props.BoolProperty(name="Outer surface only", default=False,
                                  description="Measure against the reference's outer surface only (its parts "
                                              "buried inside its own solid left out)")
    fscore_threshold: bpy.props.FloatProperty(name="F-score threshold", default=1.0, min=0.001, max=100.0,
                                              subtype="PERCENTAGE", precision=3)
    n_samples: bpy.props.IntProperty(name="Samples", default=cm.DEFAULT_SAMPLES, min=1000, max=10_000_000)
    heat_max: bpy.props.FloatProperty(name="Heatmap max", default=0.0, min=0.0, subtype="DISTANCE")

    def invoke(self, context, event):
        """Take the settings from the panel, then run."""
        s = _settings(context)
        for key in ("align", "scale", "outer", "fscore_threshold", "n_samples", "heat_max"):
            setattr(self, key, getattr(s, key))
        return self.execute(context)

    def execute(self, context):
        """Compare, store the report in the scene, switch the viewport to the heatmap."""
        try:
            ref, cmp_obj, ignored = compare_selection(context)
            report = run_compare(ref, cmp_obj, self.align, self.scale, self.fscore_threshold / 100.0,
                                 self.n_samples, self.heat_max, self.outer)
        except (ValueError, cm.MeshInputError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        if ignored:
            self.report({"WARNING"}, "ignored non-mesh object(s): " + ", ".join(ignored))
        if report["iou_note"]:
            self.report({"WARNING"}, report["iou_note"])
        _settings(context).result = json.dumps(report)
        show_vertex_colours(bpy.data.screens)
        outer = f" (outer surface: {report['buried_area_fraction']:.1%} of the area buried, left out)" \
            if report["reference_outer"] else ""
        self.report({"INFO"}, f"Chamfer-L1 {report['chamfer_l1_norm']:.3%} of diagonal, "
                              f"Hausdorff {report['hausdorff_norm']:.3%}, F-score {report['fscore']:.3f}{outer}")
        return {"FINISHED"}


class PHOTOMESH_OT_export_compare_report(bpy.types.Operator):
    """Write the last comparison to a JSON or CSV file"""

    bl_idname = "photomesh.export_compare_report"
    bl_label = "Export Report"

    filepath: bpy.props.StringProperty(subtype="FILE_PATH")
    filter_glob: bpy.props.StringProperty(default="*.json;*.csv", options={"HIDDEN"})

    @classmethod
    def poll(cls, context):
        """Only after a comparison."""
        return bool(context.scene.photomesh_compare.result)

    def invoke(self, context, event):
        """Open the file browser."""
        if not self.filepath:
            self.filepath = "compare_report.json"
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        """Write JSON (default) or CSV, chosen by the file's extension."""
        report = json.loads(_settings(context).result)
        path = cm.write_report(Path(bpy.path.abspath(self.filepath)), report)
        self.report({"INFO"}, f"Report written to {path}")
        return {"FINISHED"}


CLASSES = (PHOTOMESH_PG_compare, PHOTOMESH_OT_compare_meshes, PHOTOMESH_OT_export_compare_report)


def register_extra() -> None:
    """Scene.photomesh_compare: settings and last result."""
    bpy.types.Scene.photomesh_compare = bpy.props.PointerProperty(type=PHOTOMESH_PG_compare)


def unregister_extra() -> None:
    """Remove Scene.photomesh_compare."""
    del bpy.types.Scene.photomesh_compare
