"""Mask trust: contradicted pixels weigh the view's floor in the mask loss; when the consensus runs; mask_auto."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from backend.io.job import load_job, write_job
from backend.io.views import Scene, View
from backend.optim.losses import mask_loss
from backend.optim.mask_trust import pixel_weights, skip_reason, view_floors, weigh_masks
from backend.optim.viewset import ViewSet
from mask_scenes import sphere_sdf, views_of
from scenegen.damage import project, punch_mask

BOX = (np.full(3, -1.05), np.full(3, 1.05))


def test_view_floors_trust_automatic_masks_less() -> None:
    views = [SimpleNamespace(mask_auto=False), SimpleNamespace(mask_auto=True), SimpleNamespace()]
    assert view_floors(views, 1.0, 0.1).tolist() == [1.0, 0.1, 1.0]


def test_pixel_weights_put_the_floor_on_repaired_pixels() -> None:
    repair = np.zeros((4, 5), dtype=bool)
    repair[1:3, 2] = True
    w = pixel_weights(repair, 0.1)
    assert w.dtype == np.float32 and w.shape == (4, 5)
    assert np.allclose(w[repair], 0.1) and np.all(w[~repair] == 1.0)
    assert pixel_weights(repair, 1.0) is None and pixel_weights(None, 0.1) is None
    assert pixel_weights(np.zeros((4, 5), dtype=bool), 0.1) is None


def test_skip_reason_says_why() -> None:
    assert skip_reason(16, True, False, False) is None
    assert "off" in skip_reason(16, False, False, False)
    assert "initial_mesh" in skip_reason(16, True, False, True)
    assert "camera refinement" in skip_reason(16, True, True, False)
    assert "fewer than 12" in skip_reason(8, True, False, False)


def test_weigh_masks_on_a_punched_automatic_mask() -> None:
    views = views_of(sphere_sdf(0.6), n=16, size=64)
    for i, v in enumerate(views):
        v.mask_auto = i == 5
    views[5].mask = punch_mask(views[5].mask, project(views[5].K, views[5].R, views[5].t, np.zeros(3)), 5.0)
    views[9].mask = punch_mask(views[9].mask, project(views[9].K, views[9].R, views[9].t, np.zeros(3)), 5.0)
    trust = weigh_masks(views, *BOX, True, 1.0, 0.1)
    info = trust.info()
    assert info["ran"] and info["contradicted"] == ["v05", "v09"]
    assert info["pixels"]["v05"] == info["pixels"]["v09"] > 50
    assert trust.weights[9] is None, "the user's mask keeps full weight in the loss (floor 1)"
    assert np.allclose(trust.weights[5][trust.repairs[5]], 0.1) and trust.weights[5][~trust.repairs[5]].min() == 1.0
    assert "v05, v09" in trust.warning() and "2 view(s)" in trust.warning()
    skipped = weigh_masks(views[:8], *BOX, True, 1.0, 0.1)
    assert not skipped.ran and skipped.info()["contradicted"] == [] and skipped.warning() is None
    assert all(r is None for r in skipped.repairs)


def test_mask_loss_pixel_weight() -> None:
    cov = torch.zeros(2, 4, 4, 1)
    target = torch.ones(2, 4, 4, 1)
    pw = torch.ones(2, 4, 4, 1)
    pw[0, :2] = 0.0
    assert torch.isclose(mask_loss(cov, target), torch.tensor(1.0))
    assert torch.isclose(mask_loss(cov, target, pixel_weight=pw), torch.tensor(0.75))
    assert torch.isclose(mask_loss(cov, target, torch.tensor([1.0, 0.0]), pw), torch.tensor(0.25))


def test_viewset_resamples_pixel_weights_with_the_masks() -> None:
    views = views_of(sphere_sdf(0.6), n=2, size=64)
    views = [View(v.name, np.zeros((64, 64, 3), np.float32), v.mask, v.K, v.R, v.t) for v in views]
    w = np.ones((64, 64), np.float32)
    w[:32] = 0.0
    vs = ViewSet(views, torch.device("cpu"), [w, None])
    level = vs.level(32)
    assert level.pixel_weights[1] is None and level.pixel_weights[0].shape == (32, 32, 1)
    assert float(level.pixel_weights[0][:16].max()) == 0.0 and float(level.pixel_weights[0][16:].min()) == 1.0
    stacked = level.mask_weights([1, 0])
    assert stacked.shape == (2, 32, 32, 1) and float(stacked[0].min()) == 1.0
    assert level.mask_weights([1]) is None
    assert ViewSet(views, torch.device("cpu")).level(32).mask_weights([0, 1]) is None


def test_load_job_marks_automatic_masks_from_sfm_json(tmp_path: Path) -> None:
    mask = np.zeros((8, 8), dtype=bool)
    mask[2:6, 2:6] = True
    view = View("a", np.full((8, 8, 3), 0.5, np.float32), mask, np.diag([8.0, 8.0, 1.0]), np.eye(3),
                np.array([0.0, 0.0, 3.0]))
    job = write_job(Scene([view]), tmp_path / "job")
    assert not load_job(job).views[0].mask_auto
    (job / "sfm.json").write_text(json.dumps({"masks": "given"}))
    assert not load_job(job).views[0].mask_auto
    (job / "sfm.json").write_text(json.dumps({"masks": "automatic"}))
    assert load_job(job).views[0].mask_auto
    (job / "sfm.json").write_text("{not json")
    assert not load_job(job).views[0].mask_auto
