"""Stop when done: quality levels, surface drift in pixels, phase monitors, the online plan, and a real run that
stops on its own."""
from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backend.io.quality import DEFAULT_QUALITY, LEVELS, quality_level
from backend.optim.convergence import (PhaseMonitor, StopRule, drift_px, first_phase_extension, phase_budget,
                                      vertex_normals)
from backend.optim.schedule import converge_schedule, make_schedule
from backend.optim.stopping import PhasePlan

ROOT = Path(__file__).resolve().parents[1]
RULE = StopRule(drift_px=0.1, loss_change=0.03, plateau=0.05, check_every=25)
PIXEL = 0.01


def _sphere() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An icosphere's vertices, faces and exact unit normals."""
    import trimesh

    mesh = trimesh.creation.icosphere(3)
    v = np.asarray(mesh.vertices, dtype=np.float64)
    return v, np.asarray(mesh.faces), v / np.linalg.norm(v, axis=1, keepdims=True)


SPHERE = _sphere()


def test_levels_are_the_issue_table() -> None:
    """Per-phase bounds, tail, cap and thresholds of the three levels; standard is the default."""
    d, s, h = LEVELS["draft"], LEVELS["standard"], LEVELS["high"]
    assert (d.phase_min_steps, d.phase_max_steps, d.tail_steps, d.max_steps) == (50, 100, 150, 450)
    assert (d.drift_px, d.loss_change) == (0.2, 0.05)
    assert (s.phase_min_steps, s.phase_max_steps, s.tail_steps, s.max_steps) == (150, 150, 250, 1050)
    assert (s.first_phase_max_steps, s.first_phase_fall) == (450, 0.01)
    assert (s.drift_px, s.loss_change, s.plateau) == (0.1, 0.03, 0.05)
    assert (h.phase_min_steps, h.phase_max_steps, h.tail_steps, h.max_steps) == (150, 400, 800, 2200)
    assert DEFAULT_QUALITY == "standard" and quality_level(None) is s and quality_level("HIGH") is h
    for level in LEVELS.values():  # three phases at their longest (the first extended) and the tail fit under the cap
        first = max(level.phase_max_steps, level.first_phase_max_steps)
        assert first + 2 * level.phase_max_steps + level.tail_steps <= level.max_steps
    with pytest.raises(KeyError, match="draft"):
        quality_level("ultra")


def test_drift_px_is_the_mean_move_in_pixels() -> None:
    rng = np.random.default_rng(0)
    v = rng.normal(size=(500, 3))
    assert drift_px(v, v, PIXEL) == 0.0
    assert drift_px(v, v + [0.5 * PIXEL, 0, 0], PIXEL) == pytest.approx(0.5)
    moved = v.copy()
    moved[:250] += [0, 0, 4 * PIXEL]  # half the vertices move 4 px: 2 px on average
    assert drift_px(v, moved, PIXEL) == pytest.approx(2.0)


def test_drift_px_along_normals_ignores_sliding() -> None:
    """On a sphere, vertices sliding along the surface do not count; moving out by 1 px does."""
    v, f, n = SPHERE
    tangent = np.cross(n, [0.0, 0.0, 1.0])
    assert drift_px(v, v + 3 * PIXEL * tangent, PIXEL, n) == pytest.approx(0.0, abs=1e-9)
    assert drift_px(v, v + PIXEL * n, PIXEL, n) == pytest.approx(1.0)
    assert vertex_normals(v, f) == pytest.approx(n, abs=0.05)


def test_phase_budget_keeps_the_run_under_the_cap() -> None:
    level = LEVELS["standard"]
    assert phase_budget(level, 0, 3) == (150, 150)
    assert phase_budget(level, 300, 1) == (150, 150)  # 300 + 150 + 250 = 700 <= 1050
    assert phase_budget(level, 670, 1) == (130, 130)  # 670 + 130 + 250 = 1050
    assert phase_budget(dataclasses.replace(level, phase_max_steps=300), 300, 1) == (150, 300)
    low, high = phase_budget(level, 1040, 1)
    assert 1 <= low <= high


