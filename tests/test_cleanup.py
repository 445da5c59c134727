"""Clean Up CAD Mesh in Blender: each defect of a generated dirty mesh is gone; real meshes from ../shared."""
from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
import bmesh  # noqa: E402
import trimesh  # noqa: E402

from blender_addon import compare_math as cm  # noqa: E402
from blender_addon import ops_cleanup, panel_eval  # noqa: E402
from blender_helpers import add_mesh, registered_scene  # noqa: E402


@pytest.fixture()
def scene():
    """An empty scene with the clean-up classes registered."""
    yield from registered_scene(ops_cleanup.CLASSES, "photomesh_cleanup_report", ops_cleanup)


def select_only(*objs) -> None:
    """Select exactly `objs`, the first one active."""
    for o in bpy.context.scene.objects:
        o.select_set(False)
    for o in objs:
        o.select_set(True)
    bpy.context.view_layer.objects.active = objs[0]


def dirty_mesh() -> tuple[np.ndarray, list[list[int]]]:
    """A 2 m box as triangle soup with a flipped patch, a hole, slivers, a hidden inner box and a fragment."""
    outer = trimesh.creation.box(extents=(2, 2, 2)).subdivide().subdivide()
    tris = outer.vertices[outer.faces]
    centres = tris.mean(axis=1)
    hole = np.flatnonzero((centres[:, 2] > 0.99) & (np.abs(centres[:, 0]) < 0.25) & (np.abs(centres[:, 1]) < 0.25))
    keep = np.setdiff1d(np.arange(len(tris)), hole)
    flipped = set(np.flatnonzero(centres[:, 0] > 0.99).tolist())
    verts, faces = [], []
    for i in keep:
        t = tris[i][::-1] if i in flipped else tris[i]
        faces.append([len(verts), len(verts) + 1, len(verts) + 2])
        verts.extend(t)
    a, b = outer.vertices[outer.faces[0][0]], outer.vertices[outer.faces[0][1]]
    for _ in range(3):
        faces.append([len(verts), len(verts) + 1, len(verts) + 2])
        verts.extend([a, b, 0.5 * (a + b)])
    inner = trimesh.creation.box(extents=(0.5, 0.5, 0.5))
    faces.extend((inner.faces + len(verts)).tolist())
    verts.extend(inner.vertices)
    frag = np.array([[3.0, 0, 0], [3.02, 0, 0], [3.0, 0.02, 0]])
    faces.append([len(verts), len(verts) + 1, len(verts) + 2])
    verts.extend(frag)
    return np.array(verts), faces


def bm_of(obj) -> bmesh.types.BMesh:
    """A bmesh copy of the object's mesh, normals updated."""
    bm = bmesh.new()
    bm.from_mesh(obj.data)
    bm.normal_update()
    return bm


def test_each_defect_is_gone(scene) -> None:
    v, f = dirty_mesh()
    obj = add_mesh("dirty", v, f)
    select_only(obj)
    before = bm_of(obj)
    co = np.array([x.co for x in before.verts])
    assert len(np.unique(co.round(9), axis=0)) < len(co)
    assert any(g.calc_area() < 1e-12 for g in before.faces)
    assert any(len(e.link_faces) == 1 for e in before.edges)
    assert bpy.ops.photomesh.cleanup_cad_mesh() == {"FINISHED"}
    bm = bm_of(obj)
    co = np.array([x.co for x in bm.verts])
    assert len(np.unique(co.round(6), axis=0)) == len(co), "duplicate vertices remain"
    assert min(g.calc_area() for g in bm.faces) > 1e-9, "zero-area faces remain"
    assert all(len(e.link_faces) == 2 for e in bm.edges), "a hole or open edge remains"
    assert np.abs(co).max() <= 1.0 + 1e-6, "the stray fragment remains"
    assert np.abs(co).max(axis=1).min() > 0.99, "the inner box remains"
    for g in bm.faces:
        assert g.normal.dot(g.calc_center_median()) > 0, "a face points inwards"
    assert all(len(g.verts) == 3 for g in bm.faces)
    report = scene.photomesh_cleanup_report
    assert "vertices merged 0" not in report and "holes filled 0" not in report
    assert "interior faces removed 12" in report and "small parts removed 1" in report


