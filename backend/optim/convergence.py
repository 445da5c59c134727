"""When a phase of the optimisation is done: the surface has stopped moving (in pixels of the views) and the
loss has stopped falling."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import trimesh

from backend.io.quality import QualityLevel


@dataclass(frozen=True)
class StopRule:
    """Thresholds of one quality level, and how often the surface is measured."""

    drift_px: float  # drift per check under which the surface has stopped whatever its start
    loss_change: float  # relative change of the window-mean loss under which the loss has stopped falling
    plateau: float  # the drift has levelled off when it falls by less than this fraction of the phase's first
    check_every: int = 25  # steps between two measurements
    travel_ratio: float = 0.85  # net move over two checks / their summed drifts above which the surface travels

    @classmethod
    def from_level(cls, level: QualityLevel) -> "StopRule":
        """The rule of a quality level."""
        return cls(drift_px=level.drift_px, loss_change=level.loss_change, plateau=level.plateau)


def drift_px(previous: np.ndarray, current: np.ndarray, pixel_size: float, normals: np.ndarray | None = None) -> float:
    """Mean distance the vertices moved from `previous` to `current` (same topology), in rendered pixels at the
    object (`pixel_size`: one pixel's size in the vertices' units, Schedule.pixel_size). With unit `normals` of
    `previous`, only the move across the surface counts (a vertex sliding along the surface changes nothing)."""
    if len(current) == 0:
        return 0.0
    delta = np.asarray(current, float) - np.asarray(previous, float)
    moved = np.abs(np.einsum("ij,ij->i", delta, normals)) if normals is not None else np.linalg.norm(delta, axis=1)
    return float(moved.mean() / max(pixel_size, 1e-12))


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unit area-weighted vertex normals (trimesh)."""
    return np.asarray(trimesh.Trimesh(vertices, faces, process=False).vertex_normals, dtype=np.float64)


def room_under_cap(level: QualityLevel, steps_done: int, phases_left: int) -> int:
    """Steps the next phase may take so that the phases after it (at their minimum) and the tail still fit under
    the level's cap."""
    return level.max_steps - level.tail_steps - steps_done - (phases_left - 1) * level.phase_min_steps


def phase_budget(level: QualityLevel, steps_done: int, phases_left: int) -> tuple[int, int]:
    """(min, max) steps of the next phase: the level's bounds, shortened to the room under the cap."""
    high = max(1, min(level.phase_max_steps, room_under_cap(level, steps_done, phases_left)))
    return min(level.phase_min_steps, high), high


def first_phase_extension(level: QualityLevel, phases_left: int) -> int:
    """The most steps the first phase may run while its loss still falls (0: the level does not extend it),
    leaving room under the cap for the phases still to come at their minimum and the tail."""
    if level.first_phase_fall <= 0 or level.first_phase_max_steps <= level.phase_max_steps:
        return 0
    return max(0, min(level.first_phase_max_steps, room_under_cap(level, 0, phases_left)))


