"""IDR / NeuS layout: cameras.npz (world_mat_i, scale_mat_i) with image/ and mask/ folders."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.linalg import rq

from backend.io.common import mask_from_alpha
from backend.io.images import IMAGE_SUFFIXES, read_image, read_mask
from backend.io.views import DEFAULT_SETTINGS, Scene, View
from backend.runtime.errors import JobError

CAMERA_FILES = ("cameras.npz", "cameras_sphere.npz", "cameras_large.npz")


def decompose_projection(P: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """K (positive diagonal, K[2,2] = 1), rotation R and t from a 3x4 (or 4x4) projection P ~ K [R | t]."""
    P = np.asarray(P, dtype=np.float64)[:3, :4]
    if np.linalg.det(P[:, :3]) < 0:
        P = -P
    K, R = rq(P[:, :3])
    D = np.diag(np.sign(np.diag(K)))
    K, R = K @ D, D @ R
    t = np.linalg.solve(K, P[:, 3])
    return K / K[2, 2], R, t


def find_camera_file(path: Path) -> Path | None:
    """The cameras npz for a folder or file path, if any."""
    path = Path(path)
    if path.is_file() and path.suffix == ".npz":
        return path
    return next((path / n for n in CAMERA_FILES if (path / n).is_file()), None)


def _listing(folder: Path) -> list[Path]:
    """Image files of a folder in sorted order (the index order of the npz)."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []


def load_idr(path: Path) -> Scene:
    """Read an IDR/NeuS job; K, R, t stay in the original world, bbox is scale_mat's unit cube."""
    cam_file = find_camera_file(path)
    if cam_file is None:
        raise JobError(f"no {' / '.join(CAMERA_FILES)} in {path}", "the IDR/NeuS layout is cameras.npz + image/ + mask/")
    root = cam_file.parent
    cams = np.load(cam_file)
    images = _listing(root / "image") or _listing(root / "images")
    masks = _listing(root / "mask") or _listing(root / "masks")
    n = len([k for k in cams.files if k.startswith("world_mat_") and not k.startswith("world_mat_inv")])
    if n == 0:
        raise JobError(f"{cam_file} has no world_mat_<i> entries", "IDR cameras are world_mat_0, world_mat_1, ...")
    if len(images) != n:
        raise JobError(f"{cam_file} has {n} cameras but {root / 'image'} holds {len(images)} images",
                       "image i (in sorted file order) must belong to world_mat_i")
    if masks and len(masks) != n:
        raise JobError(f"{n} cameras but {len(masks)} masks in {root / 'mask'}", "give one mask per image")
    views = []
    scale_mat = None
    for i in range(n):
        name = images[i].stem
        if f"world_mat_{i}" not in cams.files:
            raise JobError(f"{cam_file} lacks world_mat_{i}", "cameras must be numbered 0..n-1", view=name)
        K, R, t = decompose_projection(cams[f"world_mat_{i}"])
        rgb, alpha = read_image(images[i], view=name)
        mask = read_mask(masks[i], view=name) if masks else mask_from_alpha(alpha)
        views.append(View(name, rgb, mask, K, R, t))
        if scale_mat is None and f"scale_mat_{i}" in cams.files:
            scale_mat = np.asarray(cams[f"scale_mat_{i}"], dtype=np.float64)
    bbox = None
    if scale_mat is not None:
        corners = np.array([[x, y, z, 1.0] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]) @ scale_mat.T
        corners = corners[:, :3] / corners[:, 3:4]
        bbox = (corners.min(axis=0), corners.max(axis=0))
    return Scene(views=views, bbox=bbox, settings=dict(DEFAULT_SETTINGS))
