"""Clean Up CAD Mesh: merge, dissolve, loose parts, holes, normals, interior faces, remesh, decimate, symmetry."""
from __future__ import annotations

import bmesh
import bpy

from . import cleanup_steps as steps

AREA_KEEPING = frozenset({"Merge by distance", "Dissolve degenerate", "Fill holes", "Normals", "Triangulate"})
AREA_LOSS = 0.02


def modifier_mesh(context, mesh: bpy.types.Mesh, kind: str, settings: dict) -> bpy.types.Mesh:
    """A new mesh: `mesh` with one modifier of type `kind` applied (on a temporary object)."""
    tmp = bpy.data.objects.new("photomesh_cleanup_tmp", mesh)
    context.scene.collection.objects.link(tmp)
    try:
        mod = tmp.modifiers.new("photomesh_cleanup", kind)
        for key, value in settings.items():
            setattr(mod, key, value)
        depsgraph = context.evaluated_depsgraph_get()
        depsgraph.update()
        return bpy.data.meshes.new_from_object(tmp.evaluated_get(depsgraph))
    finally:
        bpy.data.objects.remove(tmp)


def _replace_geometry(bm: bmesh.types.BMesh, mesh: bpy.types.Mesh) -> None:
    """Load `mesh` into `bm` (cleared first) and delete `mesh`."""
    bm.clear()
    bm.from_mesh(mesh)
    bpy.data.meshes.remove(mesh)


def _apply_modifier(context, bm: bmesh.types.BMesh, kind: str, settings: dict) -> None:
    """Run a modifier on the bmesh's geometry, in place."""
    scratch = bpy.data.meshes.new("photomesh_cleanup_scratch")
    bm.to_mesh(scratch)
    result = modifier_mesh(context, scratch, kind, settings)
    bpy.data.meshes.remove(scratch)
    _replace_geometry(bm, result)


def format_counts(name: str, counts: dict) -> str:
    """One report line: step name and its non-trivial counts."""
    parts = [f"{k.replace('_', ' ')} {v}" for k, v in counts.items()]
    return f"{name}: " + ", ".join(parts)


def is_worse(before: tuple[int, int], after: tuple[int, int]) -> bool:
    """(boundary, non-manifold) edge counts got worse: a closed mesh gained either kind; an open mesh gained
    more of them together than it lost (welding a soup may leave a non-manifold edge while closing hundreds)."""
    if before[0] == 0:
        return after[0] > 0 or after[1] > before[1]
    return after[0] + after[1] > before[0] + before[1]


def damage(before: tuple[int, int], after: tuple[int, int], faces_before: int, faces_after: int,
           area_before: float, area_after: float) -> str | None:
    """Why a step's result is worse than its input (None if it is not): edge counts, everything deleted, or
    surface lost by a step that should keep it (`AREA_KEEPING`: callers pass equal areas for the others)."""
    if is_worse(before, after):
        return "it made the mesh worse"
    if faces_before and not faces_after:
        return "it deleted every face"
    if area_after < (1.0 - AREA_LOSS) * area_before:
        return f"it lost {1.0 - area_after / area_before:.0%} of the surface"
    return None


def format_edge_change(before: tuple[int, int], after: tuple[int, int]) -> str:
    """Boundary and non-manifold edge counts before -> after a step."""
    return f"boundary edges {before[0]}->{after[0]}, non-manifold edges {before[1]}->{after[1]}"


def format_holes(sizes: list[int], limited: bool, sides: int, shown: int = 8) -> str:
    """The holes left open and their edge counts, with a hint when the fill limit left some."""
    if not sizes:
        return "Holes left open: none"
    listed = ", ".join(map(str, sizes[:shown])) + (", ..." if len(sizes) > shown else "")
    line = f"Holes left open: {len(sizes)} (edges: {listed})"
    if limited and sizes[0] > sides:
        line += f"; over the {sides}-edge limit: raise 'Up to edges' or tick 'Fill all holes'"
    return line


