"""Camera rig geometry (pure numpy): positions on a sphere, look-at poses, view filters."""
from __future__ import annotations

import math
import operator
import re
from typing import Callable

import numpy as np

GOLDEN_ANGLE = math.pi * (3.0 - math.sqrt(5.0))
_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
_FILTER_RE = re.compile(r"^\s*([xyz])\s*(>=|<=|>|<)\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?)\s*$")


def fibonacci_directions(n: int, seed: int = 0, z_range: tuple[float, float] = (-0.75, 0.9)) -> np.ndarray:
    """n unit vectors spread evenly over a sphere band (no views straight up or down)."""
    if n < 1:
        raise ValueError("need at least one view")
    lo, hi = z_range
    z = hi - (np.arange(n) + 0.5) / n * (hi - lo)
    offset = np.random.default_rng(seed).uniform(0, 2 * math.pi) if seed else 0.0
    phi = np.arange(n) * GOLDEN_ANGLE + offset
    r = np.sqrt(np.clip(1 - z * z, 0, None))
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """4x4 Blender camera matrix_world at `eye` looking at `target` (camera -Z forward, +Y up ~ world Z)."""
    forward = np.asarray(target, float) - np.asarray(eye, float)
    forward /= np.linalg.norm(forward)
    up = np.array([0.0, 0.0, 1.0]) if abs(forward[2]) < 0.999 else np.array([0.0, 1.0, 0.0])
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    cam_up = np.cross(right, forward)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, cam_up, -forward, eye
    return m


def fit_distance(radius: float, fov: float, margin: float = 1.05) -> float:
    """Distance at which a sphere of `radius` fits a cone of full angle `fov` (radians), with margin."""
    return margin * radius / math.sin(fov / 2.0)


def parse_filter(spec: str | Callable[[np.ndarray], bool] | None) -> Callable[[np.ndarray], bool]:
    """Predicate on a camera centre from a callable or a string like 'x>0' (None keeps all)."""
    if spec is None:
        return lambda c: True
    if callable(spec):
        return spec
    m = _FILTER_RE.match(spec)
    if not m:
        raise ValueError(f"view filter {spec!r} not understood; use e.g. 'x>0', 'y<=0.2', 'z>-0.5'")
    axis, op, value = "xyz".index(m.group(1)), _OPS[m.group(2)], float(m.group(3))
    return lambda c: bool(op(float(c[axis]), value))
