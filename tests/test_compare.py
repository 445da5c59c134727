"""Compare Meshes in Blender (bpy as a module): metrics, heatmap, alignment, bad input, parity with the backend."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
import trimesh  # noqa: E402

from backend.mesh.metrics import compare_files, compare_meshes  # noqa: E402
from blender_addon import compare_math as cm  # noqa: E402
from blender_addon import ops_compare, panel_eval  # noqa: E402
from blender_helpers import add_mesh, registered_scene  # noqa: E402


@pytest.fixture()
def scene():
    """A factory-fresh scene with the compare classes registered."""
    yield from registered_scene(ops_compare.CLASSES + panel_eval.CLASSES, "photomesh_compare", ops_compare)


def select(active: bpy.types.Object, *others: bpy.types.Object) -> None:
    """Select `others` and `active`, making `active` the active object."""
    for o in bpy.context.scene.objects:
        o.select_set(False)
    for o in (active, *others):
        o.select_set(True)
    bpy.context.view_layer.objects.active = active


def bumpy_sphere() -> trimesh.Trimesh:
    """An icosphere with a smooth bump, a closed mesh unlike the plain sphere."""
    s = trimesh.creation.icosphere(4)
    v = s.vertices * (1.0 + 0.05 * np.sin(3 * s.vertices[:, :1]) * np.cos(2 * s.vertices[:, 1:2]))
    return trimesh.Trimesh(v, s.faces, process=False)


def test_matches_backend_metrics_on_arrays(scene) -> None:
    ref = trimesh.creation.icosphere(4)
    other = bumpy_sphere()
    a = add_mesh("ref", ref.vertices, ref.faces)
    b = add_mesh("cmp", other.vertices, other.faces)
    select(a, b)
    assert bpy.ops.photomesh.compare_meshes(n_samples=20000) == {"FINISHED"}
    got = json.loads(scene.photomesh_compare.result)
    want = compare_meshes(ref.vertices, ref.faces, other.vertices, other.faces, n_samples=20000)
    for key in ("chamfer_l1", "chamfer_l2", "hausdorff", "fscore", "normal_consistency", "iou", "diag"):
        assert got[key] == pytest.approx(want[key], rel=0.01), key


def test_matches_backend_on_files(scene, shared_meshes, tmp_path) -> None:
    spot = trimesh.load(shared_meshes / "spot.obj", process=False)
    noisy = spot.copy()
    rng = np.random.default_rng(1)
    noisy.vertices = noisy.vertices + rng.normal(scale=0.004, size=noisy.vertices.shape)
    path_b = tmp_path / "noisy.obj"
    noisy.export(path_b)
    want = compare_files(shared_meshes / "spot.obj", path_b, n_samples=30000)
    bpy.ops.wm.obj_import(filepath=str(shared_meshes / "spot.obj"), forward_axis="Y", up_axis="Z")
    a = bpy.context.selected_objects[0]
    bpy.ops.wm.obj_import(filepath=str(path_b), forward_axis="Y", up_axis="Z")
    b = bpy.context.selected_objects[0]
    select(a, b)
    assert bpy.ops.photomesh.compare_meshes(n_samples=30000) == {"FINISHED"}
    got = json.loads(scene.photomesh_compare.result)
    for key in ("chamfer_l1", "chamfer_l2", "hausdorff", "fscore", "normal_consistency", "diag"):
        assert got[key] == pytest.approx(want[key], rel=0.01), key


def test_heatmap_viewport_and_legend(scene) -> None:
    ref = trimesh.creation.box(extents=(1, 1, 1))
    other = trimesh.creation.box(extents=(1, 1, 1.2)).subdivide().subdivide()
    a = add_mesh("ref", ref.vertices, ref.faces)
    b = add_mesh("cmp", other.vertices, other.faces)
    select(a, b)
    assert bpy.ops.photomesh.compare_meshes(n_samples=5000, heat_max=0.1) == {"FINISHED"}
    report = json.loads(scene.photomesh_compare.result)
    assert report["heat_min"] == 0.0 and report["heat_max"] == pytest.approx(0.1)
    me = b.data
    assert me.color_attributes.active_color.name == ops_compare.HEAT_ATTRIBUTE
    values = np.empty(len(me.vertices), dtype=np.float32)
    me.attributes[ops_compare.VALUE_ATTRIBUTE].data.foreach_get("value", values)
    z = np.array([v.co.z for v in me.vertices])
    assert np.allclose(values, np.maximum(np.abs(z) - 0.5, 0.0), atol=1e-5)
    colours = np.empty(len(me.vertices) * 4, dtype=np.float32)
    me.color_attributes[ops_compare.HEAT_ATTRIBUTE].data.foreach_get("color", colours)
    colours = colours.reshape(-1, 4)
    top = int(np.argmax(values))
    assert np.allclose(colours[top, :3], cm.colormap(np.array([1.0]), 1.0)[0, :3])
    views = [s for scr in bpy.data.screens for ar in scr.areas for s in ar.spaces if s.type == "VIEW_3D"]
    assert views and all(s.shading.color_type == "VERTEX" for s in views)
    assert report["iou"] == pytest.approx(1 / 1.2, abs=0.02)


def test_alignment_moves_compared_object(scene) -> None:
    m = trimesh.creation.capsule(height=1.0, radius=0.3)
    m.vertices[:, 0] *= 1.6
    a = add_mesh("ref", m.vertices, m.faces)
    b = add_mesh("cmp", m.vertices, m.faces)
    b.location = (0.4, -0.3, 0.2)
    b.rotation_euler = (0.3, 0.5, -0.4)
    select(a, b)
    assert bpy.ops.photomesh.compare_meshes(align=True, n_samples=10000) == {"FINISHED"}
    report = json.loads(scene.photomesh_compare.result)
    assert report["hausdorff_norm"] < 0.005
    assert np.allclose(np.array(b.matrix_world), np.eye(4), atol=3e-3)


def test_bad_input_is_reported(scene) -> None:
    s = trimesh.creation.icosphere(2)
    a = add_mesh("ref", s.vertices, s.faces)
    empty = add_mesh("empty", np.zeros((0, 3)), np.zeros((0, 3), dtype=int))
    cloud = add_mesh("cloud", s.vertices, np.zeros((0, 3), dtype=int))
    lamp = bpy.data.objects.new("lamp", bpy.data.lights.new("lamp", "POINT"))
    scene.collection.objects.link(lamp)
    select(lamp, a)
    with pytest.raises(RuntimeError, match="active object must be a mesh"):
        bpy.ops.photomesh.compare_meshes()
    select(a)
    with pytest.raises(RuntimeError, match="select two meshes"):
        bpy.ops.photomesh.compare_meshes()
    select(a, empty)
    with pytest.raises(RuntimeError, match="empty"):
        bpy.ops.photomesh.compare_meshes()
    select(a, cloud)
    with pytest.raises(RuntimeError, match="point cloud"):
        bpy.ops.photomesh.compare_meshes()
    assert scene.photomesh_compare.result == ""


def test_open_mesh_skips_iou_and_keeps_other_metrics(scene) -> None:
    s = trimesh.creation.icosphere(3)
    a = add_mesh("ref", s.vertices, s.faces)
    b = add_mesh("open", s.vertices, s.faces[10:])
    lamp = bpy.data.objects.new("lamp", bpy.data.lights.new("lamp", "POINT"))
    scene.collection.objects.link(lamp)
    select(a, b, lamp)
    assert bpy.ops.photomesh.compare_meshes(n_samples=5000) == {"FINISHED"}
    report = json.loads(scene.photomesh_compare.result)
    assert report["iou"] is None and "closed" in report["iou_note"]
    assert report["closed_a"] and not report["closed_b"] and report["fscore"] > 0.9


def test_export_report_json_and_csv(scene, tmp_path) -> None:
    s = trimesh.creation.icosphere(2)
    a = add_mesh("ref", s.vertices, s.faces)
    b = add_mesh("cmp", s.vertices * 1.01, s.faces)
    select(a, b)
    bpy.ops.photomesh.compare_meshes(n_samples=5000)
    assert bpy.ops.photomesh.export_compare_report(filepath=str(tmp_path / "r")) == {"FINISHED"}
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["chamfer_l1"] == pytest.approx(0.01, rel=0.05)
    bpy.ops.photomesh.export_compare_report(filepath=str(tmp_path / "r.csv"))
    rows = dict(csv.reader((tmp_path / "r.csv").open()))
    assert float(rows["chamfer_l1"]) == pytest.approx(data["chamfer_l1"])
    assert rows["metric"] == "value" and len(rows["transform"].split()) == 16


def joined(*meshes: trimesh.Trimesh) -> trimesh.Trimesh:
    """Meshes concatenated into one triangle soup, as an assembly's file holds its parts."""
    return trimesh.Trimesh(np.concatenate([m.vertices for m in meshes]),
                           np.concatenate([m.faces + sum(len(p.vertices) for p in meshes[:i])
                                           for i, m in enumerate(meshes)]), process=False)


