"""The points-to-mesh run: read, clean, orient, screened Poisson, trim, post-process, write the result folder."""
from __future__ import annotations

import time
from pathlib import Path

from backend.io.views import Scene
from backend.pipelines.finish import commit_result, post_process
from backend.points.readers import read_point_cloud
from backend.points.steps import check_point_settings, clean_cloud, oriented_normals, surface, trim
from backend.runtime.protocol import Reporter
from backend.runtime.result import ResultWriter


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
