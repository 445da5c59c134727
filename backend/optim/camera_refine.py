"""Per-view camera corrections optimised with the mesh: R' = Exp(w_i) R_i, C' = C_i + d_i, one focal scale.

The corrections are optimised in a per-view basis that separates what the images pin down from what they
barely see: a rotation about the camera centre (moves the whole image), an orbit about the object centre
(the object stays put, only its perspective changes) and a dolly along the viewing axis. Adam's per-coordinate
step then converges the weak orbit mode instead of leaving it to drift with the strong one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from backend.cameras.pose import gauge_basis, skew

FOCAL_ENTRIES = ((0, 0), (0, 1), (1, 1))  # the projection matrix entries a focal scale multiplies


@dataclass
class RefineSettings:
    """Step sizes (Adam, per step) and the prior of the camera corrections."""

    lr_rotation: float = 1e-3  # radians
    lr_orbit: float = 1e-3  # radians about the object centre
    lr_focal: float = 1e-4  # of log focal scale
    prior: float = 1e-3  # weight of the quadratic pull toward the given cameras
    refine_focal: bool = False
    start_fraction: float = 0.25  # of the iterations (the first remesh): the silhouettes fit coarsely by then
    remesh_decay: float = 0.5  # the steps halve at each remesh after the start: less wander of exact cameras
    settle_px: float = 1.5  # at a later remesh, views whose correction moves the object's image less are held


def skew_batch(w: torch.Tensor) -> torch.Tensor:
    """Cross-product matrices (N, 3, 3) of vectors w (N, 3)."""
    z = torch.zeros_like(w[:, 0])
    return torch.stack([z, -w[:, 2], w[:, 1], w[:, 2], z, -w[:, 0], -w[:, 1], w[:, 0], z], dim=1).view(-1, 3, 3)


def so3_exp_batch(w: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (N, 3, 3) of axis-angle vectors (N, 3), differentiable (matrix exponential)."""
    return torch.linalg.matrix_exp(skew_batch(w))


def correction_maps(rotations: np.ndarray, centres: np.ndarray, depth: float) -> tuple[np.ndarray, np.ndarray]:
    """Per view, the matrix A (3, 2) of the centre move of a camera-frame orbit (o_x, o_y) about the origin and
    M (6, 6) taking the parameters (w, o, z) to (depth * w_total, d_total), where w_total = w - (o, 0) and
    d_total = A o + z * (unit vector from the origin to the centre)."""
    n = len(rotations)
    a = np.zeros((n, 3, 2))
    m = np.zeros((n, 6, 6))
    for i in range(n):
        r = np.asarray(centres[i], float)
        a[i] = -skew(r) @ np.asarray(rotations[i], float).T[:, :2]
        m[i, :3, :3] = depth * np.eye(3)
        m[i, :3, 3:5] = -depth * np.eye(3)[:, :2]
        m[i, 3:, 3:5] = a[i]
        m[i, 3:, 5] = r / max(np.linalg.norm(r), 1e-9)
    return a, m