def two_overlapping_spheres() -> tuple[trimesh.Trimesh, trimesh.Trimesh]:
    """Unit icospheres one radius apart (a quarter of the area inside the other sphere), and their outer shell:
    the triangles whose centroid lies outside the other sphere."""
    a = trimesh.creation.icosphere(4)
    both = joined(a, trimesh.Trimesh(a.vertices + (1.0, 0.0, 0.0), a.faces, process=False))
    centroids = both.vertices[both.faces].mean(axis=1)
    other = np.where(np.arange(len(both.faces)) < len(a.faces), np.linalg.norm(centroids - (1, 0, 0), axis=1),
                     np.linalg.norm(centroids, axis=1))
    return both, trimesh.Trimesh(both.vertices, both.faces[other > 1.0], process=False)


class Recorder:
    """A stand-in for a panel's UILayout (Blender draws no panels without a window): records every call."""

    def __init__(self, calls: list) -> None:
        """Share the call list with the sub-layouts."""
        self.calls = calls

    def __getattr__(self, name: str):
        """Any layout method: record (name, args, kwargs), return a sub-layout."""
        def call(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            return Recorder(self.calls)
        return call


def test_outer_surface_only_scores_the_shell_of_an_assembly(scene) -> None:
    ref, shell = two_overlapping_spheres()
    a = add_mesh("assembly", ref.vertices, ref.faces)
    b = add_mesh("shell", shell.vertices, shell.faces)
    select(a, b)
    assert bpy.ops.photomesh.compare_meshes(n_samples=20000) == {"FINISHED"}
    whole = json.loads(scene.photomesh_compare.result)
    assert bpy.ops.photomesh.compare_meshes(n_samples=20000, outer=True) == {"FINISHED"}
    outer = json.loads(scene.photomesh_compare.result)
    assert whole["reference_outer"] is False and whole["buried_area_fraction"] is None
    assert outer["reference_outer"] is True
    assert outer["buried_area_fraction"] == pytest.approx(0.25, abs=0.01)
    assert outer["chamfer_l1_norm"] < 1e-4 and outer["fscore"] > 0.999 and outer["normal_consistency"] > 0.999
    assert whole["chamfer_l1_norm"] > 0.005 and whole["recall"] < 0.9
    assert outer["diag"] == pytest.approx(whole["diag"]) == pytest.approx(np.sqrt(17))
    want = compare_meshes(ref.vertices, ref.faces, shell.vertices, shell.faces, n_samples=20000, outer=True)
    for key in ("chamfer_l1", "hausdorff", "fscore", "normal_consistency", "buried_area_fraction", "diag"):
        assert outer[key] == pytest.approx(want[key], rel=0.01, abs=1e-6), key
    rows = dict(panel_eval.result_lines(outer))
    assert rows["Reference surface"].startswith("outer only (2") and "buried" in rows["Reference surface"]
    assert dict(panel_eval.result_lines(whole))["Reference surface"] == "whole"


def test_outer_heatmap_measures_to_the_outer_surface(scene, tmp_path) -> None:
    """A sphere of radius 0.7 between a unit sphere and a buried one of radius 0.5: 0.2 to the whole reference,
    0.3 to its outer surface; painted, in the panel and in the CSV."""
    outer_sphere, inner = trimesh.creation.icosphere(4), trimesh.creation.icosphere(3, radius=0.5)
    ref = joined(outer_sphere, inner)
    mid = trimesh.creation.icosphere(3, radius=0.7)
    a = add_mesh("ref", ref.vertices, ref.faces)
    b = add_mesh("mid", mid.vertices, mid.faces)
    select(a, b)
    values = np.empty(len(mid.vertices), dtype=np.float32)
    for outer, want in ((False, 0.2), (True, 0.3)):
        assert bpy.ops.photomesh.compare_meshes(n_samples=5000, outer=outer) == {"FINISHED"}
        b.data.attributes[ops_compare.VALUE_ATTRIBUTE].data.foreach_get("value", values)
        assert np.allclose(values, want, atol=0.01), outer
    report = json.loads(scene.photomesh_compare.result)
    assert report["buried_area_fraction"] == pytest.approx(0.2, abs=0.01)  # 0.25 / (1 + 0.25) of the area
    assert report["completeness"] == pytest.approx(0.3, abs=0.01)
    calls: list = []
    scene.photomesh_compare.outer = True
    panel_eval.PHOTOMESH_PT_compare.draw(type("Panel", (), {"layout": Recorder(calls)})(), bpy.context)
    assert ("prop", (scene.photomesh_compare, "outer"), {}) in calls
    labels = [kw.get("text", "") for name, _, kw in calls if name == "label"]
    assert "Reference surface" in labels and any("distance to reference's outer surface" in t for t in labels)
    bpy.ops.photomesh.export_compare_report(filepath=str(tmp_path / "r.csv"))
    rows = dict(csv.reader((tmp_path / "r.csv").open()))
    assert rows["reference_outer"] == "True" and float(rows["buried_area_fraction"]) == pytest.approx(0.2, abs=0.01)
