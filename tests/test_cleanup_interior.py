"""Clean Up CAD Mesh never damages a good mesh (issue 13), in real Blender: closed shapes with crevices keep
every face, nested shells and internal walls go, a step that makes a closed mesh worse is undone and named,
the holes left open are listed and large fills follow the surface."""
from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
import bmesh  # noqa: E402

import cleanup_shapes as shapes  # noqa: E402
from blender_addon import cleanup_steps, ops_cleanup  # noqa: E402
from blender_helpers import add_mesh, registered_scene  # noqa: E402


@pytest.fixture()
def scene():
    """An empty scene with the clean-up classes registered."""
    yield from registered_scene(ops_cleanup.CLASSES, "photomesh_cleanup_report", ops_cleanup)


def cleaned(name: str, v: np.ndarray, f: np.ndarray, **settings) -> tuple[bmesh.types.BMesh, str]:
    """Add the mesh, run the operator on it alone, return its bmesh and the report."""
    obj = add_mesh(name, v, f)
    for o in bpy.context.scene.objects:
        o.select_set(o is obj)
    bpy.context.view_layer.objects.active = obj
    assert bpy.ops.photomesh.cleanup_cad_mesh(**settings) == {"FINISHED"}
    bm = bmesh.new()
    bm.from_mesh(obj.data)
    return bm, bpy.context.scene.photomesh_cleanup_report


def area(bm: bmesh.types.BMesh) -> float:
    """Total surface area."""
    return sum(f.calc_area() for f in bm.faces)


def open_and_wall_fill() -> tuple[np.ndarray, np.ndarray]:
    """A sphere with a 64-edge hole (its top cap cut away)."""
    v, f = shapes.uv_sphere(1.0, rings=16, segments=64)
    keep = v[f].mean(axis=1)[:, 2] < 0.8
    return v, f[keep]


@pytest.mark.parametrize("make", [shapes.comb, shapes.torus_knot, shapes.cup])
def test_closed_shapes_with_crevices_lose_no_face(scene, make) -> None:
    v, f = make()
    ref = shapes.triangles(f)[0]
    expected = 0.5 * np.linalg.norm(np.cross(v[ref[:, 1]] - v[ref[:, 0]], v[ref[:, 2]] - v[ref[:, 0]]), axis=1).sum()
    bm, report = cleaned("closed", v, f)
    assert "interior faces removed 0" in report and "WARNING" not in report
    assert cleanup_steps.edge_counts(bm) == (0, 0)
    assert area(bm) == pytest.approx(expected, rel=1e-5)
    bm, report = cleaned("untouched", v, f, triangulate=False)
    assert len(bm.faces) == len(f)


def hanging_comb() -> tuple[np.ndarray, np.ndarray]:
    """A thin-toothed comb hanging with its teeth down the middle of `shapes.comb(teeth=5)`'s slots."""
    occ = np.zeros((36, 12, 44), dtype=np.int64)
    occ[:, :, 36:] = 1
    for x in (5, 13, 21, 29):
        occ[x:x + 2, :, :36] = 1
    v, f = shapes.voxel_surface(occ, 0.025)
    return v + np.array([0.0, 0.0, 0.35]), f


def test_interleaved_closed_parts_keep_their_crevice_faces(scene) -> None:
    va, fa = shapes.comb(teeth=5, depth=10)
    vb, fb = hanging_comb()
    v, f = np.vstack([va, vb]), np.vstack([fa, fb + len(va)])
    bm, report = cleaned("combs", v, f, triangulate=False)
    assert len(bm.faces) == len(f) and "interior faces removed 0" in report


def test_nested_shell_is_removed(scene) -> None:
    v, f = shapes.nested_shells()
    bm, report = cleaned("nested", v, f)
    radii = np.array([x.co.length for x in bm.verts])
    assert "interior faces removed 360" in report
    assert radii.min() > 0.99 and cleanup_steps.edge_counts(bm) == (0, 0)


def test_internal_walls_of_a_merged_assembly_are_removed(scene) -> None:
    v, f = shapes.assembly((3, 2, 2))
    c = v[f].mean(axis=1)
    walls = ((c > v.min(axis=0) + 1e-9) & (c < v.max(axis=0) - 1e-9)).all(axis=1)
    bm, report = cleaned("assembly", v, f, triangulate=False)
    assert f"interior faces removed {walls.sum()}" in report
    assert len(bm.faces) == (~walls).sum()
    assert cleanup_steps.edge_counts(bm) == (0, 0), "the outer surface is closed and manifold"
    edges = np.sort(np.stack([f.ravel(), np.roll(f, -1, axis=1).ravel()], axis=1), axis=1)
    non_manifold = int((np.unique(edges, axis=0, return_counts=True)[1] > 2).sum())
    assert non_manifold > 0 and f"non-manifold edges {non_manifold}->0" in report


