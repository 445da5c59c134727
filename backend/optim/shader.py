"""Neural shader: positional encoding of the surface point, plus normal and view direction, to RGB."""
from __future__ import annotations

import torch
from torch import nn


def positional_encoding(x: torch.Tensor, n_freqs: int) -> torch.Tensor:
    """[x, sin(2^k pi x), cos(2^k pi x)] for k < n_freqs, concatenated on the last axis."""
    if n_freqs == 0:
        return x
    freqs = (2.0 ** torch.arange(n_freqs, device=x.device, dtype=x.dtype)) * torch.pi
    xf = (x[..., None, :] * freqs[:, None]).flatten(-2)
    return torch.cat([x, torch.sin(xf), torch.cos(xf)], dim=-1)


class NeuralShader(nn.Module):
    """Small MLP: (PE(position), normal, view direction) -> RGB in [0, 1]."""

    def __init__(self, n_freqs: int = 4, hidden: int = 64, layers: int = 3) -> None:
        super().__init__()
        self.n_freqs = n_freqs
        in_dim = 3 + 6 * n_freqs + 3 + 3
        mods: list[nn.Module] = []
        for i in range(layers):
            mods += [nn.Linear(in_dim if i == 0 else hidden, hidden), nn.ReLU(inplace=True)]
        mods.append(nn.Linear(hidden, 3))
        self.net = nn.Sequential(*mods)

    def forward(self, position: torch.Tensor, normal: torch.Tensor, view_dir: torch.Tensor) -> torch.Tensor:
        """Colours (N, 3) of N surface samples."""
        features = torch.cat([positional_encoding(position, self.n_freqs), normal, view_dir], dim=-1)
        return torch.sigmoid(self.net(features))
