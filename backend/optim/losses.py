"""Losses of the optimisation: mask, shading, Laplacian and normal-consistency regularisers."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from backend.geometry.mesh_ops import unique_edges


def mask_loss(coverage: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
              pixel_weight: torch.Tensor | None = None) -> torch.Tensor:
    """L1 between antialiased coverage and the target mask (B, H, W, 1), views optionally weighted (B,) and
    pixels optionally weighted (B, H, W, 1): the pixels of a mask that the other views contradict count less."""
    err = (coverage - target).abs()
    if pixel_weight is not None:
        err = err * pixel_weight
    if weight is None:
        return err.mean()
    return (err.mean(dim=(1, 2, 3)) * weight).mean()


def shading_loss(color: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """L1 between shaded and photographed colours of the sampled pixels (optionally weighted per pixel)."""
    if color.numel() == 0:
        return color.sum()
    if weight is None:
        return (color - target).abs().mean()
    return ((color - target).abs().mean(dim=1) * weight).sum() / weight.sum().clamp(min=1.0)


@dataclass
class Topology:
    """Per-mesh constants for the regularisers: uniform Laplacian and pairs of adjacent faces."""

    laplacian: torch.Tensor  # sparse (V, V): I - D^-1 A
    face_pairs: torch.Tensor  # (P, 2) faces sharing an edge

    @staticmethod
    def build(faces: np.ndarray, n_vertices: int, device: torch.device,
              creases: np.ndarray | None = None) -> "Topology":
        """Topology of a triangle mesh; with crease edges (E, 2) the normals of two faces meeting at a crease are
        not pulled together ("sharp where sharp"; the Laplacian stays uniform)."""
        faces = np.asarray(faces, dtype=np.int64)
        e = unique_edges(faces)
        rows = np.concatenate([e[:, 0], e[:, 1]])
        cols = np.concatenate([e[:, 1], e[:, 0]])
        deg = np.bincount(rows, minlength=n_vertices).astype(np.float64)
        deg[deg == 0] = 1.0
        vals = -1.0 / deg[rows]
        idx = np.concatenate([np.stack([rows, cols]), np.stack([np.arange(n_vertices)] * 2)], axis=1)
        vals = np.concatenate([vals, np.ones(n_vertices)])
        lap = torch.sparse_coo_tensor(torch.from_numpy(idx), torch.from_numpy(vals).float(),
                                      (n_vertices, n_vertices), check_invariants=False).coalesce().to(device)
        half = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
        face_id = np.tile(np.arange(len(faces)), 3)
        key = np.sort(half, axis=1)
        order = np.lexsort((key[:, 1], key[:, 0]))
        key, face_id = key[order], face_id[order]
        same = (key[1:] == key[:-1]).all(axis=1)
        pairs = np.stack([face_id[:-1][same], face_id[1:][same]], axis=1)
        if creases is not None and len(creases):
            creases = np.sort(np.asarray(creases, dtype=np.int64), axis=1)
            shared = key[:-1][same]
            pairs = pairs[~np.isin(shared[:, 0] * n_vertices + shared[:, 1],
                                   creases[:, 0] * n_vertices + creases[:, 1])]
        return Topology(lap, torch.from_numpy(pairs).to(device))


def laplacian_loss(vertices: torch.Tensor, topo: Topology) -> torch.Tensor:
    """Mean squared norm of the uniform Laplacian of the vertex positions."""
    d = torch.sparse.mm(topo.laplacian, vertices)
    return d.pow(2).sum(dim=1).mean()


def face_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Unit normals (F, 3) of the triangles."""
    a, b, c = vertices[faces[:, 0]], vertices[faces[:, 1]], vertices[faces[:, 2]]
    return torch.nn.functional.normalize(torch.cross(b - a, c - a, dim=1), dim=1, eps=1e-12)


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Area-weighted unit vertex normals (V, 3)."""
    a, b, c = vertices[faces[:, 0]], vertices[faces[:, 1]], vertices[faces[:, 2]]
    n = torch.cross(b - a, c - a, dim=1)
    vn = torch.zeros_like(vertices).index_add(0, faces[:, 0], n).index_add(0, faces[:, 1], n).index_add(0, faces[:, 2], n)
    return torch.nn.functional.normalize(vn, dim=1, eps=1e-12)


def normal_consistency_loss(vertices: torch.Tensor, faces: torch.Tensor, topo: Topology) -> torch.Tensor:
    """Mean (1 - cos)^2 between the normals of faces sharing an edge."""
    if len(topo.face_pairs) == 0:
        return vertices.sum() * 0
    n = face_normals(vertices, faces)
    cos = (n[topo.face_pairs[:, 0]] * n[topo.face_pairs[:, 1]]).sum(dim=1)
    return (1 - cos).pow(2).mean()
