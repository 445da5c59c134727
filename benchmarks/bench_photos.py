"""Photo-capture benchmark: `python benchmarks/bench_photos.py --meshes spot,teapot` renders phone-like captures.

Each capture (scenegen `render_capture`: JPEG photos with EXIF in photos/, the truth apart in truth/) is cached
under --jobs-dir, keyed by mesh, photo count, rings, resolution, samples and seed, and rendered only once.
The scoring of `python -m backend photos` on them is added by the integrator.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
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


def main(argv: list[str] | None = None) -> int:
    """Render the benchmark captures (the scoring is to come)."""
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
    args = ap.parse_args(argv)
    jobs_dir = args.jobs_dir or args.out / "jobs"
    jobs_dir.mkdir(parents=True, exist_ok=True)
    meshes = [m.strip() for m in args.meshes.split(",") if m.strip()]
    captures = ensure_captures(meshes, jobs_dir, args.photos, args.rings, args.res, args.samples, args.seed,
                               args.meshes_dir)
    print(json.dumps({name: str(path) for name, path in captures.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
