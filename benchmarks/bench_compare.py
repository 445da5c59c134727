"""Compare Meshes benchmark inside Blender's Python (bpy as a module): two closed ~1M-triangle tori.

Run: `.venv/bin/python benchmarks/bench_compare.py [--faces 1000000] [--samples 100000]`.
Prints the face counts, the load average and the wall and CPU (process) time of each stage of the add-on's compare (no backend involved).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import bpy
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from blender_addon import compare_math as cm  # noqa: E402
from blender_addon import ops_compare  # noqa: E402


def make_torus(name: str, nu: int, nv: int, bump: float) -> bpy.types.Object:
    """A closed torus of 2*nu*nv triangles, radially bumped by `bump`, built with foreach_set."""
    u, v = np.meshgrid(np.arange(nu) * 2 * np.pi / nu, np.arange(nv) * 2 * np.pi / nv, indexing="ij")
    r = 0.4 * (1.0 + bump * np.sin(7 * u) * np.cos(5 * v))
    co = np.stack([(1 + r * np.cos(v)) * np.cos(u), (1 + r * np.cos(v)) * np.sin(u), r * np.sin(v)], -1).reshape(-1, 3)
    i, j = np.meshgrid(np.arange(nu), np.arange(nv), indexing="ij")
    a, b = i * nv + j, ((i + 1) % nu) * nv + j
    c, d = ((i + 1) % nu) * nv + (j + 1) % nv, i * nv + (j + 1) % nv
    tris = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)])
    me = bpy.data.meshes.new(name)
    me.vertices.add(len(co))
    me.vertices.foreach_set("co", co.ravel())
    me.loops.add(tris.size)
    me.loops.foreach_set("vertex_index", tris.ravel().astype(np.int32))
    me.polygons.add(len(tris))
    me.polygons.foreach_set("loop_start", np.arange(0, tris.size, 3, dtype=np.int32))
    me.update()
    obj = bpy.data.objects.new(name, me)
    bpy.context.scene.collection.objects.link(obj)
    return obj


def main() -> None:
    """Build the meshes, time the stages, print one JSON line."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--faces", type=int, default=1_000_000)
    ap.add_argument("--samples", type=int, default=cm.DEFAULT_SAMPLES)
    args = ap.parse_args()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    nv = max(int(np.sqrt(args.faces / 4)), 3)
    nu = max(args.faces // (2 * nv), 3)
    ref = make_torus("reference", nu, nv, 0.0)
    cmp_obj = make_torus("compared", nu, nv, 0.02)
    t0, c0 = time.perf_counter(), time.process_time()
    va, fa = cm.mesh_arrays(ref.data, ref.matrix_world)
    vb, fb = cm.mesh_arrays(cmp_obj.data, cmp_obj.matrix_world)
    t1, c1 = time.perf_counter(), time.process_time()
    query_a = cm.SurfaceQuery(va, fa)
    t2, c2 = time.perf_counter(), time.process_time()
    report = ops_compare.run_compare(ref, cmp_obj, n_samples=args.samples)
    t3, c3 = time.perf_counter(), time.process_time()
    print(json.dumps({
        "faces_reference": len(fa), "faces_compared": len(fb), "vertices_compared": len(vb),
        "samples": args.samples, "load_average_1min": round(os.getloadavg()[0], 2),
        "wall_s": {"mesh_arrays": round(t1 - t0, 2), "one_bvh_build": round(t2 - t1, 2),
                   "compare_total": round(t3 - t2, 2), "prep": round(report["time_align_s"], 2),
                   "metrics": round(report["time_metrics_s"], 2), "heatmap": round(report["time_heatmap_s"], 2)},
        "cpu_s": {"mesh_arrays": round(c1 - c0, 2), "one_bvh_build": round(c2 - c1, 2),
                  "compare_total": round(c3 - c2, 2), "prep": round(report["cpu_align_s"], 2),
                  "metrics": round(report["cpu_metrics_s"], 2), "heatmap": round(report["cpu_heatmap_s"], 2)},
        "chamfer_l1_norm": report["chamfer_l1_norm"], "iou": report["iou"],
    }))
    del query_a


if __name__ == "__main__":
    main()
