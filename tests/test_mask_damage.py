"""scenegen.damage: disks punched into masks (bool, 8-bit alpha, a job folder's alpha or mask files)."""
from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import trimesh

from backend.geometry.mask_consensus import mask_holes
from backend.io.job import load_job, write_job
from backend.io.views import Scene, View
from mask_scenes import sphere_sdf, views_of
from scenegen.damage import disk_inside, enclosed_views, punch_job, punch_mask, tube_point


def test_punch_mask_cuts_a_disk() -> None:
    mask = np.ones((21, 21), dtype=bool)
    out = punch_mask(mask, (10.5, 10.5), 3.0)
    assert mask.all(), "the input is left as it was"
    assert (~out).sum() == 29 and not out[10, 10] and out[10, 14]
    alpha = np.full((21, 21), 255, dtype=np.uint8)
    assert punch_mask(alpha, (10.5, 10.5), 3.0).dtype == np.uint8
    assert (punch_mask(alpha, (10.5, 10.5), 3.0) == 0).sum() == 29


def test_disk_inside_needs_the_disk_and_margin_in_the_mask() -> None:
    mask = np.zeros((40, 40), dtype=bool)
    mask[10:30, 10:30] = True
    assert disk_inside(mask, (20.0, 20.0), 4.0)
    assert not disk_inside(mask, (13.0, 20.0), 4.0), "the margin reaches the outline"
    assert not disk_inside(np.ones((40, 40), dtype=bool), (2.0, 20.0), 4.0), "the disk leaves the image"


def test_enclosed_views_spread_over_the_qualifying_views() -> None:
    views = views_of(sphere_sdf(0.6), n=8, size=48)
    assert enclosed_views(views, np.zeros(3), 4.0, 2) == [0, 4]
    assert enclosed_views(views, np.zeros(3), 40.0, 2) == []


def test_tube_point_lies_on_the_torus_core() -> None:
    torus = trimesh.creation.torus(0.7, 0.25)
    p = tube_point(torus.vertices)
    assert abs(np.hypot(p[0], p[1]) - 0.7) < 0.02 and abs(p[2]) < 1e-6


def test_punch_job_punches_alpha_and_mask_files(tmp_path: Path) -> None:
    views = []
    for v in views_of(sphere_sdf(0.6), n=3, size=48):
        views.append(View(v.name, np.full((48, 48, 3), 0.5, np.float32), v.mask, v.K, v.R, v.t))
    src = write_job(Scene(views), tmp_path / "src")
    (src / "masks").mkdir()
    iio.imwrite(src / "masks" / "v02.png", np.where(views[2].mask, 255, 0).astype(np.uint8))
    names = punch_job(src, tmp_path / "dst", [0, 2], np.zeros(3), 4.0)
    assert names == ["v00", "v02"]
    before, after = load_job(src), load_job(tmp_path / "dst")
    holes = [mask_holes(v.mask)[1] for v in after.views]
    assert holes == [1, 0, 1]
    assert np.array_equal(before.views[1].mask, after.views[1].mask)
    cut = [(b.mask & ~a.mask).sum() for b, a in zip(before.views, after.views)]
    assert cut[0] == cut[2] > 40 and cut[1] == 0
