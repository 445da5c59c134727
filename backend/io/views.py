"""In-memory form of a multi-view job: every input layout is read into these."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DEFAULT_SETTINGS: dict = {
    "device": "auto",
    "rasterizer": "auto",
    "image_scale": 1,
    "iterations": None,  # None: stop when the mesh stops changing, bounded by `quality`; a number: that many steps
    "quality": "standard",  # draft / standard / high: backend/io/quality.py LEVELS (used when iterations is None)
    "symmetry": "detect",
    "texture_size": 2048,
    "seed": 0,
    "initial_mesh": None,  # a mesh or point-cloud file to start from instead of the visual hull
    "max_faces": None,  # output face budget; None: DEFAULT_MAX_FACES
    "refine_cameras": False,  # optimise per-view pose corrections (and a shared focal scale) with the mesh
    "topology": "auto",  # auto / on / off: the signed-distance stage that lets the surface change genus (issue 24)
}
DEFAULT_MAX_FACES = 200_000


@dataclass
class View:
    """One calibrated photograph in the OpenCV convention (x_cam = R X + t, pixels = K x / z)."""

    name: str
    image: np.ndarray  # (H, W, 3) float32 in [0, 1], colours as stored in the file
    mask: np.ndarray | None  # (H, W) bool, True on the object; None: no mask given (made automatically later)
    K: np.ndarray  # (3, 3) float64
    R: np.ndarray  # (3, 3) float64, world-to-camera rotation
    t: np.ndarray  # (3,) float64
    mask_auto: bool = False  # the mask was made automatically (from photos): trusted less where views disagree

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def center(self) -> np.ndarray:
        """Camera centre in world coordinates."""
        return -self.R.T @ self.t


@dataclass
class Scene:
    """A whole job: views, optional bounding box (min, max), settings, and optional sparse points (COLMAP)."""

    views: list[View]
    bbox: tuple[np.ndarray, np.ndarray] | None = None
    settings: dict = field(default_factory=lambda: dict(DEFAULT_SETTINGS))
    image_scale_applied: float = 1.0  # settings["image_scale"] already applied to images and K at load
    points: np.ndarray | None = None  # (N, 3) float64 world points of a structure-from-motion model, if any
    point_colors: np.ndarray | None = None  # (N, 3) uint8 colours of `points`, if known
    floor: tuple[np.ndarray, float] | None = None  # (unit up normal, offset) of the plane the object stands on
