"""Evaluation panel in the Photomesh sidebar tab: Clean Up CAD Mesh and Compare Meshes."""
from __future__ import annotations

import json

import bpy

LEGEND = ("dark blue", "blue", "green", "yellow", "red")
REPORT_LINES = 40


def report_icon(line: str) -> str:
    """Icon for a clean-up report line: warnings (a step undone) and holes left open stand out."""
    text = line.strip()
    if text.startswith("WARNING"):
        return "ERROR"
    if text.startswith("Holes left open") and not text.endswith("none"):
        return "INFO"
    return "NONE"


def format_distance(value: float) -> str:
    """A distance with 4 significant digits."""
    return f"{value:.4g}"


def result_lines(report: dict) -> list[tuple[str, str]]:
    """(label, value) lines of a comparison report for the panel."""
    lines = [
        ("Reference", report.get("reference", "")),
        ("Compared", report.get("compared", "")),
        ("Chamfer L1", f"{format_distance(report['chamfer_l1'])}  ({report['chamfer_l1_norm']:.4%} diag)"),
        ("Chamfer L2", f"{format_distance(report['chamfer_l2'])}  ({report['chamfer_l2_norm']:.3e} diag²)"),
        ("Hausdorff", f"{format_distance(report['hausdorff'])}  ({report['hausdorff_norm']:.4%} diag)"),
        (f"F-score @{report['fscore_threshold_rel']:.2%}",
         f"{report['fscore']:.4f}  (P {report['precision']:.3f}, R {report['recall']:.3f})"),
        ("Normal consistency", f"{report['normal_consistency']:.4f}"),
        ("Volume IoU", "skipped (needs closed meshes)" if report.get("iou") is None else f"{report['iou']:.4f}"),
        ("Reference surface", f"outer only ({report['buried_area_fraction']:.2%} of its area buried, left out)"
         if report.get("reference_outer") else "whole"),
    ]
    return lines


class PHOTOMESH_PT_evaluation(bpy.types.Panel):
    """Clean up ground-truth meshes and compare meshes."""

    bl_label = "Evaluation"
    bl_idname = "PHOTOMESH_PT_evaluation"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Photomesh"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        """Clean-up button and its last report."""
        layout = self.layout
        meshes = [o for o in context.selected_objects if o.type == "MESH"]
        col = layout.column()
        col.operator("photomesh.cleanup_cad_mesh", icon="BRUSH_DATA")
        if not meshes:
            col.label(text="Select the mesh(es) to clean", icon="INFO")
        last = getattr(context.scene, "photomesh_cleanup_report", "")
        if last:
            box = layout.box()
            for line in last.splitlines()[:REPORT_LINES]:
                box.label(text=line, icon=report_icon(line))


class PHOTOMESH_PT_compare(bpy.types.Panel):
    """Distances between the active (reference) and the selected mesh."""

    bl_label = "Compare Meshes"
    bl_idname = "PHOTOMESH_PT_compare"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Photomesh"
    bl_parent_id = "PHOTOMESH_PT_evaluation"

    def draw(self, context):
        """Settings, button, numbers and heatmap legend."""
        layout = self.layout
        s = context.scene.photomesh_compare
        col = layout.column(align=True)
        col.prop(s, "align")
        sub = col.row()
        sub.enabled = s.align
        sub.prop(s, "scale")
        col.prop(s, "outer")
        col.prop(s, "fscore_threshold")
        col.prop(s, "n_samples")
        col.prop(s, "heat_max")
        layout.label(text="Active object = reference", icon="INFO")
        layout.operator("photomesh.compare_meshes", icon="MOD_MESHDEFORM")
        if not s.result:
            return
        report = json.loads(s.result)
        box = layout.box()
        grid = box.grid_flow(columns=2, even_columns=False)
        for label, value in result_lines(report):
            grid.label(text=label)
            grid.label(text=value)
        if report.get("iou_note"):
            box.label(text=report["iou_note"], icon="ERROR")
        legend = layout.box()
        target = "reference's outer surface" if report.get("reference_outer") else "reference"
        legend.label(text=f"Heatmap (distance to {target})", icon="COLOR")
        vmax = report["heat_max"]
        for i, name in enumerate(LEGEND):
            legend.label(text=f"{name}: {format_distance(vmax * i / (len(LEGEND) - 1))}"
                              + ("+" if i == len(LEGEND) - 1 else ""))
        layout.operator("photomesh.export_compare_report", icon="EXPORT")


CLASSES = (PHOTOMESH_PT_evaluation, PHOTOMESH_PT_compare)