def test_keep_largest_parts(scene) -> None:
    a = trimesh.creation.box(extents=(2, 2, 2))
    b = trimesh.creation.box(extents=(0.5, 0.5, 0.5))
    b.apply_translation([3, 0, 0])
    obj = add_mesh("two", np.vstack([a.vertices, b.vertices]), np.vstack([a.faces, b.faces + 8]))
    select_only(obj)
    assert bpy.ops.photomesh.cleanup_cad_mesh(keep_largest=1, loose=False) == {"FINISHED"}
    assert len(obj.data.vertices) == 8 and "parts removed 1" in scene.photomesh_cleanup_report


def test_cleanup_leaves_no_scratch_data(scene) -> None:
    v, f = dirty_mesh()
    obj = add_mesh("dirty", v, f)
    select_only(obj)
    meshes, objects = len(bpy.data.meshes), len(bpy.data.objects)
    assert bpy.ops.photomesh.cleanup_cad_mesh(remesh=True, decimate=True, target_faces=500) == {"FINISHED"}
    assert "UNDO" in ops_cleanup.PHOTOMESH_OT_cleanup_cad_mesh.bl_options
    assert (len(bpy.data.meshes), len(bpy.data.objects)) == (meshes, objects)


def test_symmetrize_and_decimate(scene) -> None:
    s = trimesh.creation.icosphere(4)
    v = s.vertices.copy()
    v[v[:, 0] < 0, 0] *= 1.5
    obj = add_mesh("lopsided", v, s.faces)
    select_only(obj)
    assert bpy.ops.photomesh.cleanup_cad_mesh(symmetrize=True, decimate=True, target_faces=1000,
                                              interior=False) == {"FINISHED"}
    va, fa = cm.mesh_arrays(obj.data)
    assert "faces after 1000" in scene.photomesh_cleanup_report
    assert 900 <= len(fa) <= 1400
    assert va[:, 0].min() == pytest.approx(-va[:, 0].max(), rel=1e-4)


def test_teapot_becomes_watertight(scene, shared_meshes) -> None:
    bpy.ops.wm.obj_import(filepath=str(shared_meshes / "teapot.obj"))
    obj = bpy.context.selected_objects[0]
    assert not cm.is_closed(*cm.mesh_arrays(obj.data))
    select_only(obj)
    assert bpy.ops.photomesh.cleanup_cad_mesh(remesh=True, voxel_size=0.01) == {"FINISHED"}
    va, fa = cm.mesh_arrays(obj.data)
    assert len(fa) > 1000 and cm.is_closed(va, fa)
    assert "open edges 0" in scene.photomesh_cleanup_report


def test_clean_fandisk_keeps_its_geometry(scene, shared_meshes) -> None:
    bpy.ops.wm.obj_import(filepath=str(shared_meshes / "fandisk.obj"))
    obj = bpy.context.selected_objects[0]
    va, fa = cm.mesh_arrays(obj.data)
    select_only(obj)
    assert bpy.ops.photomesh.cleanup_cad_mesh() == {"FINISHED"}
    vb, fb = cm.mesh_arrays(obj.data)
    r = cm.compare_arrays(va, fa, vb, fb, n_samples=20000)
    assert r["hausdorff_norm"] < 1e-4
    assert cm.is_closed(vb, fb)


def test_panel_classes_register(scene) -> None:
    mine = [c for c in panel_eval.CLASSES if not getattr(c, "is_registered", False)]
    for cls in mine:
        bpy.utils.register_class(cls)
    for cls in reversed(mine):
        bpy.utils.unregister_class(cls)
    report = {"reference": "a", "compared": "b", "chamfer_l1": 1.0, "chamfer_l1_norm": 0.01,
              "chamfer_l2": 1.0, "chamfer_l2_norm": 1e-4, "hausdorff": 2.0,
              "hausdorff_norm": 0.02, "fscore_threshold_rel": 0.01, "fscore": 0.9,
              "precision": 0.9, "recall": 0.9, "normal_consistency": 0.99, "iou": None}
    assert dict(panel_eval.result_lines(report))["Volume IoU"].startswith("skipped")
    assert dict(panel_eval.result_lines({**report, "iou": 0.5}))["Volume IoU"] == "0.5000"
