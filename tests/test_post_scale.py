"""Post-processing for big meshes: face budget, fast UVs, the guarded UV stage, CPU and device texture bakes."""
from __future__ import annotations

import multiprocessing as mp

import numpy as np
import pytest
import trimesh

from backend.post.decimate import chamfer_cost, decimate_with_cost, quadric_decimate
from backend.post.fast_uv import fast_uv
from backend.post.geometry import face_normals_and_areas
from backend.post.texture import bake_texture
from backend.post.uv import compute_uv
from backend.post.uv_stage import guarded_uv, uv_time_bound, xatlas_seconds_predicted
from backend.raster import get_rasterizer
from backend.runtime.errors import Cancelled
from test_texture import colour_field, orbit, psnr, vertex_colour_view
from test_uv import X_PLANE, bumpy_sphere, overlap_fraction, tilted_box


def dense_blob(subdivisions: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """An icosphere (20k faces at 5 subdivisions) with bumps: something a budget has to cut down."""
    sphere = trimesh.creation.icosphere(subdivisions=subdivisions)
    v = np.asarray(sphere.vertices)
    v = v * (1 + 0.15 * np.sin(3 * v[:, :1]) * np.cos(2 * v[:, 1:2]))
    return v, np.asarray(sphere.faces)


def test_decimation_meets_the_budget_and_stays_close() -> None:
    v, f = dense_blob()
    v2, f2 = quadric_decimate(v, f, 2000)
    assert 1500 <= len(f2) <= 2000
    assert f2.max() == len(v2) - 1 and len(np.unique(f2)) == len(v2)
    chamfer, hausdorff = chamfer_cost(v, f, v2, f2)
    assert 0 < chamfer < 2e-3 and hausdorff < 2e-2
    assert trimesh.Trimesh(v2, f2).is_watertight


def test_mesh_within_budget_is_untouched_and_identity_costs_nothing() -> None:
    v, f = dense_blob(3)
    v2, f2 = quadric_decimate(v, f, len(f))
    assert v2 is not None and np.array_equal(f2, f) and np.array_equal(v2, v)
    _, _, chamfer, hausdorff = decimate_with_cost(v, f, len(f))
    assert chamfer < 1e-9 and hausdorff < 1e-9


def stretch_spread(mesh) -> float:
    """max / min over faces of UV area / 3D area (one texel density would give 1)."""
    _, area3 = face_normals_and_areas(mesh.vertices, mesh.faces)
    t = mesh.uv[mesh.faces]
    e1, e2 = t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]
    area2 = 0.5 * np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])
    ok = area3 > 1e-6 * area3.max()
    ratio = area2[ok] / area3[ok]
    return float(ratio.max() / ratio.min())


@pytest.mark.parametrize("shape", [bumpy_sphere, tilted_box])
def test_fast_uv_is_a_valid_non_overlapping_atlas(shape) -> None:
    v, f = shape()
    mesh = fast_uv(v, f, resolution=512)
    assert mesh.method == "fast" and mesh.charts >= 6
    assert mesh.uv.min() >= 0 and mesh.uv.max() <= 1
    assert np.allclose(mesh.vertices, v[mesh.source_vertex])
    assert len(mesh.faces) == len(f)
    assert overlap_fraction(mesh) < 0.002
    assert stretch_spread(mesh) < 3 ** 0.5 + 1e-6, "projection stretch beyond 1/cos(54.7 deg)"
    assert 0.3 < mesh.efficiency < 1.0


def test_fast_uv_packs_many_charts_into_a_tiny_texture() -> None:
    v, f = dense_blob(4)
    v = v + 0.02 * np.sin(40 * v[:, [1, 2, 0]])
    mesh = fast_uv(v, f, resolution=64, padding=4)
    assert mesh.charts > 100
    assert np.isfinite(mesh.uv).all() and mesh.uv.min() >= 0 and mesh.uv.max() <= 1
    assert overlap_fraction(mesh) < 0.002


