"""Photo-capture benchmark: `python benchmarks/bench_photos.py --meshes spot,teapot` runs the photos command on
phone-like captures and scores it against the truth.

Each capture (scenegen `render_capture`: JPEG photos with EXIF in photos/, the truth apart in truth/) is cached
under --jobs-dir, keyed by mesh, photo count, rings, resolution, samples and seed, and rendered only once. Per
capture: `python -m backend photos` (cameras, masks, mesh) and, for reference, `reconstruct` on the same renders
with the exact cameras and true masks; printed and written to OUT/<mesh>.json: photos registered, rotation error
against the true cameras after the similarity the camera centres fix (never aligned on the mesh), mask IoU, Chamfer
and normal consistency of both meshes against the true mesh, wall times; OUT/<mesh>.png shows
photo | mask found | photos mesh | exact-camera mesh, in one photo's camera.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
SHARED_MESHES = REPO.parent / "shared" / "meshes"


def parse_res(text: str) -> tuple[int, int]:
    """"640x480" -> (640, 480)."""
    w, h = text.lower().split("x")
    return int(w), int(h)


def mesh_source(name: str, meshes_dir: Path = SHARED_MESHES) -> str:
    """scenegen's mesh argument: a shared mesh file when present, else a built-in name."""
    path = meshes_dir / f"{name}.obj"
    return str(path) if path.is_file() else name


def capture_dir(jobs_dir: Path, name: str, n_photos: int, rings: int, resolution: tuple[int, int], samples: int,
                seed: int) -> Path:
    """The cache folder of one capture: every setting that changes the photos is in its name."""
    return jobs_dir / f"{name}_{n_photos}p{rings}r_{resolution[0]}x{resolution[1]}_s{samples}_seed{seed}"


def ensure_captures(meshes: list[str], jobs_dir: Path, n_photos: int = 36, rings: int = 3,
                    resolution: tuple[int, int] = (640, 480), samples: int = 16, seed: int = 0,
                    meshes_dir: Path = SHARED_MESHES, log=print) -> dict[str, Path]:
    """Render (or reuse) one capture per mesh under `jobs_dir`; returns mesh name -> capture folder.

    A capture counts as cached once truth/truth.json exists (written last), so an interrupted render is redone.
    """
    from scenegen import render_capture_subprocess

    out: dict[str, Path] = {}
    for name in meshes:
        folder = capture_dir(jobs_dir, name, n_photos, rings, resolution, samples, seed)
        if not (folder / "truth" / "truth.json").is_file():
            start = time.perf_counter()
            render_capture_subprocess(folder, mesh=mesh_source(name, meshes_dir), n_photos=n_photos, rings=rings,
                                      resolution=resolution, samples=samples, seed=seed, timeout=7200)
            log(f"[{name}] rendered {n_photos} photos at {resolution[0]}x{resolution[1]} in "
                f"{time.perf_counter() - start:.0f}s -> {folder}")
        else:
            log(f"[{name}] cached {folder}")
        out[name] = folder
    return out


def truth_cameras(capture: Path) -> dict[str, dict[str, np.ndarray]]:
    """The true camera of each photo, keyed by photo file name: {"K", "R", "t"} (OpenCV, world z up)."""
    truth = json.loads((capture / "truth" / "truth.json").read_text())
    job = json.loads((capture / "truth" / "job" / "job.json").read_text())
    by_view = {v["name"]: {k: np.asarray(v[k], dtype=np.float64) for k in ("K", "R", "t")} for v in job["views"]}
    return {photo: by_view[view] for photo, view in truth["photos"].items()}


def run_backend(args: list[str], log_path: Path) -> tuple[float, dict]:
    """Run `python -m backend ARGS --json` (stderr to log_path); (seconds, the last protocol line)."""
    start = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.run([sys.executable, "-m", "backend", *args, "--json"], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=log, text=True)
    lines = [json.loads(x) for x in proc.stdout.splitlines() if x.strip()]
    if proc.returncode != 0:
        raise RuntimeError(f"backend {args[0]} failed ({proc.returncode}): {lines[-1] if lines else ''} - see {log_path}")
    return time.perf_counter() - start, lines[-1]


def mask_ious(job_dir: Path, capture: Path, stems: list[str]) -> np.ndarray:
    """IoU of each automatic mask (job_dir/masks/<stem>.png) with the capture's true mask of that photo."""
    import imageio.v3 as iio

    truth = json.loads((capture / "truth" / "job" / "job.json").read_text())
    names = json.loads((capture / "truth" / "truth.json").read_text())["photos"]
    by_view = {v["name"]: v for v in truth["views"]}
    view_of = {Path(photo).stem: by_view[view] for photo, view in names.items()}
    out = []
    for stem in stems:
        found = iio.imread(job_dir / "masks" / f"{stem}.png") > 127
        true = iio.imread(capture / "truth" / "job" / view_of[stem]["mask"]) > 127
        true = true if true.ndim == 2 else true[..., -1]
        out.append((found & true).sum() / max((found | true).sum(), 1))
    return np.asarray(out)


