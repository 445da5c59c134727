"""GPU memory plan: the step estimate, fitting budgets, and the out-of-memory retry and error (run on CPU)."""
from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.io.views import Scene, View
from backend.optim.memory import (available_bytes, halve_budget, is_oom, oom_error, pixels_at, plan_memory,
                                  step_bytes)
from backend.optim.schedule import make_schedule
from backend.pipelines import reconstruct as rec
from backend.runtime.errors import JobError
from backend.runtime.protocol import Reporter
from test_geometry_visual_hull import sphere_views

GB = 1 << 30
DTU = (1200, 1600)


def estimate(**kw: int) -> int:
    """step_bytes with DTU-like defaults overridden by kw."""
    args = {"height": 1200, "width": 1600, "views_per_step": 1, "shade_pixels": 1 << 18, "faces": 300000,
            "vertices": 150000, "shader_hidden": 64, "shader_freqs": 4, "n_views": 49}
    return step_bytes(**{**args, **kw})


def test_estimate_grows_with_resolution_views_faces_and_samples() -> None:
    base = estimate()
    assert estimate(height=600, width=800) < base < estimate(height=2400, width=3200)
    assert estimate(views_per_step=4) > base
    assert estimate(faces=600000, vertices=300000) > base
    assert estimate(shade_pixels=1 << 19) > base
    assert estimate(shader_hidden=128) > base
    assert 1 * GB < base < 8 * GB  # one DTU view per step stays well under the 8 GB target


def test_planner_fits_budgets_with_monotonic_choices() -> None:
    sch = make_schedule(2000, 1600, "cuda")
    sch = replace(sch, max_sides=[1600] * 4, pixel_budgets=[8 * 1200 * 1600] * 4)  # eight full views per step
    plans = []
    for gb in (0.5, 2, 8, 80):
        planned, plan = plan_memory(sch, DTU, 49, int(gb * GB))
        assert plan.fits and plan.estimate_bytes <= gb * GB
        assert planned.views_per_step(pixels_at(*DTU, planned.max_sides[0]), 49, 0) == plan.views_per_step
        assert max(planned.max_sides) == plan.max_side and planned.shade_pixels == plan.shade_pixels
        plans.append(plan)
    for small, big in zip(plans, plans[1:]):
        assert small.views_per_step <= big.views_per_step
        assert small.shade_pixels <= big.shade_pixels
        assert small.max_side <= big.max_side
    assert plans[-1].views_per_step == 8 and plans[-1].max_side == 1600 and not plans[-1].reduced
    assert plans[1].views_per_step < 8
    assert plans[0].max_side < 1600 and "render resolution" in plans[0].reduced
    tiny = plan_memory(sch, DTU, 49, 1 << 20)[1]
    assert not tiny.fits and tiny.max_side == 128 and tiny.views_per_step == 1


def test_cpu_keeps_todays_schedule() -> None:
    sch = make_schedule(300, 128, "cpu")
    assert available_bytes(torch.device("cpu")) is None
    planned, plan = plan_memory(sch, (128, 128), 16, None, "cpu")
    assert planned == sch and plan.fits and plan.to_dict()["available_mb"] is None


def test_halved_budget_needs_less_memory() -> None:
    sch = replace(make_schedule(2000, 1600, "cuda"), max_sides=[1600] * 4, pixel_budgets=[1200 * 1600] * 4)
    many = replace(sch, pixel_budgets=[4 * 1200 * 1600] * 4)
    half = halve_budget(many, DTU, 49)
    assert half.views_per_step(pixels_at(*DTU, 1600), 49, 0) == 2 and half.max_sides == many.max_sides
    one = halve_budget(sch, DTU, 49)
    assert max(one.max_sides) < 1600 and one.shade_pixels == sch.shade_pixels // 2
    assert pixels_at(*DTU, one.max_sides[0]) <= 0.55 * pixels_at(*DTU, 1600)


def test_oom_recognised_and_explained() -> None:
    assert is_oom(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_oom(RuntimeError("MPS backend out of memory (MPS allocated: 9 GB)"))
    assert not is_oom(RuntimeError("shape mismatch"))
    err = oom_error(torch.device("cuda"), (1200, 1600), 4)
    assert err.message == "ran out of GPU memory at 1600x1200 with 4 views per step"
    assert "image_scale" in err.hint and "Draft" in err.hint and "--device cpu" in err.hint


def sphere_scene(iterations: int) -> Scene:
    """A coloured sphere seen by 12 cameras at 64x64, CPU settings for a short run."""
    views = []
    for i, sv in enumerate(sphere_views(n=12, res=64, f=80.0)):
        h, w = sv.mask.shape
        ramp = np.linspace(0.2, 0.9, w, dtype=np.float32)[None, :]
        image = np.stack([np.broadcast_to(ramp, (h, w)), np.full((h, w), 0.5, np.float32),
                          np.full((h, w), 0.3, np.float32)], -1)
        views.append(View(f"cam_{i:03d}", image * sv.mask[..., None], sv.mask, sv.K, sv.R, sv.t))
    settings = {"device": "cpu", "rasterizer": "auto", "iterations": iterations, "texture_size": 64,
                "symmetry": "detect", "seed": 0}
    return Scene(views, (np.full(3, -0.7), np.full(3, 0.7)), settings=settings)


def flaky_step(monkeypatch: pytest.MonkeyPatch, fail_calls: set[int]) -> list:
    """Make Optimizer.step raise CUDA's out-of-memory on the given call numbers; returns the schedules seen."""
    real = rec.Optimizer.step
    seen: list = []

    def step(self: rec.Optimizer, i: int) -> dict[str, float]:
        seen.append(self.schedule)
        if len(seen) in fail_calls:
            real(self, i)  # the real work first, so the failure happens with tensors allocated
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.50 GiB")
        return real(self, i)

    monkeypatch.setattr(rec.Optimizer, "step", step)
    return seen


def test_one_oom_retries_with_half_the_budget_and_goes_on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen = flaky_step(monkeypatch, {3})
    log = io.StringIO()
    result = rec.reconstruct(sphere_scene(8), tmp_path / "out", Reporter(io.StringIO(), True, log))
    assert result["memory_plan"]["oom_retries"] == 1
    assert len(seen) == 9  # 8 steps plus the retried one
    before, after = seen[2], seen[3]
    assert after.shade_pixels == before.shade_pixels // 2
    assert max(after.max_sides) < max(before.max_sides) or after.pixel_budgets < before.pixel_budgets
    assert all(s is after for s in seen[3:])
    assert "out of memory" in log.getvalue() and "memory plan" in log.getvalue()
    assert (tmp_path / "out" / "result.json").is_file()


def test_second_oom_is_a_job_error_naming_the_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    flaky_step(monkeypatch, {3, 4})
    with pytest.raises(JobError) as info:
        rec.reconstruct(sphere_scene(8), tmp_path / "out", Reporter(io.StringIO(), True, io.StringIO()))
    assert info.value.message.startswith("ran out of host memory at ")
    assert "views per step" in info.value.message or "view per step" in info.value.message
    assert "image_scale" in info.value.hint and "--device cpu" in info.value.hint
    assert not (tmp_path / "out" / "result.json").exists()