def test_fast_uv_seam_on_the_symmetry_plane() -> None:
    v, f = bumpy_sphere()
    mesh = fast_uv(v, f, X_PLANE, resolution=512)
    side = mesh.vertices[mesh.faces][:, :, 0]
    assert not ((side.max(1) > 1e-6) & (side.min(1) < -1e-6)).any(), "a chart crosses the seam plane"
    assert overlap_fraction(mesh) < 0.002


def test_guarded_uv_uses_xatlas_within_the_bound() -> None:
    v, f = bumpy_sphere()
    fractions: list[float] = []
    mesh, warning = guarded_uv(v, f, None, 512, progress=fractions.append, timeout_s=300)
    assert warning is None and mesh.method == "xatlas" and mesh.charts > 0 and 0.3 < mesh.efficiency <= 1
    assert fractions == sorted(fractions) and all(0 <= x < 1 for x in fractions)
    assert not mp.active_children()


def test_guarded_uv_falls_back_with_a_warning_when_xatlas_runs_out_of_time() -> None:
    v, f = bumpy_sphere()
    mesh, warning = guarded_uv(v, f, X_PLANE, 512, timeout_s=0.01)
    assert mesh.method == "fast" and warning and "did not return within" in warning and "fast" in warning
    assert overlap_fraction(mesh) < 0.002
    assert not mp.active_children(), "the xatlas worker was left running"


def test_big_mesh_skips_xatlas_when_the_probe_predicts_it_too_slow() -> None:
    v, f = dense_blob()
    assert len(f) > 20_000
    predicted = xatlas_seconds_predicted(v, f, 1024)
    fractions: list[float] = []
    mesh, warning = guarded_uv(v, f, None, 1024, timeout_s=predicted / 20, progress=fractions.append)
    assert fractions == sorted(fractions)
    assert mesh.method == "fast" and "fast box-projection" in warning
    assert not mp.active_children()


def test_guarded_uv_cancel_kills_the_worker() -> None:
    v, f = dense_blob()
    calls = []

    def poll() -> None:
        calls.append(1)
        if len(calls) > 3:
            raise Cancelled("cancelled")

    with pytest.raises(Cancelled):
        guarded_uv(v, f, None, 1024, poll=poll, timeout_s=300)
    assert not mp.active_children()


def test_uv_time_bound_grows_with_faces() -> None:
    assert uv_time_bound(300_000) > uv_time_bound(100_000) > uv_time_bound(1000) > 0


def test_numba_bake_matches_the_device_bake() -> None:
    rasterizer = get_rasterizer("torch", "cpu")
    sphere = trimesh.creation.icosphere(subdivisions=4)
    v, f = np.asarray(sphere.vertices) * np.array([1.0, 0.8, 0.7]), np.asarray(sphere.faces)
    colours = colour_field(v)
    views = [vertex_colour_view(f"v{i}", v, f, colours, eye, rasterizer) for i, eye in enumerate(orbit(8))]
    mesh = compute_uv(v, f)
    fast = bake_texture(mesh, views, 256, rasterizer, kernels="numba", visibility_side=64)
    device = bake_texture(mesh, views, 256, rasterizer, kernels="torch")
    assert psnr(fast / 255.0, device / 255.0) > 50


def test_big_texture_is_encoded_in_a_worker_and_written_exactly(tmp_path) -> None:
    import json

    from PIL import Image

    from backend.pipelines.finish import IN_PROCESS_PNG_BYTES, PostResult, write_result
    from backend.runtime.result import ResultWriter

    v, f = bumpy_sphere()
    texture = np.zeros((2304, 2304, 3), np.uint8)
    texture[:, :, 0] = np.arange(2304)[:, None] % 251
    texture[:, :, 2] = np.arange(2304)[None, :] % 241
    assert texture.size > IN_PROCESS_PNG_BYTES
    post = PostResult(v, f, np.zeros((len(v), 2)), texture, None, None, {"uv": {"charts": 1}}, ["a warning"])
    writer = ResultWriter(tmp_path / "out")
    write_result(writer, post, {"warnings": ["earlier"]}, {}, 0.0)
    writer.commit()
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "texture.png")), texture)
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["warnings"] == ["earlier", "a warning"] and result["uv"] == {"charts": 1}
    assert not mp.active_children()
