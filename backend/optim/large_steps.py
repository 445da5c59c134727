"""Large Steps parameterisation (Nicolet et al. 2021): optimise u = (I + lambda L) x instead of x.

Gradients on u are the vertex gradients smoothed by (I + lambda L)^-1, so each step moves the surface
smoothly and the shading loss cannot crumple it into small bumps. The sparse Cholesky factor of
I + lambda L is computed once per topology (cholespy, CPU or CUDA) and reused for every step.
"""
from __future__ import annotations

import numpy as np
import torch

from backend.geometry.mesh_ops import unique_edges


def system_matrix(faces: np.ndarray, n_vertices: int, lam: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """COO (rows, cols, values) of I + lam * L, L the combinatorial Laplacian D - A of the mesh's edges."""
    e = unique_edges(np.asarray(faces, dtype=np.int64))
    deg = np.bincount(e.ravel(), minlength=n_vertices).astype(np.float64)
    rows = np.concatenate([np.arange(n_vertices), e[:, 0], e[:, 1]])
    cols = np.concatenate([np.arange(n_vertices), e[:, 1], e[:, 0]])
    vals = np.concatenate([1.0 + lam * deg, np.full(2 * len(e), -lam)])
    return rows, cols, vals


class _Solver:
    """Cached sparse Cholesky factor (cholespy) of one SPD matrix, solving on the CPU or CUDA."""

    def __init__(self, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n: int, device: torch.device) -> None:
        self.device = device
        # cholespy runs on CPU and CUDA; on MPS the solve happens on the CPU (a copy each way per step).
        self.solve_device = device if device.type in ("cpu", "cuda") else torch.device("cpu")
        from cholespy import CholeskySolverF, MatrixType

        idx = dict(dtype=torch.int32, device=self.solve_device)
        self.solver = CholeskySolverF(n, torch.tensor(rows, **idx), torch.tensor(cols, **idx),
                                      torch.tensor(vals, dtype=torch.float64, device=self.solve_device),
                                      MatrixType.COO)

    def solve(self, b: torch.Tensor) -> torch.Tensor:
        """x with M x = b, b (n, C) float32 on self.device."""
        src = b.detach().to(self.solve_device, torch.float32).contiguous()
        x = torch.empty_like(src)
        self.solver.solve(src, x)
        return x.to(self.device)


class _Solve(torch.autograd.Function):
    """x = M^-1 u with gradient M^-1 g (M symmetric)."""

    @staticmethod
    def forward(ctx, u: torch.Tensor, solver: _Solver) -> torch.Tensor:  # noqa: D102
        ctx.solver = solver
        return solver.solve(u)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: D102
        return ctx.solver.solve(grad), None


class SmoothParam:
    """Vertex positions x = (I + lam L)^-1 u of a fixed topology, with u the optimised parameter."""

    def __init__(self, vertices: torch.Tensor, faces: np.ndarray, lam: float) -> None:
        n = len(vertices)
        rows, cols, vals = system_matrix(faces, n, lam)
        self.solver = _Solver(rows, cols, vals, n, vertices.device)
        m = torch.sparse_coo_tensor(torch.from_numpy(np.stack([rows, cols])), torch.from_numpy(vals).float(),
                                    (n, n), check_invariants=False).coalesce().to(vertices.device)
        self.u = torch.nn.Parameter(torch.sparse.mm(m, vertices.detach().float()))

    def vertices(self) -> torch.Tensor:
        """Current vertex positions (differentiable in u)."""
        return _Solve.apply(self.u, self.solver)


class UniformAdam(torch.optim.Optimizer):
    """Adam whose second moment is the maximum over all entries (one step size for the whole mesh).

    Large Steps pairs its parameterisation with this: per-coordinate scaling would undo the smoothing.
    """

    def __init__(self, params: list, lr: float = 1e-2, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps))

    @torch.no_grad()
    def step(self, closure: None = None) -> None:  # noqa: D102
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if not st:
                    st["t"] = 0
                    st["m"] = torch.zeros_like(p)
                    st["v"] = torch.zeros_like(p)
                st["t"] += 1
                g = p.grad
                st["m"].mul_(b1).add_(g, alpha=1 - b1)
                st["v"].mul_(b2).addcmul_(g, g, value=1 - b2)
                m_hat = st["m"] / (1 - b1 ** st["t"])
                v_max = (st["v"] / (1 - b2 ** st["t"])).max()
                p.sub_(group["lr"] * m_hat / (v_max.sqrt() + group["eps"]))
