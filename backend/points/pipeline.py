"""The points-to-mesh run: read, clean, orient, screened Poisson, trim, post-process, write the result folder."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from backend.errors import JobError
from backend.geometry.remesh import run_guarded
from backend.io.views import Scene
from backend.optim.finish import commit_result, post_process
from backend.points.normals import estimate_normals
from backend.points.readers import MIN_POINTS, PointCloud, read_point_cloud
from backend.points.surface import (compact, drop_small_parts, knn, outlier_mask, poisson_depth, screened_poisson,
                                    trim_unsupported)
from backend.protocol import Reporter
from backend.result import ResultWriter

POINT_SETTINGS: dict = {
    "normals": "auto",      # auto: use the file's normals when it has them; estimate: always estimate
    "outliers": True,       # remove isolated points before meshing
    "depth": None,          # screened Poisson octree depth (None: from the point count)
    "screening": 4.0,       # screened Poisson point weight
    "trim": 2.5,            # drop surface farther than trim x local point spacing from any point (0: keep all)
    "symmetry": "detect",   # detect / off
    "uv": False,            # compute a UV map (xatlas)
    "texture_size": 1024,   # UV packing resolution when uv is on
    "neighbours": 20,       # k of the k-nearest-neighbour graph
    "poisson_timeout_s": 600.0,
}
POISSON_RATE_PTS_PER_S = 60_000.0
STAT_K = 10  # neighbours (the point itself included) behind the outlier statistics and the local spacing


def check_point_settings(settings: dict) -> dict:
    """POINT_SETTINGS overridden by settings, each value checked; JobError naming the bad setting."""
    unknown = [k for k in settings if k not in POINT_SETTINGS]
    if unknown:
        raise JobError(f"unknown points-to-mesh setting {unknown[0]!r}", f"allowed: {', '.join(POINT_SETTINGS)}")
    out = {**POINT_SETTINGS, **settings}
    if out["normals"] not in ("auto", "estimate"):
        raise JobError(f"setting 'normals' is {out['normals']!r}", "use auto or estimate")
    if out["symmetry"] not in ("detect", "off"):
        raise JobError(f"setting 'symmetry' is {out['symmetry']!r}", "use detect or off")
    if out["depth"] is not None and not (isinstance(out["depth"], int) and 5 <= out["depth"] <= 12):
        raise JobError(f"setting 'depth' is {out['depth']!r}", "use an integer from 5 to 12 (10 is fine for 1M points)")
    if not (isinstance(out["trim"], (int, float)) and 0 <= out["trim"] <= 100):
        raise JobError(f"setting 'trim' is {out['trim']!r}", "use 0 (no trimming) or a factor such as 2.5")
    if not (isinstance(out["screening"], (int, float)) and 0 <= out["screening"] <= 100):
        raise JobError(f"setting 'screening' is {out['screening']!r}", "use a number from 0 to 100, e.g. 4")
    if not (isinstance(out["neighbours"], int) and 6 <= out["neighbours"] <= 100):
        raise JobError(f"setting 'neighbours' is {out['neighbours']!r}", "use an integer from 6 to 100, e.g. 20")
    if not (isinstance(out["texture_size"], int) and 64 <= out["texture_size"] <= 16384):
        raise JobError(f"setting 'texture_size' is {out['texture_size']!r}", "use an integer from 64 to 16384")
    return out


def _poisson_in_worker(points: np.ndarray, normals: np.ndarray, params: tuple[int, float]) -> tuple:
    """screened_poisson with the (depth, screening) pair, shaped for the guarded worker."""
    return screened_poisson(points, normals, params[0], params[1])


def clean_cloud(cloud: PointCloud, settings: dict, reporter: Reporter, info: dict) -> tuple:
    """Outliers removed; returns (points, normals or None, local spacing) of the kept points."""
    points, normals = cloud.points, cloud.normals
    dist = knn(points, STAT_K)[0][:, 1:].mean(axis=1)
    reporter.progress("outliers", 1, 2)
    if settings["outliers"]:
        keep = outlier_mask(dist)
        info["outliers_removed"] = int(len(points) - keep.sum())
        if keep.sum() < MIN_POINTS:
            raise JobError(f"only {int(keep.sum())} points are left after removing outliers",
                           "The cloud is too sparse or too noisy; use a denser cloud or turn outlier removal off.")
        if not keep.all():
            points = points[keep]
            normals = normals[keep] if normals is not None else None
            dist = dist[keep]
    else:
        info["outliers_removed"] = 0
    reporter.progress("outliers", 2, 2)
    return points, normals, dist


def oriented_normals(points: np.ndarray, normals: np.ndarray | None, settings: dict,
                     reporter: Reporter, info: dict) -> np.ndarray:
    """The file's normals (unit length), or PCA normals oriented by MST propagation."""
    if normals is not None and settings["normals"] == "auto":
        info["normals"] = "file"
        reporter.progress("normals", 1, 1)
        return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    info["normals"] = "estimated"
    est = estimate_normals(points, int(settings["neighbours"]))
    reporter.progress("normals", 1, 1)
    return est


