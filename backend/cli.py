"""Command line: reconstruct, photos, points-to-mesh, batch, convert, compare, check."""
from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import traceback
from pathlib import Path

from backend.io.quality import LEVELS
from backend.runtime.errors import Cancelled, JobError
from backend.runtime.protocol import Reporter

EXIT_OK, EXIT_FAILURE, EXIT_JOB, EXIT_CANCELLED = 0, 1, 2, 130


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `python -m backend`."""
    p = argparse.ArgumentParser(prog="python -m backend",
                                description="Multi-view mesh reconstruction with neural deferred shading.")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("reconstruct", help="reconstruct a mesh from a job folder (or NDS/IDR/NeRF/COLMAP layout)")
    r.add_argument("job", type=Path, help="job folder, or a folder in another supported layout")
    r.add_argument("--out", type=Path, required=True, help="result folder")
    add_reconstruct_options(r)

    ph = sub.add_parser("photos", help="a folder of photos: find the cameras (structure from motion) and the "
                                       "object's masks, then reconstruct")
    ph.add_argument("photos", type=Path, help="folder of photographs (JPEG, PNG, TIFF) of one object")
    ph.add_argument("--out", type=Path, required=True, help="result folder (the job it built goes to OUT/job)")
    ph.add_argument("--masks", type=Path, help="your own masks instead of automatic ones: <photo stem>.png, "
                                               "white (or opaque) on the object")
    ph.add_argument("--prepare-only", action="store_true",
                    help="stop after OUT/job (cameras, masks, sparse points): what Blender's Import Photos runs")
    ph.add_argument("--max-image-size", type=int, default=1600,
                    help="longest side in pixels that structure from motion and the job use (default 1600)")
    ph.add_argument("--matcher", choices=["auto", "exhaustive", "overlap", "sequential"], default="auto",
                    help="which photo pairs structure from motion matches: exhaustive (all), overlap (those a coarse "
                         "pass finds overlapping, any file order), sequential (file-name order); auto: exhaustive "
                         "up to 30 photos, overlap up to 200, sequential beyond")
    add_reconstruct_options(ph)

    c = sub.add_parser("convert", help="convert another layout (NDS, IDR, NeRF, COLMAP) into a job folder")
    c.add_argument("src", type=Path)
    c.add_argument("--to", choices=["job"], default="job")
    c.add_argument("dst", type=Path)

    m = sub.add_parser("compare", help="distances between two meshes (Chamfer, Hausdorff, F-score, ...)")
    m.add_argument("a", type=Path, help="reference mesh file (e.g. the ground truth)")
    m.add_argument("b", type=Path, help="compared mesh file (e.g. the reconstruction)")
    m.add_argument("--align", action="store_true", help="rigidly align B onto A first")
    m.add_argument("--outer", action="store_true",
                   help="score against the reference's outer surface: its parts buried inside its own solid left out "
                        "(overlapping parts of CAD or sculpted models no camera sees); IoU stays of the whole solid, "
                        "the report adds reference_outer and buried_area_fraction")
    m.add_argument("--json", action="store_true", help="print the report as one JSON object")

    pm = sub.add_parser("points-to-mesh", help="mesh a point cloud (PLY, OBJ, XYZ, NPZ) by screened Poisson")
    pm.add_argument("cloud", type=Path, help="point-cloud file: .ply (ASCII/binary), .obj, .xyz/.txt/.pts/.csv, .npz/.npy")
    pm.add_argument("--out", type=Path, required=True, help="result folder (same layout as reconstruct)")
    pm.add_argument("--normals", choices=["auto", "estimate"], help="auto: the file's normals when present")
    pm.add_argument("--no-outliers", dest="outliers", action="store_false", default=None,
                    help="keep every point (no outlier removal)")
    pm.add_argument("--depth", type=int, help="screened Poisson octree depth, 5-12 (default: from the point count)")
    pm.add_argument("--screening", type=float, help="screened Poisson point weight (default 4)")
    pm.add_argument("--trim", type=float, help="drop surface farther than TRIM x point spacing from the points "
                                               "(default 2.5; 0 keeps the closed surface)")
    pm.add_argument("--symmetry", choices=["detect", "off"])
    pm.add_argument("--uv", action="store_true", default=None, help="also compute a UV map")
    pm.add_argument("--json", action="store_true", help="JSON lines on stdout even on a terminal")

    b = sub.add_parser("batch", help="reconstruct many inputs as Ray tasks (this machine, or a Ray cluster)")
    b.add_argument("inputs", type=Path, nargs="+", metavar="INPUT",
                   help="job folders (any layout reconstruct reads) or folders of photos")
    b.add_argument("--out", type=Path, required=True, help="batch folder: OUT/<input name>/ per job, OUT/summary.*")
    b.add_argument("--address", help="Ray cluster to use (e.g. ray://head:10001 or auto); default: a local Ray")
    b.add_argument("--gpus-per-job", type=float, help="GPUs per job (fractions share a GPU); default: 1 on a "
                                                       "cluster with GPUs, else 0")
    b.add_argument("--cpus-per-job", type=float, default=2.0, help="CPUs per job (default 2)")
    b.add_argument("--retries", type=int, default=2, help="re-runs of a job whose worker or run crashed (default 2)")
    b.add_argument("--set", dest="set_", action="append", default=[], metavar="KEY=VALUE",
                   help="override a job setting for every job, e.g. --set iterations=300 (repeatable)")
    b.add_argument("--gt-dir", type=Path, help="ground-truth meshes DIR/<input name>.obj (else INPUT/gt.obj) "
                                               "for Chamfer, normal consistency and F-score")
    b.add_argument("--json", action="store_true", help="JSON lines on stdout even on a terminal")

    chk = sub.add_parser("check", help="print versions, devices and which rasterizers really render, as JSON")
    chk.add_argument("--strict", action="store_true",
                     help="exit 1 unless the backend runs (and an installed nvdiffrast renders on CUDA)")
    return p


def add_reconstruct_options(p: argparse.ArgumentParser) -> None:
    """The options that reconstruct and photos share."""
    p.add_argument("--device", choices=["auto", "cuda", "mps", "cpu"])
    p.add_argument("--rasterizer", choices=["auto", "nvdiffrast", "torch"])
    p.add_argument("--iterations", type=int, help="a fixed number of optimisation steps (default: stop when the "
                                                  "mesh stops changing, bounded by --quality)")
    p.add_argument("--quality", choices=list(LEVELS), help="how long the optimisation may run and how still the "
                                                           "mesh must be to stop (default standard)")
    p.add_argument("--symmetry", choices=["detect", "enforce", "off"])
    p.add_argument("--texture-size", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--initial-mesh", help="mesh or point-cloud file to start from instead of the visual hull")
    p.add_argument("--max-faces", type=int, help="output face budget: decimate the optimised mesh to at most N faces")
    p.add_argument("--refine-cameras", action="store_true", default=None,
                   help="optimise per-view camera corrections with the mesh (for imperfect camera poses)")
    p.add_argument("--topology", choices=["auto", "on", "off"],
                   help="the stage that lets the surface change genus (open or close handles): auto runs it when "
                        "the start mesh, the masks or the first phase's mesh give reason to (default auto)")
    p.add_argument("--preview-every", type=int, default=0, help="write previews/mesh_<step>.ply every N steps")
    p.add_argument("--json", action="store_true", help="JSON lines on stdout even on a terminal")


def settings_overrides(args: argparse.Namespace) -> dict:
    """Job settings given on the command line (they win over job.json)."""
    names = {"device": "device", "rasterizer": "rasterizer", "iterations": "iterations",
             "quality": "quality", "symmetry": "symmetry", "texture_size": "texture_size", "seed": "seed",
             "initial_mesh": "initial_mesh", "max_faces": "max_faces", "refine_cameras": "refine_cameras",
             "topology": "topology"}
    return {key: getattr(args, attr) for attr, key in names.items() if getattr(args, attr, None) is not None}


def cmd_reconstruct(args: argparse.Namespace, reporter: Reporter) -> int:
    """Load, reconstruct, write the result folder; errors become protocol lines."""
    from backend.io.detect import load_any
    from backend.io.validate import validate_scene
    from backend.post.estimate import estimate_run_seconds

    reporter.stage("load")
    if args.iterations is not None and args.iterations < 1:
        raise JobError(f"--iterations must be at least 1 (got {args.iterations})",
                       "Use e.g. --iterations 2000 (the reference setting).")
    if not args.job.exists():
        raise JobError(f"job folder {args.job} does not exist", "Give the folder that holds job.json.")
    scene = load_any(args.job)
    scene.settings.update(settings_overrides(args))
    validate_scene(scene, require_masks=False)
    warnings: list[str] = []
    if any(v.mask is None for v in scene.views):
        from backend.capture.scene_masks import fill_missing_masks

        warnings = fill_missing_masks(scene, reporter)
        validate_scene(scene)
    reporter.expect(estimate_run_seconds(scene))
    from backend.pipelines.reconstruct import reconstruct

    reconstruct(scene, args.out, reporter, preview_every=args.preview_every, warnings=warnings)
    return report_done(reporter)


def cmd_photos(args: argparse.Namespace, reporter: Reporter) -> int:
    """Photos -> OUT/job (cameras, masks, points) -> (unless --prepare-only) the mesh into OUT."""
    from backend.pipelines.photos import JOB_DIR, photos_to_mesh

    if args.iterations is not None and args.iterations < 1:
        raise JobError(f"--iterations must be at least 1 (got {args.iterations})", "Use e.g. --iterations 500.")
    if args.max_image_size < 64:
        raise JobError(f"--max-image-size must be at least 64 (got {args.max_image_size})",
                       "Use e.g. --max-image-size 1600.")
    settings = settings_overrides(args)
    photos_to_mesh(args.photos, args.out, reporter, settings, masks_dir=args.masks,
                   prepare_only=args.prepare_only, max_image_size=args.max_image_size, matcher=args.matcher,
                   preview_every=args.preview_every)
    reporter.done(f"{JOB_DIR}/job.json" if args.prepare_only else "result.json")
    return EXIT_OK


def cmd_points_to_mesh(args: argparse.Namespace, reporter: Reporter) -> int:
    """Mesh a point-cloud file into the result folder."""
    from backend.pipelines.points import points_to_mesh

    keys = ("normals", "outliers", "depth", "screening", "trim", "symmetry", "uv")
    settings = {k: getattr(args, k) for k in keys if getattr(args, k) is not None}
    points_to_mesh(args.cloud, args.out, reporter, settings)
    return report_done(reporter)


def report_done(reporter: Reporter) -> int:
    """The `done` line and exit 0 of a run whose result folder is in place, even if a cancel came too late."""
    reporter.done("result.json")
    if reporter.cancelled.is_set():
        reporter.log("cancel arrived after the result folder was in place: the run is done")
    return EXIT_OK


def cmd_batch(args: argparse.Namespace) -> int:
    """Run every input as a Ray task into OUT/<name>/, with OUT/summary.json and .csv."""
    from backend.pipelines.batch import BatchOptions, run_batch
    from backend.pipelines.batch_plan import parse_set

    if args.retries < 0 or args.cpus_per_job <= 0 or (args.gpus_per_job or 0) < 0:
        raise JobError("--retries, --cpus-per-job and --gpus-per-job must not be negative (CPUs above 0)",
                       "Use e.g. --cpus-per-job 2 --gpus-per-job 1 --retries 2.")
    opts = BatchOptions(inputs=list(args.inputs), out=args.out, address=args.address, gpus_per_job=args.gpus_per_job,
                        cpus_per_job=args.cpus_per_job, retries=args.retries, settings=parse_set(args.set_),
                        gt_dir=args.gt_dir, json_mode=True if args.json else None)
    return run_batch(opts, build_parser())


def cmd_convert(args: argparse.Namespace) -> int:
    """Read any supported layout and write it as a job folder."""
    from backend.io.convert import convert

    convert(args.src, args.dst)
    print(json.dumps({"type": "done", "result": str(args.dst)}), flush=True)
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    """Print the metrics between two mesh files."""
    from backend.mesh.metrics import compare_files

    result = compare_files(args.a, args.b, align=args.align, outer=args.outer)
    if args.json:
        print(json.dumps(result), flush=True)
    else:
        for key, value in result.items():
            print(f"{key:>28}: {value}")
    return EXIT_OK


def check_info() -> dict:
    """Python/torch versions, devices and rasterizers available in this environment."""
    info: dict = {"python": platform.python_version(), "platform": platform.platform(),
                  "executable": sys.executable}
    try:
        import torch
    except ImportError as exc:
        info.update(torch=None, ok=False, error=f"torch is not installed: {exc}")
        return info
    devices = {"cpu": True, "cuda": bool(torch.cuda.is_available()),
               "mps": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())}
    info["torch"] = torch.__version__
    info["devices"] = devices
    if devices["cuda"]:
        info["cuda_device"] = torch.cuda.get_device_name(0)
        info["cuda_version"] = torch.version.cuda
    info.update(rasterizer_report(devices))
    missing = [m for m in ("numpy", "scipy", "trimesh", "gpytoolbox", "skimage", "xatlas", "imageio",
                           "fast_simplification")
               if importlib.util.find_spec(m) is None]
    info["missing_packages"] = missing
    info["ok"] = info["rasterizers"]["torch"] and not missing
    return info


def rasterizer_report(devices: dict) -> dict:
    """Which rasterizers really render (a tiny render each, nvdiffrast's first one compiles it), and why not."""
    from backend.raster.probe import probe

    device = "cuda" if devices["cuda"] else "mps" if devices["mps"] else "cpu"
    errors: dict = {}
    works = {}
    for name in ("torch", "nvdiffrast"):
        if name == "nvdiffrast" and importlib.util.find_spec("nvdiffrast") is None:
            works[name] = False
            continue
        reason = probe(name, device)
        works[name] = reason is None
        if reason is not None:
            errors[name] = reason
    auto = "nvdiffrast" if works["nvdiffrast"] and device == "cuda" else "torch"
    return {"rasterizers": works, "rasterizer_device": device, "rasterizer_errors": errors,
            "nvdiffrast_installed": importlib.util.find_spec("nvdiffrast") is not None, "auto_rasterizer": auto}


def check_exit_code(info: dict, strict: bool) -> int:
    """0, or with --strict 1 when the backend cannot run or an installed nvdiffrast fails on CUDA."""
    if not strict:
        return EXIT_OK
    nvdiffrast_broken = (info.get("nvdiffrast_installed") and info.get("rasterizer_device") == "cuda"
                         and not info.get("rasterizers", {}).get("nvdiffrast"))
    return EXIT_OK if info.get("ok") and not nvdiffrast_broken else EXIT_FAILURE


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = build_parser().parse_args(argv)
    if args.command == "check":
        info = check_info()
        print(json.dumps(info, indent=2), flush=True)
        code = check_exit_code(info, args.strict)
        if code != EXIT_OK:
            print(f"backend check failed: {info.get('error') or info.get('rasterizer_errors') or info}",
                  file=sys.stderr)
        return code
    reporter = Reporter(json_mode=True if getattr(args, "json", False) else None)
    reporter.install_signal_handlers()
    try:
        if args.command == "reconstruct":
            return cmd_reconstruct(args, reporter)
        if args.command == "photos":
            return cmd_photos(args, reporter)
        if args.command == "points-to-mesh":
            return cmd_points_to_mesh(args, reporter)
        if args.command == "convert":
            return cmd_convert(args)
        if args.command == "batch":
            return cmd_batch(args)
        return cmd_compare(args)
    except JobError as exc:
        reporter.error(exc.message, exc.hint, exc.view)
        return EXIT_JOB
    except (Cancelled, KeyboardInterrupt):
        reporter.log("cancelled")
        return EXIT_CANCELLED
    except Exception as exc:  # noqa: BLE001 - every failure must reach the add-on as an error line
        reporter.log(traceback.format_exc())
        reporter.error(f"{type(exc).__name__}: {exc}",
                       "This is a bug in the backend; the log on stderr has the details.")
        return EXIT_FAILURE