class PHOTOMESH_OT_cleanup_cad_mesh(bpy.types.Operator):
    """Clean ground-truth meshes from CAD tools and scanners (every selected mesh), step by step"""

    bl_idname = "photomesh.cleanup_cad_mesh"
    bl_label = "Clean Up CAD Mesh"
    bl_options = {"REGISTER", "UNDO"}

    merge: bpy.props.BoolProperty(name="Merge by distance", default=True)
    merge_distance: bpy.props.FloatProperty(name="Distance", default=1e-4, min=0.0, max=0.1, precision=6,
                                            description="Merge distance, as a fraction of the object's size")
    dissolve: bpy.props.BoolProperty(name="Dissolve degenerate", default=True)
    loose: bpy.props.BoolProperty(name="Delete loose parts", default=True)
    loose_size: bpy.props.FloatProperty(name="Smaller than", default=0.02, min=0.0, max=1.0, precision=4,
                                        description="Delete parts whose size is under this fraction of the object's size")
    keep_largest: bpy.props.IntProperty(name="Keep largest parts", default=0, min=0,
                                        description="Keep only the N largest connected parts (0: all)")
    fill: bpy.props.BoolProperty(name="Fill holes", default=True,
                                 description="Fill holes; large fills are refined and faired to follow the surface")
    hole_sides: bpy.props.IntProperty(name="Up to edges", default=32, min=3,
                                      description="Fill holes whose border has at most this many edges")
    fill_all: bpy.props.BoolProperty(name="Fill all holes", default=False,
                                     description="Fill every hole, whatever its size")
    normals: bpy.props.BoolProperty(name="Consistent outward normals", default=True)
    interior: bpy.props.BoolProperty(
        name="Remove interior faces", default=True,
        description="Delete faces with solid on both sides (generalized winding number): nested shells and "
                    "internal walls. Never opens the mesh; faces in crevices and tunnels stay")
    triangulate: bpy.props.BoolProperty(name="Triangulate", default=True)
    remesh: bpy.props.BoolProperty(name="Voxel remesh (watertight)", default=False)
    voxel_size: bpy.props.FloatProperty(name="Voxel size", default=0.005, min=1e-4, max=0.2, precision=4,
                                        description="Voxel size, as a fraction of the object's size")
    decimate: bpy.props.BoolProperty(name="Decimate", default=False)
    target_faces: bpy.props.IntProperty(name="Target faces", default=100_000, min=4)
    symmetrize: bpy.props.BoolProperty(name="Symmetrize", default=False)
    guard: bpy.props.BoolProperty(
        name="Never worse", default=True,
        description="Undo any step that opens a closed mesh or adds non-manifold edges to it (on an open mesh: "
                    "adds more boundary and non-manifold edges than it removes), and name it in a warning")
    symmetry_direction: bpy.props.EnumProperty(
        name="Direction", default="X",
        items=[(d, ("+" + d if len(d) == 1 else d) + " side to the other", "") for d in steps.SYMMETRY_AXES])

    @classmethod
    def poll(cls, context):
        """Object mode with at least one mesh selected."""
        return context.mode == "OBJECT" and any(o.type == "MESH" for o in context.selected_objects)

    def draw(self, context):
        """Each step with its options beneath it."""
        col = self.layout.column()
        for toggle, options in (("merge", ("merge_distance",)), ("dissolve", ()), ("loose", ("loose_size",)),
                                (None, ("keep_largest",)), ("fill", ("fill_all", "hole_sides")), ("normals", ()),
                                ("interior", ()), ("triangulate", ()), ("remesh", ("voxel_size",)),
                                ("decimate", ("target_faces",)), ("symmetrize", ("symmetry_direction",)),
                                ("guard", ())):
            if toggle:
                col.prop(self, toggle)
            for opt in options:
                row = col.row()
                row.enabled = (toggle is None or getattr(self, toggle)) and not (opt == "hole_sides" and self.fill_all)
                row.prop(self, opt)

    def clean(self, context, mesh: bpy.types.Mesh) -> tuple[list[str], list[str]]:
        """Run the enabled steps on one mesh: one report line per step (with its edge counts) and warnings."""
        bm = bmesh.new()
        bm.from_mesh(mesh)
        size = steps.bm_size(bm)
        dist = self.merge_distance * size
        run = [
            (self.merge, "Merge by distance", lambda b: steps.merge_by_distance(b, dist)),
            (self.dissolve, "Dissolve degenerate", lambda b: steps.dissolve_degenerate(b, max(dist, size * 1e-7))),
            (self.loose, "Delete loose parts", lambda b: steps.delete_loose(b, self.loose_size * size)),
            (self.keep_largest > 0, "Keep largest parts", lambda b: steps.keep_largest(b, self.keep_largest)),
            (self.fill, "Fill holes", lambda b: steps.fill_holes(b, 0 if self.fill_all else self.hole_sides)),
            (self.normals, "Normals", steps.recalc_normals),
            (self.interior, "Remove interior faces", steps.remove_interior),
            (self.remesh, "Voxel remesh", lambda b: self._remesh(context, b, size)),
            (self.decimate, "Decimate", lambda b: self._decimate(context, b)),
            (self.symmetrize, "Symmetrize", lambda b: steps.symmetrize(b, self.symmetry_direction, dist)),
            (self.triangulate, "Triangulate", steps.triangulate),
        ]
        counts = steps.edge_counts(bm)
        lines = [f"Input: {len(bm.faces)} faces, boundary edges {counts[0]}, non-manifold edges {counts[1]}"]
        warnings = []
        for enabled, name, step in run:
            if not enabled:
                continue
            snapshot = bm.copy() if self.guard else None
            keeps_area = self.guard and name in AREA_KEEPING
            area, faces = (steps.surface_area(bm) if keeps_area else 0.0), len(bm.faces)
            result = step(bm)
            after = steps.edge_counts(bm)
            change = format_edge_change(counts, after)
            why = None
            if snapshot is not None:
                why = damage(counts, after, faces, len(bm.faces), area, steps.surface_area(bm) if keeps_area else area)
            if why:
                bm.free()
                bm = snapshot
                warnings.append(f"{name} undone: {why} ({change})")
                lines.append(f"WARNING: {warnings[-1]}")
                continue
            if snapshot is not None:
                snapshot.free()
            lines.append(format_counts(name, result) + f" | {change}")
            counts = after
        lines.append(format_holes(steps.hole_sizes(bm), self.fill and not self.fill_all, self.hole_sides))
        lines.append(f"Result: {len(bm.faces)} faces, boundary edges {counts[0]}, non-manifold edges {counts[1]}")
        bm.to_mesh(mesh)
        bm.free()
        mesh.update()
        return lines, warnings

    def _remesh(self, context, bm: bmesh.types.BMesh, size: float) -> dict:
        """Voxel remesh to a watertight mesh."""
        n = len(bm.faces)
        _apply_modifier(context, bm, "REMESH", {"mode": "VOXEL", "voxel_size": self.voxel_size * size,
                                                "adaptivity": 0.0})
        return {"faces_before": n, "faces_after": len(bm.faces), "open_edges": steps.boundary_edge_count(bm)}

    def _decimate(self, context, bm: bmesh.types.BMesh) -> dict:
        """Collapse-decimate to about `target_faces` triangles."""
        tris = sum(len(f.verts) - 2 for f in bm.faces)
        if tris <= self.target_faces:
            return {"faces_before": len(bm.faces), "faces_after": len(bm.faces)}
        n = len(bm.faces)
        _apply_modifier(context, bm, "DECIMATE", {"decimate_type": "COLLAPSE", "ratio": self.target_faces / tris})
        return {"faces_before": n, "faces_after": len(bm.faces)}

    def execute(self, context):
        """Clean every selected mesh (each mesh data once) and report the counts."""
        objects = [o for o in context.selected_objects if o.type == "MESH"]
        skipped = [o.name for o in context.selected_objects if o.type != "MESH"]
        report, warnings = [], []
        done = set()
        for obj in objects:
            if obj.data.name in done:
                continue
            done.add(obj.data.name)
            if not obj.data.vertices:
                report.append(f"{obj.name}: empty mesh, skipped")
                continue
            report.append(f"{obj.name}:")
            lines, undone = self.clean(context, obj.data)
            report.extend("  " + line for line in lines)
            warnings.extend(f"{obj.name}: {w}" for w in undone)
        if skipped:
            report.append("not meshes, skipped: " + ", ".join(skipped))
        context.scene.photomesh_cleanup_report = "\n".join(report)
        if warnings:
            self.report({"WARNING"}, "; ".join(warnings))
        else:
            self.report({"INFO"}, "; ".join(line.strip() for line in report if line.startswith(("  Result", "not"))))
        return {"FINISHED"}


CLASSES = (PHOTOMESH_OT_cleanup_cad_mesh,)


def register_extra() -> None:
    """Scene.photomesh_cleanup_report: the last clean-up's counts, shown in the panel."""
    bpy.types.Scene.photomesh_cleanup_report = bpy.props.StringProperty(name="Clean-up report", default="")


def unregister_extra() -> None:
    """Remove Scene.photomesh_cleanup_report."""
    del bpy.types.Scene.photomesh_cleanup_report