def run_monitor(monitor: PhaseMonitor, moves: list[np.ndarray], losses: list[float]) -> list[str | None]:
    """Feed the monitor one check per entry: the sphere's vertices moved by `moves[k]`, the window's mean loss."""
    v, f, _ = SPHERE
    monitor.start(v, f)
    out = []
    for k, (move, loss) in enumerate(zip(moves, losses)):
        v = v + move
        out.append(monitor.check(monitor.start_step + (k + 1) * monitor.rule.check_every, v, loss))
        if out[-1] is not None:
            break
    return out


def jitter(size_px: float, seed: int) -> np.ndarray:
    """Every vertex moves `size_px` pixels in or out at random (no net direction)."""
    sign = np.random.default_rng(seed).choice([-1.0, 1.0], size=(len(SPHERE[0]), 1))
    return sign * SPHERE[2] * size_px * PIXEL


def grow(size_px: float) -> np.ndarray:
    """Every vertex moves `size_px` pixels out (the surface travels)."""
    return SPHERE[2] * size_px * PIXEL


def test_monitor_settles_when_the_surface_only_jitters_and_the_loss_is_flat() -> None:
    """A big first move, then even jitter and a flat loss: converged at the first check after min."""
    monitor = PhaseMonitor(RULE, PIXEL, start_step=100, min_steps=75, max_steps=150)
    moves = [jitter(10.0, 0)] + [jitter(0.2, k) for k in range(1, 6)]
    out = run_monitor(monitor, moves, [1.0, 0.5, 0.49, 0.489, 0.489, 0.489])
    assert out == [None, None, "converged"]  # 75 steps: three checks
    assert monitor.summary(175, "converged")["steps"] == 75
    assert monitor.drifts[0] == pytest.approx(10.0, rel=0.01) and monitor.drifts[-1] == pytest.approx(0.2, rel=0.15)


def test_monitor_waits_while_the_surface_travels() -> None:
    """Small moves that all go the same way (the surface still travelling) never settle: the phase runs to max."""
    monitor = PhaseMonitor(RULE, PIXEL, start_step=0, min_steps=75, max_steps=150)
    moves = [jitter(10.0, 0)] + [grow(0.3)] * 5
    out = run_monitor(monitor, moves, [1.0] + [0.5] * 5)
    assert out == [None] * 5 + ["cap"]
    assert monitor.travel[-1] == pytest.approx(1.0, abs=0.02)


def test_monitor_waits_while_the_drift_still_falls() -> None:
    """A surface whose moves still shrink by more than the plateau fraction per check is still settling."""
    monitor = PhaseMonitor(RULE, PIXEL, start_step=0, min_steps=75, max_steps=125)
    moves = [jitter(size, k) for k, size in enumerate((10.0, 6.0, 4.5, 3.0, 1.5))]
    assert run_monitor(monitor, moves, [0.5] * 5) == [None] * 4 + ["cap"]


def test_monitor_waits_while_the_loss_falls() -> None:
    monitor = PhaseMonitor(RULE, PIXEL, start_step=0, min_steps=75, max_steps=150)
    moves = [jitter(10.0, 0)] + [jitter(0.05, k) for k in range(1, 6)]
    out = run_monitor(monitor, moves, [1.0 * 0.9 ** k for k in range(6)])
    assert out[-1] == "cap" and len(out) == 6


def test_monitor_never_ends_a_phase_before_its_minimum() -> None:
    monitor = PhaseMonitor(RULE, PIXEL, start_step=0, min_steps=100, max_steps=150)
    moves = [jitter(10.0, 0)] + [jitter(0.01, k) for k in range(1, 6)]
    out = run_monitor(monitor, moves, [1.0] * 6)
    assert out == [None, None, None, "converged"]
    assert monitor.due(25) and not monitor.due(30) and monitor.due(150) and not monitor.due(0)


