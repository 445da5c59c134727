"""Per-view tensors for the optimisation: images and masks at several resolutions, clip matrices."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as tf

from backend.cameras.projection import projection_matrix


@dataclass
class ViewLevel:
    """All views at one resolution (views sharing a size are batched together)."""

    images: list[torch.Tensor]  # (H, W, 3)
    masks: list[torch.Tensor]  # (H, W, 1) soft coverage in [0, 1]
    mvps: list[torch.Tensor]  # (4, 4) world-to-clip
    projections: list[torch.Tensor]  # (4, 4) camera-to-clip (for refined poses: mvp = projection @ [R | t])
    sizes: list[tuple[int, int]]  # (H, W)
    pixel_weights: list[torch.Tensor | None]  # (H, W, 1) mask-loss weight per pixel, None where all are 1

    def mask_weights(self, members: list[int]) -> torch.Tensor | None:
        """The views' mask-loss pixel weights stacked (B, H, W, 1), ones for views without; None when none has any."""
        if all(self.pixel_weights[i] is None for i in members):
            return None
        return torch.stack([torch.ones_like(self.masks[i]) if self.pixel_weights[i] is None else self.pixel_weights[i]
                            for i in members])


class ViewSet:
    """The scene's views in normalised coordinates, resampled on demand to a maximum image side."""

    def __init__(self, views: list, device: torch.device, pixel_weights: list[np.ndarray | None] | None = None) -> None:
        """`pixel_weights`: per view a (H, W) mask-loss weight image at full resolution or None (all ones),
        resampled with the masks at each resolution."""
        self.views = views
        self.pixel_weights = pixel_weights or [None] * len(views)
        self.device = device
        self.centers = torch.tensor(np.stack([v.center for v in views]), dtype=torch.float32, device=device)
        self._levels: dict[int, ViewLevel] = {}

    def __len__(self) -> int:
        return len(self.views)

    def level(self, max_side: int) -> ViewLevel:
        """Views scaled so the longer image side is at most max_side (area-averaged)."""
        if max_side not in self._levels:
            self._levels[max_side] = self._build(max_side)
        return self._levels[max_side]

    def keep_levels(self, sides: set[int]) -> None:
        """Drop cached resolutions other than these (frees device memory after the render side was lowered)."""
        self._levels = {k: lv for k, lv in self._levels.items() if k in sides}

    def _build(self, max_side: int) -> ViewLevel:
        images, masks, mvps, projections, sizes, weights = [], [], [], [], [], []
        for v, pw in zip(self.views, self.pixel_weights):
            h, w = v.height, v.width
            s = min(1.0, max_side / max(h, w))
            hs, ws = max(1, int(round(h * s))), max(1, int(round(w * s)))
            img = torch.from_numpy(np.ascontiguousarray(v.image, dtype=np.float32))
            msk = torch.from_numpy(np.ascontiguousarray(v.mask, dtype=np.float32))[..., None]
            parts = [img, msk]
            if pw is not None:
                parts.append(torch.from_numpy(np.ascontiguousarray(pw, dtype=np.float32))[..., None])
            stack = torch.cat(parts, dim=-1).permute(2, 0, 1)[None]
            if (hs, ws) != (h, w):
                stack = tf.interpolate(stack, size=(hs, ws), mode="area")
            stack = stack[0].permute(1, 2, 0).contiguous().to(self.device)
            k = np.diag([ws / w, hs / h, 1.0]) @ np.asarray(v.K, dtype=np.float64)
            depth = np.linalg.norm(v.center)
            near, far = max(1e-3, depth - 2.0), depth + 2.0
            proj = projection_matrix(k, ws, hs, near, far)
            rt = np.eye(4)
            rt[:3, :3], rt[:3, 3] = v.R, v.t
            images.append(stack[..., :3])
            masks.append(stack[..., 3:4])
            weights.append(None if pw is None else stack[..., 4:5])
            mvps.append(torch.tensor(proj @ rt, dtype=torch.float32, device=self.device))
            projections.append(torch.tensor(proj, dtype=torch.float32, device=self.device))
            sizes.append((hs, ws))
        return ViewLevel(images, masks, mvps, projections, sizes, weights)