def score_capture(name: str, capture: Path, out_root: Path, iterations: int, exact_from: Path | None = None) -> dict:
    """Run photos and the exact-camera reference on one capture; the figures (and a picture). exact_from: a
    bench output folder whose <name>/exact run (same capture and steps) is reused instead of running it again."""
    from backend.capture.evaluate import align_cameras
    from backend.mesh.meshmath import apply
    from backend.mesh.metrics import compare_meshes, load_mesh

    run_dir, exact_dir = out_root / name / "photos", out_root / name / "exact"
    steps = ["--iterations", str(iterations)] if iterations > 0 else []
    t_photos, _ = run_backend(["photos", str(capture / "photos"), "--out", str(run_dir), *steps],
                              out_root / f"{name}_photos.log")
    if exact_from is not None and (exact_from / name / "exact" / "result.json").is_file():
        exact_dir = exact_from / name / "exact"
        t_exact = json.loads((exact_from / f"{name}.json").read_text())["seconds_exact"]
    else:
        t_exact, _ = run_backend(["reconstruct", str(capture / "truth" / "job"), "--out", str(exact_dir), *steps],
                                 out_root / f"{name}_exact.log")
    result = json.loads((run_dir / "result.json").read_text())
    exact = json.loads((exact_dir / "result.json").read_text())
    truth = truth_cameras(capture)
    cams = result["cameras"]
    true_of = {Path(p).stem: cam for p, cam in truth.items()}
    rot, centre, S = align_cameras([c["R"] for c in cams], [c["t"] for c in cams],
                                   [true_of[c["name"]]["R"] for c in cams], [true_of[c["name"]]["t"] for c in cams])
    tv, tf = load_mesh(capture / "truth" / "mesh.obj")
    v, f = load_mesh(run_dir / "mesh.obj")
    ev, ef = load_mesh(exact_dir / "mesh.obj")
    ours = compare_meshes(tv, tf, apply(S, v), f)
    ref = compare_meshes(tv, tf, ev, ef)
    ious = mask_ious(run_dir / "job", capture, [c["name"] for c in cams])
    sfm = result["sfm"]
    record = {
        "mesh": name, "photos": len(truth), "registered": len(sfm["registered"]),
        "unregistered": sfm["unregistered"], "left_out": sfm["left_out"], "reprojection_px": sfm["reprojection_px"],
        "rotation_deg_median": float(np.median(rot)), "rotation_deg_max": float(rot.max()),
        "centre_error_median": float(np.median(centre)),
        "mask_iou_mean": float(ious.mean()), "mask_iou_min": float(ious.min()),
        "chamfer": float(ours["chamfer_l1_norm"]), "normal_consistency": float(ours["normal_consistency"]),
        "exact_chamfer": float(ref["chamfer_l1_norm"]), "exact_normal_consistency": float(ref["normal_consistency"]),
        "chamfer_ratio": float(ours["chamfer_l1_norm"] / max(ref["chamfer_l1_norm"], 1e-12)),
        "seconds_photos": round(t_photos, 1), "seconds_sfm": sfm["seconds"], "seconds_exact": round(t_exact, 1),
        "timings": result.get("timings", {}), "iterations": iterations,
        "steps_photos": result.get("iterations"), "steps_exact": exact.get("iterations"),
    }
    write_picture(out_root / f"{name}.png", run_dir, cams[0]["name"], (v, f), (apply(np.linalg.inv(S), ev), ef))
    return record


def write_picture(path: Path, run_dir: Path, stem: str, ours: tuple, exact: tuple) -> None:
    """photo | mask found | photos mesh | exact-camera mesh (moved into the photos frame), one photo's camera."""
    from PIL import Image

    from backend.io.job import load_job
    from backend.raster import get_rasterizer
    from bench_reconstruct import shaded

    scene = load_job(run_dir / "job")
    view = next(v for v in scene.views if v.name == stem)
    rasterizer = get_rasterizer("auto", "cpu")
    img = np.asarray(view.image, dtype=np.float64)[..., :3]
    mask = np.where(view.mask[..., None], img, 0.25 * img)
    panels = [img, mask, shaded(*ours, view, rasterizer), shaded(*exact, view, rasterizer)]
    Image.fromarray((np.clip(np.concatenate(panels, axis=1), 0, 1) * 255).astype(np.uint8)).save(path)


def main(argv: list[str] | None = None) -> int:
    """Render (or reuse) the captures, run photos and the exact-camera reference, print the figures."""
    ap = argparse.ArgumentParser(prog="python benchmarks/bench_photos.py", description=__doc__.splitlines()[0])
    ap.add_argument("--meshes", default="spot,teapot,suzanne")
    ap.add_argument("--photos", type=int, default=36)
    ap.add_argument("--rings", type=int, default=3)
    ap.add_argument("--res", type=parse_res, default=(640, 480))
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--meshes-dir", type=Path, default=SHARED_MESHES, help="folder of the shared test meshes")
    ap.add_argument("--out", type=Path, default=REPO / "bench_out" / "photos")
    ap.add_argument("--jobs-dir", type=Path, default=None, help="rendered captures cache (default OUT/jobs)")
    ap.add_argument("--iterations", type=int, default=500,
                    help="optimisation steps of both runs (0: the default quality level, stopping on its own)")
    ap.add_argument("--render-only", action="store_true", help="only render (or reuse) the captures")
    ap.add_argument("--exact-from", type=Path, default=None,
                    help="reuse the exact-camera runs of an earlier output folder (same captures and steps)")
    args = ap.parse_args(argv)
    jobs_dir = args.jobs_dir or args.out / "jobs"
    jobs_dir.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    meshes = [m.strip() for m in args.meshes.split(",") if m.strip()]
    captures = ensure_captures(meshes, jobs_dir, args.photos, args.rings, args.res, args.samples, args.seed,
                               args.meshes_dir)
    print(json.dumps({name: str(path) for name, path in captures.items()}, indent=1))
    if args.render_only:
        return 0
    for name, capture in captures.items():
        record = score_capture(name, capture, args.out, args.iterations, args.exact_from)
        (args.out / f"{name}.json").write_text(json.dumps(record, indent=1))
        print(json.dumps({k: v for k, v in record.items() if k != "timings"}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