@dataclass
class PhaseMonitor:
    """Measures one phase every `rule.check_every` steps; says when it has settled or run out of steps.

    The vertices given to each check are their mean over the steps since the previous check (the first drift
    is measured from the phase's starting surface), so the optimiser's step-to-step jitter mostly cancels.

    An extended phase (`extend_to`, the standard level's first) does not end while its loss still falls (the mean of
    the last `fall_checks` checks more than `fall` under the ones before), up to `extend_to` steps.

    The drift is the vertices' mean move along the surface normal (sliding along the surface does not count).
    The phase settles when the drift per check has levelled off (it fell by less than `plateau` x the phase's
    first drift since the previous check) or is under the absolute `drift_px`, without travelling (the last two
    checks' moves not lined up one after the other: what is left is the optimiser's jitter), and the window-mean
    loss changed by less than `loss_change` since the previous check.
    """

    rule: StopRule
    pixel_size: float
    start_step: int
    min_steps: int
    max_steps: int
    extend_to: int = 0  # past max_steps, the phase goes on up to this many steps while its loss still falls
    fall: float = 0.0  # still falling: the last `fall_checks` checks' mean loss this fraction under the ones before
    fall_checks: int = 3
    drifts: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    travel: list[float] = field(default_factory=list)
    faces: np.ndarray | None = None
    _positions: list[np.ndarray] = field(default_factory=list)
    _normals: list[np.ndarray] = field(default_factory=list)

    def start(self, vertices: np.ndarray, faces: np.ndarray) -> None:
        """The phase's starting surface (just after its remesh): its faces stay the phase's."""
        self.faces = np.asarray(faces)
        self._positions = [np.array(vertices, dtype=np.float64)]
        self._normals = [vertex_normals(self._positions[0], self.faces)]

    def due(self, step: int) -> bool:
        """Whether `step` (steps done so far) is a measuring step of this phase."""
        done = step - self.start_step
        return done > 0 and (done % self.rule.check_every == 0 or done == self.max_steps
                             or done >= max(self.max_steps, self.extend_to))

    def check(self, step: int, vertices: np.ndarray, mean_loss: float) -> str | None:
        """Record a measurement after `step` steps; "converged", "cap" (max steps reached) or None (go on)."""
        current = np.array(vertices, dtype=np.float64)
        self.drifts.append(drift_px(self._positions[-1], current, self.pixel_size, self._normals[-1]))
        if len(self._positions) >= 2:
            net = drift_px(self._positions[-2], current, self.pixel_size, self._normals[-2])
            self.travel.append(net / max(self.drifts[-1] + self.drifts[-2], 1e-12))
        self._positions = [*self._positions[-1:], current]
        self._normals = [*self._normals[-1:], vertex_normals(current, self.faces)]
        self.losses.append(float(mean_loss))
        done = step - self.start_step
        if done < self.extend_to and self.still_falling():
            return None
        if done >= self.min_steps and self.settled():
            return "converged"
        return "cap" if done >= self.max_steps else None

    def loss_fall(self) -> float | None:
        """How far the mean loss of the last `fall_checks` checks is below that of the ones before, as a fraction
        of the earlier mean (None before twice that many checks)."""
        w = self.fall_checks
        if len(self.losses) < 2 * w:
            return None
        before, last = float(np.mean(self.losses[-2 * w:-w])), float(np.mean(self.losses[-w:]))
        return (before - last) / max(abs(before), 1e-12)

    def still_falling(self) -> bool:
        """Whether the loss still falls by more than `fall` over the last checks (the extension's test)."""
        fall = self.loss_fall()
        return self.fall > 0 and fall is not None and fall > self.fall

    def loss_change(self) -> float | None:
        """Relative change of the window-mean loss at the last check (None before two checks)."""
        if len(self.losses) < 2:
            return None
        return abs(self.losses[-1] - self.losses[-2]) / max(abs(self.losses[-2]), 1e-12)

    def settled(self) -> bool:
        """The drift has levelled off (it fell by less than `plateau` x the phase's first drift since the last
        check) or is under the absolute threshold, what is left is jitter (not travelling), and the loss is flat."""
        if len(self.drifts) < 2 or not self.travel:
            return False
        drift = self.drifts[-1]
        level = self.drifts[-2] - drift < self.rule.plateau * self.drifts[0]
        change = self.loss_change()
        return (drift < self.rule.drift_px or level) and self.travel[-1] < self.rule.travel_ratio \
            and change is not None and change < self.rule.loss_change

    def summary(self, step: int, reason: str) -> dict:
        """result.json's record of the phase: steps, drifts (px), last loss change, why it ended."""
        change, fall = self.loss_change(), self.loss_fall()
        return {"steps": step - self.start_step, "reason": reason,
                **({"loss_fall": None if fall is None else round(fall, 4)} if self.extend_to else {}),
                "drift_px": round(self.drifts[-1], 4) if self.drifts else None,
                "start_drift_px": round(self.drifts[0], 4) if self.drifts else None,
                "loss_change": None if change is None else round(change, 5)}