class CameraRefiner:
    """Pose corrections of every view in the normalised frame, their optimiser, prior and gauge fixing.

    The similarity gauge (moving mesh and all cameras together changes no image) is removed after every
    step by subtracting the corrections' weighted least-squares fit by the gauge basis, so the refined
    cameras stay as close to the given ones as the images allow and are comparable with the true ones.
    """

    def __init__(self, rotations: np.ndarray, centres: np.ndarray, device: torch.device,
                 settings: RefineSettings | None = None) -> None:
        self.settings = settings or RefineSettings()
        self.device = device
        n = len(rotations)
        self.depth = float(np.median(np.linalg.norm(centres, axis=1)))
        self.given = (np.asarray(rotations, dtype=np.float64), np.asarray(centres, dtype=np.float64))
        self.R0 = torch.tensor(np.asarray(rotations), dtype=torch.float32, device=device)
        self.C0 = torch.tensor(np.asarray(centres), dtype=torch.float32, device=device)
        a, m = correction_maps(np.asarray(rotations, float), np.asarray(centres, float), self.depth)
        self.orbit_map = torch.tensor(a, dtype=torch.float32, device=device)
        self.to_q = torch.tensor(m, dtype=torch.float32, device=device)
        self.from_q = torch.tensor(np.linalg.inv(m), dtype=torch.float32, device=device)
        self.axis = self.to_q[:, 3:, 5].clone()
        self.w = torch.zeros((n, 3), device=device, requires_grad=True)
        self.o = torch.zeros((n, 2), device=device, requires_grad=True)
        self.z = torch.zeros((n, 1), device=device, requires_grad=True)
        self.log_f = torch.zeros((), device=device, requires_grad=self.settings.refine_focal)
        self.weights = torch.ones(n, device=device)
        self.held = torch.zeros(n, dtype=torch.bool, device=device)
        self.n_held = 0  # a host copy of held.sum(): read every step without waiting for the device
        self.gauge = torch.tensor(gauge_basis(np.asarray(rotations, float), np.asarray(centres, float), self.depth),
                                  dtype=torch.float32, device=device)
        s = self.settings
        groups = [{"params": [self.w], "lr": s.lr_rotation}, {"params": [self.o], "lr": s.lr_orbit},
                  {"params": [self.z], "lr": s.lr_rotation * self.depth}]
        if s.refine_focal:
            groups.append({"params": [self.log_f], "lr": s.lr_focal})
        self.base_lrs = [g["lr"] for g in groups]
        self.opt = torch.optim.Adam(groups)
        self.focal_mask = torch.zeros((4, 4), device=device)
        for i, j in FOCAL_ENTRIES:
            self.focal_mask[i, j] = 1.0

    def __len__(self) -> int:
        return len(self.R0)

    def rotation_corrections(self, ids: torch.Tensor) -> torch.Tensor:
        """w_total (B, 3): R' = Exp(w_total) R."""
        o = self.o[ids]
        return self.w[ids] - torch.cat([o, torch.zeros_like(o[:, :1])], dim=1)

    def centre_corrections(self, ids: torch.Tensor) -> torch.Tensor:
        """d_total (B, 3): C' = C + d_total."""
        return torch.einsum("bij,bj->bi", self.orbit_map[ids], self.o[ids]) + self.axis[ids] * self.z[ids]

    def rotations(self, ids: torch.Tensor) -> torch.Tensor:
        """Refined world-to-camera rotations (B, 3, 3) of the views ids."""
        return so3_exp_batch(self.rotation_corrections(ids)) @ self.R0[ids]

    def centres(self, ids: torch.Tensor) -> torch.Tensor:
        """Refined camera centres (B, 3)."""
        return self.C0[ids] + self.centre_corrections(ids)

    def corrections(self) -> torch.Tensor:
        """q (N, 6) = (depth * w_total, d_total) of all views: corrections in length units."""
        ids = torch.arange(len(self), device=self.device)
        return torch.cat([self.depth * self.rotation_corrections(ids), self.centre_corrections(ids)], dim=1)

    def focal_scale(self) -> torch.Tensor:
        """The shared focal scale (0-d)."""
        return torch.exp(self.log_f)

    def mvps(self, ids: torch.Tensor, projections: torch.Tensor) -> torch.Tensor:
        """World-to-clip matrices (B, 4, 4) from the refined poses and camera-to-clip matrices (B, 4, 4)."""
        r = self.rotations(ids)
        t = -(r @ self.centres(ids)[:, :, None])
        bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], device=self.device).expand(len(r), 1, 4)
        rt = torch.cat([torch.cat([r, t], dim=2), bottom], dim=1)
        proj = projections * (1 + (self.focal_scale() - 1) * self.focal_mask)
        return proj @ rt

    def prior(self) -> torch.Tensor:
        """Weak quadratic pull toward the given cameras (mean squared correction in length units)."""
        return self.settings.prior * (self.corrections().pow(2).sum(dim=1).mean() + self.log_f.pow(2))

    def zero_grad(self) -> None:
        """Clear the corrections' gradients."""
        self.opt.zero_grad(set_to_none=True)

    def step(self, lr_factor: float = 1.0) -> None:
        """One Adam step on the corrections, then remove their gauge component (or, once views are held on
        their given cameras, put those back: two or more of them fix the frame)."""
        for group, base in zip(self.opt.param_groups, self.base_lrs):
            group["lr"] = base * lr_factor
        self.opt.step()
        if self.n_held:
            self.zero_held()
        else:
            self.fix_gauge()

    @torch.no_grad()
    def hold(self, views: torch.Tensor) -> None:
        """Put the views `views` (a boolean mask, at least two of them) back on their given cameras for good:
        corrections that small are the optimisation's noise, and the given cameras are better than it."""
        held = self.held | views
        count = int(held.sum())
        if count < 2:
            return
        self.held, self.n_held = held, count
        self.zero_held()

    @torch.no_grad()
    def zero_held(self) -> None:
        """Zero the held views' corrections."""
        for p in (self.w, self.o, self.z):
            p[self.held] = 0.0

    @torch.no_grad()
    def fix_gauge(self) -> None:
        """Subtract the weighted least-squares fit of the corrections by the gauge basis (aligned views count)."""
        q = self.corrections().reshape(-1)
        a = self.weights.repeat_interleave(6)
        gw = self.gauge * a[:, None]
        coef = torch.linalg.solve(self.gauge.T @ gw + 1e-9 * torch.eye(7, device=self.device), gw.T @ q)
        p = torch.einsum("bij,bj->bi", self.from_q, (q - self.gauge @ coef).view(-1, 6))
        self.w.copy_(p[:, :3])
        self.o.copy_(p[:, 3:5])
        self.z.copy_(p[:, 5:])

    @torch.no_grad()
    def poses(self) -> tuple[np.ndarray, np.ndarray, float]:
        """Refined rotations (N, 3, 3), camera centres (N, 3) in the normalised frame and the focal scale; held
        views get their given poses exactly (not through float32)."""
        ids = torch.arange(len(self), device=self.device)
        rotations = self.rotations(ids).double().cpu().numpy()
        centres = self.centres(ids).double().cpu().numpy()
        held = self.held.cpu().numpy()
        rotations[held], centres[held] = self.given[0][held], self.given[1][held]
        return rotations, centres, float(self.focal_scale())