def test_a_step_that_makes_a_closed_mesh_worse_is_undone_and_named(scene) -> None:
    v, f = shapes.cup(wall=1)
    settings = {"merge_distance": 0.06, "triangulate": False}
    bm, report = cleaned("guarded", v, f, **settings)
    assert "WARNING: Merge by distance undone: it made the mesh worse" in report
    assert "WARNING: Dissolve degenerate undone: it deleted every face" in report
    assert len(bm.faces) == len(f) and cleanup_steps.edge_counts(bm) == (0, 0)
    bm, report = cleaned("unguarded", v, f, guard=False, **settings)
    assert "WARNING" not in report and cleanup_steps.edge_counts(bm) != (0, 0), "the guard was needed"


def test_holes_left_open_are_listed_with_their_sizes(scene) -> None:
    v, f = open_and_wall_fill()
    bm, report = cleaned("holed", v, f)
    assert "Holes left open: 1 (edges: 64); over the 32-edge limit" in report
    assert cleanup_steps.hole_sizes(bm) == [64]


def test_fill_all_follows_the_surface(scene) -> None:
    v, f = open_and_wall_fill()
    bm, report = cleaned("filled", v, f, fill_all=True)
    assert "Holes left open: none" in report and cleanup_steps.edge_counts(bm) == (0, 0)
    radii = np.array([x.co.length for x in bm.verts])
    top = max(x.co.z for x in bm.verts)
    rim = v[f].mean(axis=1)[:, 2].max()
    assert top > 0.97 > rim, "the patch bulges like the sphere instead of lying flat at the rim"
    assert np.abs(radii - 1.0).max() < 0.05
    assert len(bm.verts) > len(v) + 30, "large fills are refined, not a fan"


def test_hole_sizes_and_edge_counts_on_a_plain_grid(scene) -> None:
    bm = bmesh.new()
    bmesh.ops.create_grid(bm, x_segments=4, y_segments=3, size=1.0)
    assert cleanup_steps.hole_sizes(bm) == [14]
    assert cleanup_steps.edge_counts(bm) == (14, 0)
    bmesh.ops.delete(bm, geom=[bm.faces[:][5]], context="FACES_ONLY")
    assert cleanup_steps.edge_counts(bm) == (18, 0)
    bm.free()


def test_format_holes_and_is_worse() -> None:
    assert ops_cleanup.format_holes([], True, 32) == "Holes left open: none"
    assert ops_cleanup.format_holes([40, 6], False, 32) == "Holes left open: 2 (edges: 40, 6)"
    assert ops_cleanup.is_worse((0, 0), (3, 0)) and ops_cleanup.is_worse((0, 2), (0, 3))
    assert not ops_cleanup.is_worse((0, 5), (0, 0))
    assert not ops_cleanup.is_worse((582, 0), (11, 1)) and ops_cleanup.is_worse((10, 0), (10, 1))
    assert ops_cleanup.damage((0, 0), (0, 0), 10, 10, 1.0, 0.9) == "it lost 10% of the surface"
    assert ops_cleanup.damage((0, 0), (0, 0), 10, 0, 1.0, 1.0) == "it deleted every face"
    assert ops_cleanup.damage((5, 0), (0, 0), 10, 12, 1.0, 1.01) is None


def test_panel_marks_warnings_and_open_holes() -> None:
    from blender_addon import panel_eval

    assert panel_eval.report_icon("  WARNING: Merge by distance undone: it made the mesh worse") == "ERROR"
    assert panel_eval.report_icon("  Holes left open: 2 (edges: 40, 40)") == "INFO"
    assert panel_eval.report_icon("  Holes left open: none") == "NONE"


def test_suzanne_is_triangulated_without_a_non_manifold_edge(scene, shared_meshes) -> None:
    bpy.ops.wm.obj_import(filepath=str(shared_meshes / "suzanne.obj"))
    obj = bpy.context.selected_objects[0]
    bpy.context.view_layer.objects.active = obj
    assert bpy.ops.photomesh.cleanup_cad_mesh() == {"FINISHED"}
    report = bpy.context.scene.photomesh_cleanup_report
    assert "WARNING" not in report and "Holes left open: none" in report
    assert all(len(p.vertices) == 3 for p in obj.data.polygons)
    bm = bmesh.new()
    bm.from_mesh(obj.data)
    assert cleanup_steps.edge_counts(bm) == (0, 0)
