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
    """Small MLP: (PE(position), normal, view direction) -> RGB in [0, 1].

    With `late_view` the view direction joins only before the last hidden layer (as in NeRF): the
    shader can still model highlights, but it has less freedom to explain a misplaced surface by
    view-dependent colour, which would take away the photometric pull on the geometry.
    """

    def __init__(self, n_freqs: int = 4, hidden: int = 64, layers: int = 3, late_view: bool = False) -> None:
        super().__init__()
        self.n_freqs = n_freqs
        self.late_view = late_view
        in_dim = 3 + 6 * n_freqs + 3 + (0 if late_view else 3)
        trunk_layers = layers - 1 if late_view else layers
        mods: list[nn.Module] = []
        for i in range(trunk_layers):
            mods += [nn.Linear(in_dim if i == 0 else hidden, hidden), nn.ReLU(inplace=True)]
        if late_view:
            self.trunk = nn.Sequential(*mods)
            self.head = nn.Sequential(nn.Linear(hidden + 3, hidden // 2), nn.ReLU(inplace=True),
                                      nn.Linear(hidden // 2, 3))
        else:
            mods.append(nn.Linear(hidden, 3))
            self.net = nn.Sequential(*mods)

    def forward(self, position: torch.Tensor, normal: torch.Tensor, view_dir: torch.Tensor) -> torch.Tensor:
        """Colours (N, 3) of N surface samples."""
        if self.late_view:
            h = self.trunk(torch.cat([positional_encoding(position, self.n_freqs), normal], dim=-1))
            return torch.sigmoid(self.head(torch.cat([h, view_dir], dim=-1)))
        features = torch.cat([positional_encoding(position, self.n_freqs), normal, view_dir], dim=-1)
        return torch.sigmoid(self.net(features))
