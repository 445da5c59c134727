"""Quality levels: how long the optimisation may run and when it counts as done.

The one definition the command line's `--quality`, the job setting `quality` and the Blender add-on's presets
share (the add-on imports this module from the backend bundled inside it). Standard library only.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QualityLevel:
    """Step bounds and convergence thresholds of one level (steps are optimisation steps)."""

    name: str
    phase_min_steps: int  # a phase (the steps between two remeshes) runs at least this long
    phase_max_steps: int  # and at most this long, settled or not
    tail_steps: int  # steps after the last remesh, the vertex step annealed over them
    max_steps: int  # cap on the whole run
    drift_px: float  # a surface moving less than this (rendered pixels per check) has stopped
    loss_change: float  # relative change of the mean loss between checks under which it has stopped falling
    plateau: float  # a phase's drift has levelled off when it falls by less than this fraction of its first drift
    description: str = ""
    # The coarse first phase (cheap steps) runs on past phase_max_steps, up to first_phase_max_steps, while its
    # loss still falls: the mean of its last 75 steps (PhaseMonitor.fall_checks checks) more than first_phase_fall
    # below the 75 before (0: never).
    first_phase_max_steps: int = 0
    first_phase_fall: float = 0.0


LEVELS: dict[str, QualityLevel] = {
    "draft": QualityLevel("draft", 50, 100, 150, 450, drift_px=0.2, loss_change=0.05, plateau=0.10,
                          description="Fast preview: phases of 50-100 steps, 150 after the last remesh, at most 450"),
    # Phases of 150 steps and a 250-step anneal (issue 23: phases that "settled" after 75-125 steps cost 2-8 %
    # Chamfer on teapot, Suzanne, Spot and fandisk; letting a still-moving phase run past 150 steps gained at most
    # 1 % and cost fandisk 6 %: BENCHMARKS.md "Stop when done", ninth session). A phase still moving at 150 steps
    # ends as "cap"; the monitor's record says how far each phase had settled.
    # The coarse first phase runs on past 150 steps (up to 450) while the mean loss of its last 75 steps is still
    # more than 1 % under the 75 before: fandisk's channel and the mug's cup, which the visual hull fills, are dug
    # there or not at all (issue 23, BENCHMARKS.md "The coarse phase runs while its loss falls", fourteenth session).
    "standard": QualityLevel("standard", 150, 150, 250, 1050, drift_px=0.1, loss_change=0.03, plateau=0.05,
                             description="Phases of 150 steps (the first up to 450 while its loss falls), 250 "
                                         "annealed steps after the last remesh, at most 1050",
                             first_phase_max_steps=450, first_phase_fall=0.01),
    "high": QualityLevel("high", 150, 400, 800, 2200, drift_px=0.05, loss_change=0.02, plateau=0.03,
                         description="Longer phases (150-400 steps), 800 steps after the last remesh, at most 2200"),
}
DEFAULT_QUALITY = "standard"


def quality_level(name: str | None) -> QualityLevel:
    """The level called `name` (None: the default level); KeyError names the levels that exist."""
    key = DEFAULT_QUALITY if name is None else str(name).lower()
    if key not in LEVELS:
        raise KeyError(f"unknown quality {name!r}; levels: {', '.join(LEVELS)}")
    return LEVELS[key]
