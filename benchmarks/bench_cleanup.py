"""Clean Up CAD Mesh on the shared meshes and procedural cases: faces, boundary and non-manifold edges before and
after, seconds (issue 13). Runs the operator with its default settings in Blender-as-a-module (bpy).

python benchmarks/bench_cleanup.py [--skip-large] [--raw-winding] [--json out.json]
Rows: fandisk, spot, suzanne, teapot from ../shared/meshes (when present), teapot again with Fill all holes,
then procedural closed shapes with crevices (comb, torus knot, cup), nested shells, a merged assembly with
internal walls, and three ~100k-face cases (a closed torus knot, nested spheres, a merged assembly). With
--raw-winding, also the time of the winding number at every face of the large assembly (what the clean-up
avoids: minutes on a shared 2-core machine).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import bpy  # noqa: I001 - bpy before bmesh
import bmesh
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import cleanup_shapes as shapes  # noqa: E402
from backend.mesh import winding  # noqa: E402
from blender_addon import cleanup_steps, ops_cleanup  # noqa: E402

SHARED = ROOT.parent / "shared" / "meshes"


def counts(obj) -> tuple[int, int, int]:
    """(faces, boundary edges, non-manifold edges) of an object's mesh."""
    bm = bmesh.new()
    bm.from_mesh(obj.data)
    b, n = cleanup_steps.edge_counts(bm)
    faces = len(bm.faces)
    bm.free()
    return faces, b, n


def fresh_scene() -> None:
    """An empty scene."""
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj)


def from_arrays(name: str, v: np.ndarray, f: np.ndarray):
    """A mesh object from vertex and face arrays."""
    me = bpy.data.meshes.new(name)
    me.from_pydata(v.tolist(), [], np.asarray(f).tolist())
    obj = bpy.data.objects.new(name, me)
    bpy.context.scene.collection.objects.link(obj)
    return obj


def run(name: str, obj, **settings) -> dict:
    """Clean one object alone; its counts before/after, seconds and the warnings."""
    for o in bpy.context.scene.objects:
        o.select_set(o is obj)
    bpy.context.view_layer.objects.active = obj
    before = counts(obj)
    t0 = time.perf_counter()
    bpy.ops.photomesh.cleanup_cad_mesh(**settings)
    seconds = time.perf_counter() - t0
    after = counts(obj)
    report = bpy.context.scene.photomesh_cleanup_report
    interior = [line for line in report.splitlines() if "interior faces removed" in line]
    row = {"mesh": name, "faces": (before[0], after[0]), "boundary": (before[1], after[1]),
           "non_manifold": (before[2], after[2]), "seconds": round(seconds, 2),
           "interior_removed": int(interior[0].split("interior faces removed ")[1].split()[0].rstrip(","))
           if interior else 0,
           "undone": [line.strip()[9:].split(":")[0] for line in report.splitlines() if "WARNING" in line],
           "holes_left": next((line.strip() for line in report.splitlines() if "Holes left open" in line), "")}
    cells = " | ".join(f"{a:,} → {b:,}" for a, b in (row["faces"], row["boundary"], row["non_manifold"]))
    print(f"| {name} | {cells} | {row['interior_removed']:,} | {seconds:.2f} | {', '.join(row['undone']) or '-'} |",
          flush=True)
    return row


def procedural(skip_large: bool) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The procedural cases: (name, vertices, faces)."""
    cases = [("comb (deep slots)", *shapes.comb()), ("torus knot", *shapes.torus_knot()), ("cup", *shapes.cup()),
             ("nested shells", *shapes.nested_shells()), ("merged assembly 3x2x2", *shapes.assembly((3, 2, 2)))]
    if not skip_large:
        vo, fo = shapes.uv_sphere(1.0, rings=160, segments=320)
        vi, fi = shapes.uv_sphere(0.5, rings=40, segments=80)
        cases += [("torus knot 100k", *shapes.torus_knot(segments=4000, sides=25)),
                  ("nested spheres 108k", np.vstack([vo, vi]), np.vstack([fo, fi + len(vo)])),
                  ("merged assembly 4x4x4, 96k", *shapes.assembly((4, 4, 4), cells=20, size=0.02))]
    return cases


def main(argv: list[str] | None = None) -> int:
    """Print the table rows (Markdown) and optionally write them as JSON."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--skip-large", action="store_true", help="leave out the ~100k-face cases")
    ap.add_argument("--raw-winding", action="store_true",
                    help="also time the winding number at every face of the large assembly (slow)")
    ap.add_argument("--json", type=Path, help="write the rows here")
    args = ap.parse_args(argv)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    for cls in ops_cleanup.CLASSES:
        bpy.utils.register_class(cls)
    ops_cleanup.register_extra()
    print("| mesh | faces | boundary edges | non-manifold edges | interior faces removed | seconds | undone |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    if SHARED.is_dir():
        for name, settings in (("fandisk", {}), ("spot", {}), ("suzanne", {}), ("teapot", {}),
                               ("teapot", {"fill_all": True})):
            fresh_scene()
            bpy.ops.wm.obj_import(filepath=str(SHARED / f"{name}.obj"))
            label = name + (" (Fill all holes)" if settings else "")
            rows.append(run(label, bpy.context.selected_objects[0], **settings))
    else:
        print(f"{SHARED} not present: shared meshes skipped", file=sys.stderr)
    large = None
    for name, v, f in procedural(args.skip_large):
        fresh_scene()
        rows.append(run(name, from_arrays(name, v, f)))
        large = (v, f) if name.startswith("merged assembly 4x4x4") else large
    if large is not None and args.raw_winding:
        v, f = large
        tris, tri_face = shapes.triangles(f)
        t0 = time.perf_counter()
        w = winding.face_winding(v, tris, tri_face, len(f))
        seconds = time.perf_counter() - t0
        print(f"\nwinding number at all {len(f):,} faces ({len(tris):,} triangles) of the large assembly: "
              f"{seconds:.2f} s (range {w.min():.2f} .. {w.max():.2f})")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
