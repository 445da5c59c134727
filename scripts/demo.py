"""Demo: Suzanne rendered with Cycles from a ring of cameras, reconstructed through the add-on.

Run with `.venv/bin/python scripts/demo.py` (or `bash scripts/demo.sh`). Leaves in demo_out/:
demo.blend, comparison.png (an input view beside the same view of the reconstruction),
metrics.json, and the job and result folders; prints the Chamfer distance to Suzanne.
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import bpy  # noqa: E402
import addon_utils  # noqa: E402

from backend.mesh.metrics import compare_meshes  # noqa: E402
from blender_addon.png_io import write_png  # noqa: E402

ADDON = "blender_addon"


def build_scene(n_cameras: int, size: int, samples: int) -> bpy.types.Object:
    """Smooth coloured Suzanne, a sun and soft world light, and selected cameras on two rings."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    bpy.ops.mesh.primitive_monkey_add(size=1.0, location=(0, 0, 0))
    suzanne = bpy.context.active_object
    suzanne.name = "Suzanne"
    bpy.ops.object.shade_smooth()
    mat = bpy.data.materials.new("SuzanneColour")
    mat.diffuse_color = (0.85, 0.35, 0.12, 1.0)
    if bpy.app.version < (5, 0, 0):
        mat.use_nodes = True
    bsdf = next(n for n in mat.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    bsdf.inputs["Base Color"].default_value = (0.85, 0.35, 0.12, 1.0)
    bsdf.inputs["Roughness"].default_value = 0.6
    suzanne.data.materials.append(mat)
    sun = bpy.data.objects.new("Sun", bpy.data.lights.new("Sun", "SUN"))
    sun.data.energy = 3.0
    sun.rotation_euler = (0.7, 0.3, 0.6)
    scene.collection.objects.link(sun)
    world = bpy.data.worlds.new("World")
    world.color = (0.25, 0.25, 0.25)
    if bpy.app.version < (5, 0, 0):
        world.use_nodes = True
    bg = world.node_tree.nodes.get("Background")
    if bg is not None:
        bg.inputs["Color"].default_value = (0.4, 0.4, 0.4, 1.0)
    scene.world = world
    for i in range(n_cameras):
        ring = i % 2
        a = 2 * math.pi * i / n_cameras
        cam = bpy.data.objects.new(f"Cam.{i:03d}", bpy.data.cameras.new(f"Cam.{i:03d}"))
        scene.collection.objects.link(cam)
        cam.data.lens = 80
        r, z = (4.0, 0.4) if ring == 0 else (3.6, 2.0)
        cam.location = (r * math.cos(a), r * math.sin(a), z)
        cam.rotation_euler = (-cam.location).to_track_quat("-Z", "Y").to_euler()
    for o in scene.objects:
        o.select_set(o.type == "CAMERA")
    scene.render.engine = "CYCLES"
    scene.render.resolution_x = scene.render.resolution_y = size
    scene.render.resolution_percentage = 100
    scene.cycles.samples = samples
    scene.cycles.device = "CPU"
    return suzanne


def world_triangles(obj: bpy.types.Object) -> tuple[np.ndarray, np.ndarray]:
    """World-space vertices and triangles of a mesh object."""
    me = obj.data
    me.calc_loop_triangles()
    v = np.zeros(len(me.vertices) * 3)
    me.vertices.foreach_get("co", v)
    v = v.reshape(-1, 3)
    m = np.array(obj.matrix_world)
    v = v @ m[:3, :3].T + m[:3, 3]
    f = np.zeros(len(me.loop_triangles) * 3, dtype=np.int64)
    me.loop_triangles.foreach_get("vertices", f)
    return v, f.reshape(-1, 3)


def render_view(camera, path: Path, hide: list, samples: int, size: int) -> np.ndarray:
    """Render the scene from camera at size x size px with some objects hidden; (H, W, 4) uint8 RGBA."""
    scene = bpy.context.scene
    scene.render.resolution_x = scene.render.resolution_y = size
    for o in hide:
        o.hide_render = True
    scene.camera = camera
    scene.render.film_transparent = True
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA"
    scene.view_settings.view_transform = "Standard"
    scene.cycles.samples = samples
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    for o in hide:
        o.hide_render = False
    img = bpy.data.images.load(str(path))
    w, h = img.size
    px = np.array(img.pixels[:], dtype=np.float32).reshape(h, w, 4)[::-1]
    bpy.data.images.remove(img)
    return (np.clip(px, 0, 1) * 255 + 0.5).astype(np.uint8)


def side_by_side(a: np.ndarray, b: np.ndarray, captions: tuple[str, str], background: int = 235,
                 gap: int = 8, band: int = 32) -> np.ndarray:
    """Two RGBA images composited over a light background, side by side (RGB), each captioned above."""
    from PIL import Image, ImageDraw, ImageFont

    def over(img: np.ndarray) -> np.ndarray:
        alpha = img[..., 3:4].astype(np.float32) / 255.0
        return (img[..., :3] * alpha + background * (1 - alpha)).astype(np.uint8)
    h = max(a.shape[0], b.shape[0])
    out = np.full((band + h, a.shape[1] + gap + b.shape[1], 3), background, dtype=np.uint8)
    out[band:band + a.shape[0], :a.shape[1]] = over(a)
    out[band:band + b.shape[0], a.shape[1] + gap:] = over(b)
    picture = Image.fromarray(out)
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default(size=20)
    for x, text in ((8, captions[0]), (a.shape[1] + gap + 8, captions[1])):
        draw.text((x, 6), text, fill=(40, 40, 40), font=font)
    return np.asarray(picture)


def main(argv: list[str] | None = None) -> int:
    """Build, render, reconstruct, compare, save."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "demo_out")
    ap.add_argument("--cameras", type=int, default=24)
    ap.add_argument("--size", type=int, default=192, help="rendered image size in pixels")
    ap.add_argument("--samples", type=int, default=16, help="Cycles samples per pixel")
    ap.add_argument("--quality", default="DRAFT", choices=["DRAFT", "STANDARD", "HIGH"])
    ap.add_argument("--iterations", type=int, default=500,
                    help="optimisation steps (0: stop when the mesh stops changing, bounded by the preset's quality level)")
    args = ap.parse_args(argv)
    out = args.out.resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    t0 = time.monotonic()
    suzanne = build_scene(args.cameras, args.size, args.samples)
    addon_utils.enable(ADDON, default_set=True, handle_error=None)
    s = bpy.context.scene.photomesh
    s.image_source, s.mask_source, s.bbox_source = "RENDER", "ALPHA", "AUTO"
    s.render_engine, s.render_samples = "CYCLES", args.samples
    s.quality, s.device, s.job_name = args.quality, "AUTO", "Reconstruction"
    print(f"Rendering {args.cameras} views of Suzanne ({args.size} px) and reconstructing ({args.quality})...")
    result = bpy.ops.photomesh.reconstruct(work_dir=str(out), iterations=args.iterations, preview_every=0)
    if result != {"FINISHED"}:
        print(f"Reconstruction did not finish: {result}", file=sys.stderr)
        return 1
    recon = bpy.data.objects["Reconstruction"]
    run_dir = next(out.glob("Reconstruction_*"))
    va, fa = world_triangles(suzanne)
    vb, fb = world_triangles(recon)
    metrics = compare_meshes(va, fa, vb, fb)
    cams = [o for o in bpy.data.objects if o.type == "CAMERA"]
    cam = min(cams, key=lambda c: (c.location.z > 1.0, c.location.y))
    plane_objs = [o for o in recon.children]
    size = max(args.size, 384)
    input_view = render_view(cam, out / "input_view.png", [recon, *plane_objs], args.samples, size)
    recon_view = render_view(cam, out / "reconstruction_view.png", [suzanne, *plane_objs], args.samples, size)
    captions = ("Input: Cycles render of Suzanne", f"Reconstruction ({args.quality.title()}, textured)")
    write_png(out / "comparison.png", side_by_side(input_view, recon_view, captions))
    for name in ("input_view.png", "reconstruction_view.png"):
        (out / name).unlink()
    bpy.context.scene.camera = cam
    suzanne.hide_set(True)
    bpy.ops.wm.save_as_mainfile(filepath=str(out / "demo.blend"))
    summary = {
        "chamfer_l1": metrics["chamfer_l1"], "chamfer_l1_norm": metrics["chamfer_l1_norm"],
        "hausdorff_norm": metrics["hausdorff_norm"], "fscore_1pct": metrics["fscore"],
        "normal_consistency": metrics["normal_consistency"], "vertices": len(recon.data.vertices),
        "faces": len(recon.data.polygons), "uv_layers": len(recon.data.uv_layers),
        "symmetry_plane": dict(recon["symmetry_plane"].to_dict()) if "symmetry_plane" in recon.keys() else None,
        "job": str(run_dir / "job"), "result": str(run_dir / "out"), "seconds": round(time.monotonic() - t0, 1),
    }
    (out / "metrics.json").write_text(json.dumps(summary, indent=2, default=list) + "\n")
    print(f"Chamfer distance to Suzanne (L1, / bbox diagonal): {metrics['chamfer_l1_norm']:.4f} "
          f"({metrics['chamfer_l1']:.4f} Blender units); F-score@1%: {metrics['fscore']:.3f}")
    print(f"Mesh: {summary['vertices']} vertices, {summary['faces']} faces, UV map: {summary['uv_layers'] == 1}")
    print(f"Wrote {out / 'demo.blend'}, {out / 'comparison.png'}, {out / 'metrics.json'} "
          f"in {summary['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