def test_first_phase_runs_on_while_its_loss_falls() -> None:
    """Past its maximum, an extended phase goes on while the mean loss of its last two checks is more than 4 %
    under the two before, and ends ("cap") at the first check where it is not; never past `extend_to`."""
    def extended(losses: list[float], max_steps: int = 100) -> tuple[list[str | None], PhaseMonitor]:
        monitor = PhaseMonitor(RULE, PIXEL, start_step=0, min_steps=50, max_steps=max_steps, extend_to=200, fall=0.04,
                               fall_checks=2)
        moves = [jitter(10.0, 0)] + [grow(1.0)] * (len(losses) - 1)  # travelling: never "converged"
        return run_monitor(monitor, moves, losses), monitor

    out, monitor = extended([1.0, 0.9, 0.8, 0.7, 0.69, 0.69, 0.69, 0.69])
    assert out == [None] * 6 + ["cap"]  # 175 steps: the first check whose last two are not 4 % under
    assert monitor.loss_fall() == pytest.approx((0.695 - 0.69) / 0.695)
    assert monitor.summary(150, "cap")["loss_fall"] == pytest.approx(0.0072, abs=1e-4)
    out, _ = extended([0.9 ** k for k in range(12)])  # falling throughout: stops at extend_to
    assert out == [None] * 7 + ["cap"]
    out, _ = extended([1.0, 0.9], max_steps=50)  # too few checks to tell at the maximum: ends there
    assert out == [None, "cap"]
    # a jittering surface whose loss falls 2.5 % per check counts as settled (under loss_change) ... unless extended
    slow = [0.975 ** k for k in range(10)]
    moves = [jitter(10.0, 0)] + [jitter(0.05, k) for k in range(1, 10)]
    settled = PhaseMonitor(RULE, PIXEL, start_step=0, min_steps=50, max_steps=100)
    assert run_monitor(settled, moves, slow)[-1] == "converged" and len(settled.losses) == 3
    going = PhaseMonitor(RULE, PIXEL, start_step=0, min_steps=50, max_steps=100, extend_to=200, fall=0.02,
                         fall_checks=1)
    assert run_monitor(going, moves, slow)[-1] == "converged" and len(going.losses) == 8  # on to extend_to
    plain = PhaseMonitor(RULE, PIXEL, start_step=0, min_steps=50, max_steps=50)
    assert run_monitor(plain, [jitter(10.0, 0)] + [grow(1.0)], [1.0, 0.5]) == [None, "cap"]
    assert "loss_fall" not in plain.summary(50, "cap")
    # past max, checks stay every check_every steps (not every step) up to extend_to
    monitor = PhaseMonitor(RULE, PIXEL, start_step=100, min_steps=50, max_steps=60, extend_to=130)
    assert [s for s in range(101, 231) if monitor.due(s)] == [125, 150, 160, 175, 200, 225, 230]


def test_first_phase_extension_fits_under_the_cap() -> None:
    """Standard extends its coarse phase up to first_phase_max_steps while the cap leaves room for the two
    phases after it and the tail; a level without a fall threshold does not extend."""
    level = LEVELS["standard"]
    assert first_phase_extension(level, 3) == level.first_phase_max_steps
    assert level.first_phase_max_steps + 2 * level.phase_min_steps + level.tail_steps <= level.max_steps
    assert first_phase_extension(dataclasses.replace(level, max_steps=700), 3) == 150
    assert first_phase_extension(LEVELS["draft"], 3) == 0 and first_phase_extension(LEVELS["high"], 3) == 0


def test_fixed_plan_runs_its_iterations() -> None:
    plan = PhasePlan.fixed([250, 125, 375], 500)
    assert plan.remesh_steps == [125, 250, 375] and not plan.online
    assert plan.running(499) and not plan.running(500) and plan.total() == 500
    assert plan.stop_reason() == "iterations"


