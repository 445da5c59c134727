"""Visual hull of a synthetic sphere, bbox derivation, and the wrong-convention diagnosis."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import trimesh

from backend.geometry.visual_hull import visual_hull
from backend.runtime.errors import JobError
from tests.lens_helpers import look_at

FLIP = np.diag([1.0, -1.0, -1.0])


def sphere_views(n: int = 12, radius: float = 0.5, res: int = 96, f: float = 120.0) -> list[SimpleNamespace]:
    """Exact silhouettes of a sphere at the origin seen by n cameras around it."""
    k = np.array([[f, 0, res / 2], [0, f, res / 2], [0, 0, 1.0]])
    jj, ii = np.meshgrid(np.arange(res) + 0.5, np.arange(res) + 0.5)
    pix = np.stack([jj, ii, np.ones_like(ii)], -1) @ np.linalg.inv(k).T
    views = []
    for i in range(n):
        a, el = 2 * np.pi * i / n, 0.5 * np.sin(3 * 2 * np.pi * i / n)
        c = 3 * np.array([np.cos(a) * np.cos(el), np.sin(a) * np.cos(el), np.sin(el)])
        r, t = look_at(c)
        d = pix @ r
        d /= np.linalg.norm(d, axis=-1, keepdims=True)
        closest = c - (d @ c)[..., None] * d
        views.append(SimpleNamespace(K=k, R=r, t=t, mask=np.linalg.norm(closest, axis=-1) < radius))
    return views


def test_sphere_hull_is_close_to_sphere() -> None:
    v, f = visual_hull(sphere_views(), bbox=(np.full(3, -1.0), np.full(3, 1.0)), res=80)
    mesh = trimesh.Trimesh(v, f)
    assert mesh.is_watertight and mesh.volume > 0
    radius = np.linalg.norm(v, axis=1)
    assert 0.48 < radius.mean() < 0.55 and radius.max() < 0.6
    assert mesh.volume > 4 / 3 * np.pi * 0.5**3


def test_bbox_is_derived_from_masks() -> None:
    v, _ = visual_hull(sphere_views(), bbox=None, res=64)
    assert np.all(np.abs(v.min(axis=0) + 0.52) < 0.06) and np.all(np.abs(v.max(axis=0) - 0.52) < 0.06)


@pytest.mark.parametrize("name,convert", [
    ("camera-to-world", lambda r, t: (r.T, -r.T @ t)),
    ("OpenGL", lambda r, t: (FLIP @ r, FLIP @ t)),
])
def test_wrong_convention_is_diagnosed(name: str, convert) -> None:
    views = []
    for view in sphere_views(n=8, res=64, f=80.0):
        r, t = convert(view.R, view.t)
        views.append(SimpleNamespace(K=view.K, R=r, t=t, mask=view.mask))
    with pytest.raises(JobError) as info:
        visual_hull(views, bbox=None, res=48)
    assert "camera-convention" in info.value.message
    assert name in info.value.hint
