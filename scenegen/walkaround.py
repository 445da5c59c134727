"""Phone-capture geometry (pure numpy): a person walking around an object in rings, and the phone's optics."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from scenegen.rig import look_at

FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)


@dataclass(frozen=True)
class PhoneOptics:
    """A phone main camera: sensor width and lens in millimetres (defaults: 1/2.55" sensor, ~67 deg wide)."""
    sensor_width_mm: float = 5.6
    lens_mm: float = 4.25
    make: str = "Scenegen"
    model: str = "Cycles Phone 26mm"

    def horizontal_fov_deg(self) -> float:
        """Full horizontal field of view (the sensor width fits the image width)."""
        return math.degrees(2 * math.atan(self.sensor_width_mm / 2 / self.lens_mm))

    def focal_35mm(self, width: int, height: int) -> int:
        """35 mm equivalent focal length as phones write it (CIPA: scaled by the image diagonal)."""
        sensor_diag = self.sensor_width_mm * math.hypot(width, height) / width
        return int(round(self.lens_mm * FULL_FRAME_DIAGONAL_MM / sensor_diag))


def ring_elevations(rings: int, low: float = 15.0, high: float = 50.0) -> np.ndarray:
    """Camera elevations (degrees above the horizon) of the rings, low to high."""
    if rings < 1:
        raise ValueError("need at least one ring")
    if rings == 1:
        return np.array([(low + high) / 2])
    pad = (high - low) / (2 * rings)
    return np.linspace(low + pad, high - pad, rings)


def photos_per_ring(n_photos: int, rings: int) -> list[int]:
    """Split n photos over the rings, the low (longer) rings getting any remainder first."""
    if n_photos < rings:
        raise ValueError(f"{n_photos} photos cannot make {rings} rings")
    base, extra = divmod(n_photos, rings)
    return [base + (1 if i < extra else 0) for i in range(rings)]


def fit_distance(radius: float, vfov: float, fill: float) -> float:
    """Distance at which a sphere of `radius` spans `fill` of the vertical field `vfov` (radians)."""
    return radius / math.sin(fill * vfov / 2)


def roll(matrix_world: np.ndarray, angle: float) -> np.ndarray:
    """The camera turned by `angle` radians about its viewing axis."""
    c, s = math.cos(angle), math.sin(angle)
    out = matrix_world.copy()
    right, up = matrix_world[:3, 0], matrix_world[:3, 1]
    out[:3, 0] = c * right + s * up
    out[:3, 1] = -s * right + c * up
    return out


def walkaround_poses(n_photos: int, rings: int, seed: int, target: np.ndarray, radius: float, vfov: float,
                     fill: float = 0.75, elevations: tuple[float, float] = (15.0, 50.0)) -> list[np.ndarray]:
    """Blender matrix_world of each photo: rings around `target` at rising heights, hand-held jitter.

    Jitter: azimuth within a quarter of the spacing, elevation +-3 deg, distance +-10 %, aim a few % of
    the radius off the target, roll about 2.5 deg. The bounding sphere fills about `fill` of the frame height.
    """
    rng = np.random.default_rng(seed)
    target = np.asarray(target, dtype=np.float64)
    base = fit_distance(radius, vfov, fill)
    poses = []
    start = rng.uniform(0, 2 * math.pi)
    for ring, (elev, count) in enumerate(zip(ring_elevations(rings, *elevations), photos_per_ring(n_photos, rings))):
        step = 2 * math.pi / count
        for k in range(count):
            az = start + (k + ring / rings) * step + rng.uniform(-0.25, 0.25) * step
            el = math.radians(elev + rng.uniform(-3.0, 3.0))
            dist = base * rng.uniform(0.9, 1.1)
            eye = target + dist * np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
            aim = target + rng.normal(0.0, 0.04 * radius, 3)
            poses.append(roll(look_at(eye, aim), math.radians(rng.normal(0.0, 2.5))))
    return poses