def test_converging_plan_ends_a_tail_after_the_last_remesh() -> None:
    level = LEVELS["standard"]
    plan = PhasePlan.converging(level)
    assert plan.total() == 1050 and plan.running(1049) and not plan.running(1050)
    plan.end_phase(150, {"steps": 150, "reason": "converged"})
    plan.end_phase(350, {"steps": 200, "reason": "cap"})
    assert plan.end is None and plan.total() == 1050 and plan.phases_left() == 1
    plan.end_phase(500, {"steps": 150, "reason": "converged"})
    assert plan.remesh_steps == [150, 350, 500] and plan.end == 750 and plan.total() == 750
    assert plan.running(749) and not plan.running(750)
    assert plan.stop_reason() == "cap"  # one phase ran to its maximum
    settled = PhasePlan.converging(level)
    for step in (150, 300, 450):
        settled.end_phase(step, {"steps": 150, "reason": "converged"})
    assert settled.stop_reason() == "converged" and settled.end == 700


def test_anneal_from_moves_the_cosine_tail() -> None:
    """A fixed schedule anneals over its last phase as before; a converging one only from `anneal_from` on."""
    fixed = make_schedule(1000, 256, "cpu")
    assert fixed.anneal_from is None and fixed.lr_factor(749) == 1.0
    x = 100 / 250
    expect = fixed.final_lr_ratio + (1 - fixed.final_lr_ratio) * 0.5 * (1 + math.cos(math.pi * x))
    assert fixed.lr_factor(850) == pytest.approx(expect)
    conv = converge_schedule(900, 256, "cpu")
    assert conv.remesh_steps == [] and conv.iterations == 900
    assert all(conv.lr_factor(s) == 1.0 for s in (0, 400, 899))
    tail = conv.__class__(**{**conv.__dict__, "remesh_steps": [80, 160, 240], "anneal_from": 240, "iterations": 640})
    assert tail.lr_factor(239) == 1.0 and tail.lr_factor(440) == pytest.approx(0.5 * (1 + tail.final_lr_ratio))
    assert tail.lr_factor(640) == pytest.approx(tail.final_lr_ratio)


@pytest.mark.slow
def test_converging_run_stops_before_its_cap(tmp_path: Path) -> None:
    """A draft run on a Cycles-rendered Suzanne ends on its own: its phases settle, fewer steps than the cap."""
    from scenegen import render_job_subprocess

    job = render_job_subprocess(tmp_path / "job", mesh="suzanne", n_views=16, resolution=128, samples=4)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "backend", "reconstruct", str(job), "--out", str(out),
                           "--quality", "draft", "--texture-size", "64", "--symmetry", "off", "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((out / "result.json").read_text())
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    totals = [x["total"] for x in lines if x.get("type") == "progress" and x["stage"] == "optimize"]
    phases = result["convergence"]["phases"]
    settled = [p["reason"] == "converged" for p in phases]
    # A phase may settle at its very last check (the drift criterion near its threshold): that phase then counts as
    # capped, but the run as a whole must still end on its own, well before the cap.
    assert len(phases) == 3 and sum(settled) >= 2, result["convergence"]
    assert result["stop_reason"] == ("converged" if all(settled) else "cap")
    assert result["quality"] == "draft" and result["iterations"] < LEVELS["draft"].max_steps
    assert [r["step"] for r in result["remeshes"][1:]] == [p["end_step"] for p in phases]
    assert result["iterations"] == phases[-1]["end_step"] + LEVELS["draft"].tail_steps
    assert totals[0] == LEVELS["draft"].max_steps and totals[-1] == result["iterations"]


def test_schedule_overrides_change_only_the_loss_weights_they_name() -> None:
    """`--set weights.shading=2` (bench scripts) changes that weight and keeps the others; other fields replace."""
    from backend.optim.schedule import make_schedule, with_overrides

    base = make_schedule(700, 128, "cpu")
    changed = with_overrides(base, {"weights": {"shading": 3.0}, "regulariser_growth": 1.5})
    assert changed.weights == {**base.weights, "shading": 3.0}
    assert changed.regulariser_growth == 1.5 and base.regulariser_growth == 2.0
    assert base.weights["shading"] == 2.0 and base.weights["mask"] == 15.0
    assert base.first_phase_lr == 2.0 and make_schedule(700, 512, "cuda").first_phase_lr == 1.0