def surface(points: np.ndarray, normals: np.ndarray, settings: dict, reporter: Reporter,
            info: dict) -> tuple[np.ndarray, np.ndarray]:
    """Screened Poisson in a killable worker, reporting progress against an estimate of its time."""
    depth = settings["depth"] or poisson_depth(len(points))
    info["poisson"] = {"depth": depth, "screening": float(settings["screening"])}
    estimate = max(1.0, len(points) / POISSON_RATE_PTS_PER_S * 2.0 ** (depth - 9))
    t0 = time.monotonic()
    last = [0.0]

    def poll() -> None:
        reporter.check_cancel()
        now = time.monotonic() - t0
        if now - last[0] >= 1.0:
            last[0] = now
            reporter.progress("surface", min(int(100 * now / estimate), 99), 100)

    try:
        v, f = run_guarded(_poisson_in_worker, points, normals, (depth, float(settings["screening"])),
                           float(settings["poisson_timeout_s"]), poll=poll)
    except TimeoutError as exc:
        raise JobError(f"screened Poisson did not finish within {settings['poisson_timeout_s']:.0f} s",
                       "Lower the depth (e.g. --depth 8) or thin the point cloud.") from exc
    except RuntimeError as exc:
        raise RuntimeError(str(exc).replace("remesh", "screened Poisson")) from exc
    reporter.progress("surface", 100, 100)
    return np.asarray(v, dtype=np.float64), np.asarray(f, dtype=np.int64)


def trim(v: np.ndarray, f: np.ndarray, points: np.ndarray, spacing: np.ndarray, settings: dict, info: dict) -> tuple:
    """Faces far from every point removed (local spacing = mean k-NN distance), then small parts."""
    info["poisson"].update(vertices=len(v), faces=len(f))
    if settings["trim"] > 0:
        f = trim_unsupported(v, f, points, spacing, float(settings["trim"]))
    v, f = compact(v, f)
    v, f = drop_small_parts(v, f)
    info["trimmed_faces"] = int(info["poisson"]["faces"] - len(f))
    if len(f) == 0:
        raise JobError("the surface is empty after trimming unsupported parts",
                       "The points may not sample a surface; try --trim 0, or check the normals.")
    return v, f


def points_to_mesh(cloud_path: Path, out_dir: Path, reporter: Reporter, settings: dict | None = None) -> dict:
    """Mesh a point-cloud file into out_dir (the reconstruct result layout, written atomically)."""
    settings = check_point_settings(dict(settings or {}))
    timings: dict = {}
    info: dict = {}
    t = time.monotonic()
    reporter.stage("load")
    cloud = read_point_cloud(Path(cloud_path))
    for w in cloud.warnings:
        reporter.log(f"warning: {w}")
    info["points"] = len(cloud.points)
    timings["load"] = round(time.monotonic() - t, 3)
    writer = ResultWriter(Path(out_dir))
    try:
        t = time.monotonic()
        reporter.stage("outliers")
        points, normals, dist = clean_cloud(cloud, settings, reporter, info)
        timings["outliers"] = round(time.monotonic() - t, 3)

        t = time.monotonic()
        reporter.stage("normals")
        normals = oriented_normals(points, normals, settings, reporter, info)
        timings["normals"] = round(time.monotonic() - t, 3)

        t = time.monotonic()
        reporter.stage("surface")
        v, f = surface(points, normals, settings, reporter, info)
        timings["surface"] = round(time.monotonic() - t, 3)

        t = time.monotonic()
        reporter.stage("trim")
        v, f = trim(v, f, points, dist, settings, info)
        reporter.progress("trim", 1, 1)
        timings["trim"] = round(time.monotonic() - t, 3)

        post_settings = {"symmetry": settings["symmetry"],
                         "texture_size": int(settings["texture_size"]) if settings["uv"] else 0}
        post = post_process(v, f, Scene(views=[]), post_settings, None, reporter, timings)
        reporter.stage("write")
        t = time.monotonic()
        result = {"version": 1, "source": "points", "input": str(Path(cloud_path).resolve()), **info,
                  "settings": settings, "warnings": list(cloud.warnings)}
        return commit_result(writer, post, result, timings, t, reporter)
    except BaseException:
        writer.abort()
        raise
