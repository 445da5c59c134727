"""The crease rule of the later remeshes: which edges stay creases, measured on a denoised copy of the mesh."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backend.geometry.remesh import crease_edges
from backend.post.denoise import bilateral_normal_denoise


@dataclass(frozen=True)
class CreaseRule:
    """Which edges a remesh keeps as creases: turning by more than `degrees`, measured on the mesh after
    `denoise` bilateral normal filtering passes (0: as it is) whose range kernel is `sigma` (a difference of unit
    normals): the optimiser's noisy kinks are smoothed away first, true creases stay."""

    degrees: float
    denoise: int = 0
    sigma: float = 0.5

    def edges(self, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
        """The crease edges (E, 2) of the mesh."""
        if self.denoise > 0:
            vertices = bilateral_normal_denoise(vertices, faces, normal_iterations=self.denoise, sigma_normal=self.sigma)
        return crease_edges(vertices, faces, self.degrees)
