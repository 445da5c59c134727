"""Public entry points: render a job in this process or in a child process."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np

ViewFilter = Callable[[np.ndarray], bool] | str | None
REPO_ROOT = Path(__file__).resolve().parents[1]


def render_job(out_dir: Path, mesh: str = "suzanne", n_views: int = 24,
               resolution: int | tuple[int, int] = 256, samples: int = 8, seed: int = 0,
               views_filter: ViewFilter = None, settings: dict | None = None,
               bbox_margin: float = 0.1, roughness: float = 0.6) -> Path:
    """Render `mesh` with Cycles from cameras around it into the job folder `out_dir`; returns it."""
    from scenegen.render import render_scene

    return render_scene(Path(out_dir), mesh=mesh, n_views=n_views, resolution=resolution,
                        samples=samples, seed=seed, views_filter=views_filter,
                        settings=settings, bbox_margin=bbox_margin, roughness=roughness)


def cli_args(out_dir: Path, mesh: str = "suzanne", n_views: int = 24,
             resolution: int | tuple[int, int] = 256, samples: int = 8, seed: int = 0,
             views_filter: str | None = None, settings: dict | None = None,
             bbox_margin: float = 0.1, roughness: float = 0.6) -> list[str]:
    """Command-line arguments of `python -m scenegen` equivalent to a `render_job` call."""
    res = resolution if isinstance(resolution, int) else f"{resolution[0]}x{resolution[1]}"
    args = ["--out", str(out_dir), "--mesh", str(mesh), "--views", str(n_views), "--res", str(res),
            "--samples", str(samples), "--seed", str(seed), "--bbox-margin", str(bbox_margin),
            "--roughness", str(roughness)]
    if views_filter is not None:
        if not isinstance(views_filter, str):
            raise TypeError("views_filter must be a string such as 'x>0' when rendering in a subprocess")
        args += ["--filter", views_filter]
    if settings:
        args += ["--settings", json.dumps(settings)]
    return args


def render_job_subprocess(out_dir: Path, mesh: str = "suzanne", n_views: int = 24,
                          resolution: int | tuple[int, int] = 256, samples: int = 8, seed: int = 0,
                          views_filter: str | None = None, settings: dict | None = None,
                          bbox_margin: float = 0.1, timeout: float | None = 600,
                          roughness: float = 0.6) -> Path:
    """Same as `render_job`, run as `sys.executable -m scenegen` so `bpy` stays out of this process."""
    args = cli_args(out_dir, mesh, n_views, resolution, samples, seed, views_filter, settings, bbox_margin,
                    roughness)
    proc = subprocess.run([sys.executable, "-m", "scenegen", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout)[-3000:]
        raise RuntimeError(f"scenegen failed with exit code {proc.returncode}:\n{tail}")
    return Path(out_dir)


def render_capture(out_dir: Path, mesh: str = "spot", n_photos: int = 36, rings: int = 3,
                   resolution: tuple[int, int] = (640, 480), samples: int = 16, seed: int = 0,
                   jpeg_quality: int = 90, exif_focal: bool = True) -> Path:
    """Render a phone-like capture of `mesh` standing on a table: out_dir/photos/*.jpg and out_dir/truth/.

    `mesh` is a built-in shape, a path to an .obj, or the name of a shared test mesh (spot, teapot, ...).
    """
    from scenegen.capture import render_capture_scene

    return render_capture_scene(Path(out_dir), mesh=resolve_mesh(mesh), n_photos=n_photos, rings=rings,
                                resolution=resolution, samples=samples, seed=seed, jpeg_quality=jpeg_quality,
                                exif_focal=exif_focal)


def resolve_mesh(mesh: str) -> str:
    """A built-in shape or .obj path as given; a bare name of a shared test mesh becomes its path."""
    from scenegen.objects import PRIMITIVES

    shared = REPO_ROOT.parent / "shared" / "meshes" / f"{mesh}.obj"
    if mesh not in PRIMITIVES and not Path(mesh).suffix and shared.is_file():
        return str(shared)
    return str(mesh)


def capture_cli_args(out_dir: Path, mesh: str = "spot", n_photos: int = 36, rings: int = 3,
                     resolution: tuple[int, int] = (640, 480), samples: int = 16, seed: int = 0,
                     jpeg_quality: int = 90, exif_focal: bool = True) -> list[str]:
    """Command-line arguments of `python -m scenegen --capture` equivalent to a `render_capture` call."""
    args = ["--capture", "--out", str(out_dir), "--mesh", str(mesh), "--views", str(n_photos),
            "--rings", str(rings), "--res", f"{resolution[0]}x{resolution[1]}", "--samples", str(samples),
            "--seed", str(seed), "--jpeg-quality", str(jpeg_quality)]
    return args if exif_focal else [*args, "--no-exif"]


def render_capture_subprocess(out_dir: Path, mesh: str = "spot", n_photos: int = 36, rings: int = 3,
                              resolution: tuple[int, int] = (640, 480), samples: int = 16, seed: int = 0,
                              jpeg_quality: int = 90, exif_focal: bool = True,
                              timeout: float | None = 1800) -> Path:
    """Same as `render_capture`, run as `sys.executable -m scenegen --capture` so `bpy` stays out of this process."""
    args = capture_cli_args(out_dir, mesh, n_photos, rings, resolution, samples, seed, jpeg_quality, exif_focal)
    proc = subprocess.run([sys.executable, "-m", "scenegen", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout)[-3000:]
        raise RuntimeError(f"scenegen --capture failed with exit code {proc.returncode}:\n{tail}")
    return Path(out_dir)
