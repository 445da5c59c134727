"""What structure from motion hands on: registered pinhole cameras, sparse points and the run's notes."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class SfmCamera:
    """One registered photo after undistortion to a pinhole camera (OpenCV convention x_cam = R X + t,
    pixel centres at +0.5, as COLMAP's)."""
    name: str             # the photo's file stem (unique)
    photo: Path           # the original photo
    image_path: Path      # the undistorted image (under work_dir/images)
    K: np.ndarray         # (3, 3)
    R: np.ndarray         # (3, 3) world to camera
    t: np.ndarray         # (3,)
    width: int
    height: int


@dataclass
class SfmResult:
    """The largest model COLMAP found, in its own world frame (arbitrary similarity)."""
    cameras: list[SfmCamera]
    unregistered: list[str]          # photo file names that went to matching but are not in the model
    left_out: dict[str, str]         # photo file name -> why it was left out before matching
    points: np.ndarray               # (N, 3) float64 sparse points
    colors: np.ndarray               # (N, 3) uint8
    point_views: list[np.ndarray]    # per point, sorted indices into `cameras` of the photos that see it
    reprojection_px: float           # mean reprojection error of the model's observations, pixels
    seconds: float
    warnings: list[str] = field(default_factory=list)
    model_dir: Path | None = None    # the undistorted pycolmap model (cameras.bin, images.bin, points3D.bin)
    source_model_dir: Path | None = None  # the model before undistortion (the photos' own lens models)
