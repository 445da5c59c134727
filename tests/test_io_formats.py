"""Each layout, written the way its tool writes it from a Cycles job, loads to the same cameras and masks."""
from __future__ import annotations

import json
import math
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pycolmap
import pytest

from backend.io.convert import convert
from backend.io.detect import detect_layout, load_any
from backend.io.idr import decompose_projection
from backend.io.job import load_job, write_job
from backend.io.png16 import read_png16, write_png16
from backend.io.validate import validate_scene
from backend.io.views import Scene, View
from backend.runtime.errors import JobError
from scenegen import render_job_subprocess


@pytest.fixture(scope="module")
def cycles_job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four 48x40 Cycles views of Suzanne (non-square, so width/height mix-ups show)."""
    return render_job_subprocess(tmp_path_factory.mktemp("io") / "job", n_views=4, resolution=(48, 40), samples=2)


@pytest.fixture(scope="module")
def original(cycles_job: Path) -> Scene:
    """The Cycles job as loaded by load_job."""
    return load_job(cycles_job)


def rgba8(view: View) -> np.ndarray:
    """The view as the 8-bit RGBA array a tool would save (alpha = mask)."""
    return np.round(np.dstack([view.image, view.mask.astype(np.float32)]) * 255).astype(np.uint8)


def write_nds(scene: Scene, root: Path) -> Path:
    """NDS layout as its data scripts write it: views/<stem>.png RGBA and np.savetxt matrices, bbox.txt."""
    vdir = root / "views"
    vdir.mkdir(parents=True)
    for v in scene.views:
        iio.imwrite(vdir / f"{v.name}.png", rgba8(v))
        np.savetxt(vdir / f"{v.name}_k.txt", v.K)
        np.savetxt(vdir / f"{v.name}_r.txt", v.R)
        np.savetxt(vdir / f"{v.name}_t.txt", v.t)
    np.savetxt(root / "bbox.txt", np.stack(scene.bbox))
    return root


def write_idr(scene: Scene, root: Path) -> Path:
    """IDR/NeuS: cameras.npz with arbitrarily scaled 4x4 world_mat_i and scale_mat_i, RGB image/, mask/."""
    (root / "image").mkdir(parents=True)
    (root / "mask").mkdir()
    lo, hi = scene.bbox
    centre, radius = (lo + hi) / 2, float(np.max(hi - lo) / 2)
    scale_mat = np.diag([radius, radius, radius, 1.0])
    scale_mat[:3, 3] = centre
    mats = {}
    for i, v in enumerate(scene.views):
        P = np.eye(4)
        P[:3, :4] = v.K @ np.hstack([v.R, v.t[:, None]])
        mats[f"world_mat_{i}"] = P * (0.5 + i)
        mats[f"scale_mat_{i}"] = scale_mat
        mats[f"camera_mat_{i}"] = np.eye(4)
        iio.imwrite(root / "image" / f"{i:03d}.png", rgba8(v)[..., :3])
        iio.imwrite(root / "mask" / f"{i:03d}.png", np.repeat(v.mask[..., None], 3, axis=2).astype(np.uint8) * 255)
    np.savez(root / "cameras_sphere.npz", **mats)
    return root


def gl_pose(v: View) -> list[list[float]]:
    """OpenGL camera-to-world 4x4 of a view."""
    c2w = np.eye(4)
    c2w[:3, :3] = v.R.T @ np.diag([1.0, -1.0, -1.0])
    c2w[:3, 3] = v.center
    return c2w.tolist()


def write_nerf_synthetic(scene: Scene, root: Path) -> Path:
    """Blender NeRF-synthetic style: camera_angle_x only, file_path without extension, RGBA PNG."""
    (root / "train").mkdir(parents=True)
    w = scene.views[0].width
    frames = []
    for i, v in enumerate(scene.views):
        iio.imwrite(root / "train" / f"r_{i}.png", rgba8(v))
        frames.append({"file_path": f"./train/r_{i}", "rotation": 0.0, "transform_matrix": gl_pose(v)})
    angle = 2 * math.atan(w / 2 / scene.views[0].K[0, 0])
    (root / "transforms_train.json").write_text(json.dumps({"camera_angle_x": angle, "frames": frames}))
    return root


def write_nerfstudio(scene: Scene, root: Path) -> Path:
    """nerfstudio style: fl_x/fl_y/cx/cy/w/h per frame, RGB images, mask_path, aabb."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    frames = []
    for i, v in enumerate(scene.views):
        iio.imwrite(root / "images" / f"frame_{i:05d}.png", rgba8(v)[..., :3])
        iio.imwrite(root / "masks" / f"frame_{i:05d}.png", v.mask.astype(np.uint8) * 255)
        frames.append({"file_path": f"images/frame_{i:05d}.png", "mask_path": f"masks/frame_{i:05d}.png",
                       "fl_x": v.K[0, 0], "fl_y": v.K[1, 1], "cx": v.K[0, 2], "cy": v.K[1, 2],
                       "w": v.width, "h": v.height, "transform_matrix": gl_pose(v)})
    meta = {"camera_model": "OPENCV", "k1": 0.0, "k2": 0.0, "frames": frames,
            "aabb": [np.asarray(scene.bbox[0]).tolist(), np.asarray(scene.bbox[1]).tolist()]}
    (root / "transforms.json").write_text(json.dumps(meta))
    return root


def write_colmap(scene: Scene, root: Path) -> Path:
    """COLMAP project as pycolmap writes it: PINHOLE cameras in sparse/0 (.bin), RGB images/, masks/<image>.png."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rec = pycolmap.Reconstruction()
    for i, v in enumerate(scene.views):
        cam = pycolmap.Camera.create_from_model_name(i + 1, "PINHOLE", 1.0, v.width, v.height)
        cam.params = [v.K[0, 0], v.K[1, 1], v.K[0, 2], v.K[1, 2]]
        rec.add_camera_with_trivial_rig(cam)
        image = pycolmap.Image(name=f"{v.name}.png", camera_id=i + 1, image_id=i + 1)
        rec.add_image_with_trivial_frame(image, pycolmap.Rigid3d(np.hstack([v.R, v.t[:, None]])))
        iio.imwrite(root / "images" / f"{v.name}.png", rgba8(v)[..., :3])
        iio.imwrite(root / "masks" / f"{v.name}.png.png", v.mask.astype(np.uint8) * 255)
    (root / "sparse" / "0").mkdir(parents=True)
    rec.write_binary(str(root / "sparse" / "0"))
    return root


def assert_same(a: Scene, b: Scene, names_match: bool = True) -> None:
    """Same cameras (1e-6), masks and images (8-bit rounding) view by view."""
    assert len(a.views) == len(b.views)
    for va, vb in zip(a.views, b.views):
        if names_match:
            assert va.name == vb.name
        np.testing.assert_allclose(vb.K, va.K, atol=1e-6)
        np.testing.assert_allclose(vb.R, va.R, atol=1e-6)
        np.testing.assert_allclose(vb.t, va.t, atol=1e-6)
        assert np.array_equal(vb.mask, va.mask)
        assert np.abs(vb.image - va.image).max() <= 1 / 255 + 1e-6


def test_cycles_job_loads_and_validates(original: Scene) -> None:
    validate_scene(original)
    assert len(original.views) == 4 and original.views[0].image.shape == (40, 48, 3)
    assert all(v.mask.any() and not v.mask.all() for v in original.views)


@pytest.mark.parametrize("writer,layout,names", [(write_nds, "nds", True), (write_idr, "idr", False),
                                                 (write_nerf_synthetic, "nerf", False),
                                                 (write_nerfstudio, "nerf", False), (write_colmap, "colmap", True)])
def test_layouts_match_original(original: Scene, tmp_path: Path, writer, layout: str, names: bool) -> None:
    src = writer(original, tmp_path / "src")
    assert detect_layout(src) == layout
    scene = load_any(src)
    assert_same(original, scene, names_match=names)
    if writer in (write_nds, write_nerfstudio):
        np.testing.assert_allclose(np.stack(scene.bbox), np.stack(original.bbox), atol=1e-6)
    if writer in (write_nerf_synthetic, write_colmap):
        assert scene.bbox is None
    validate_scene(scene)
    job = convert(src, tmp_path / "converted")
    assert_same(scene, load_job(job))


def test_idr_bbox_is_scale_mat_cube(original: Scene, tmp_path: Path) -> None:
    scene = load_any(write_idr(original, tmp_path / "idr"))
    lo, hi = original.bbox
    c, r = (lo + hi) / 2, np.max(hi - lo) / 2
    np.testing.assert_allclose(scene.bbox[0], c - r, atol=1e-9)
    np.testing.assert_allclose(scene.bbox[1], c + r, atol=1e-9)


def test_decompose_projection_with_skew_and_negative_scale() -> None:
    rng = np.random.default_rng(1)
    K = np.array([[500.0, 3.0, 310.0], [0.0, 480.0, 250.0], [0, 0, 1]])
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    R = q * np.sign(np.linalg.det(q))
    t = rng.normal(size=3)
    P = -7.5 * K @ np.hstack([R, t[:, None]])
    K2, R2, t2 = decompose_projection(P)
    np.testing.assert_allclose(K2, K, atol=1e-9)
    np.testing.assert_allclose(R2, R, atol=1e-9)
    np.testing.assert_allclose(t2, t, atol=1e-9)


def test_job_round_trip_keeps_everything(original: Scene, tmp_path: Path) -> None:
    original.settings = dict(original.settings, iterations=123, symmetry="off")
    again = load_job(write_job(original, tmp_path / "rt"))
    assert_same(original, again)
    assert again.settings["iterations"] == 123 and again.settings["symmetry"] == "off"
    np.testing.assert_allclose(again.bbox[1], original.bbox[1])


def test_sixteen_bit_images_and_separate_masks(original: Scene, tmp_path: Path) -> None:
    job = write_job(original, tmp_path / "j16")
    rng = np.random.default_rng(0)
    (job / "masks").mkdir()
    pixels = {}
    for v in original.views:
        px = rng.integers(0, 65536, size=(v.height, v.width, 3), dtype=np.uint16)
        write_png16(job / "images" / f"{v.name}.png", px)
        iio.imwrite(job / "masks" / f"{v.name}.png", v.mask.astype(np.uint8) * 255)
        pixels[v.name] = px
    scene = load_job(job)
    for v in scene.views:
        np.testing.assert_allclose(v.image, pixels[v.name] / 65535.0, atol=1e-7)
        assert np.array_equal(v.mask, next(o.mask for o in original.views if o.name == v.name))
    again = load_job(write_job(scene, tmp_path / "j16b"))
    assert read_png16(tmp_path / "j16b" / "images" / f"{scene.views[0].name}.png").dtype == np.uint16
    assert max(np.abs(a.image - b.image).max() for a, b in zip(scene.views, again.views)) < 1e-7


def test_image_scale_halves_images_and_K(original: Scene, tmp_path: Path) -> None:
    job = write_job(original, tmp_path / "half")
    data = json.loads((job / "job.json").read_text())
    data["settings"]["image_scale"] = 0.5
    (job / "job.json").write_text(json.dumps(data))
    scene = load_job(job)
    v0, h0 = original.views[0], scene.views[0]
    assert h0.image.shape == (20, 24, 3) and h0.mask.shape == (20, 24)
    np.testing.assert_allclose(h0.K[:2], v0.K[:2] * 0.5)
    assert abs(h0.mask.mean() - v0.mask.mean()) < 0.05
    rewritten = load_job(write_job(scene, tmp_path / "half2"))
    assert rewritten.settings["image_scale"] == 1 and rewritten.views[0].image.shape == (20, 24, 3)


def test_unknown_layout_lists_supported(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    with pytest.raises(JobError) as info:
        load_any(tmp_path / "photos")
    assert "transforms.json" in info.value.hint and "cameras.npz" in info.value.hint


def test_views_without_alpha_or_masks_load_with_none(original: Scene, tmp_path: Path) -> None:
    """RGB photos without mask files load (mask None); validation asks for masks only when told to."""
    root = write_nerfstudio(original, tmp_path / "ns")
    meta = json.loads((root / "transforms.json").read_text())
    for f in meta["frames"]:
        f.pop("mask_path")
    (root / "transforms.json").write_text(json.dumps(meta))
    scene = load_any(root)
    assert all(v.mask is None for v in scene.views)
    with pytest.raises(JobError) as info:
        validate_scene(scene)
    assert info.value.view == "frame_00000" and "alpha" in info.value.message and "photos" in info.value.hint
    validate_scene(scene, require_masks=False)
    job = convert(root, tmp_path / "job")
    assert iio.imread(job / "images" / "frame_00000.png").shape == (40, 48, 3)
    again = load_job(job)
    assert all(v.mask is None for v in again.views)
    assert max(np.abs(a.image - b.image).max() for a, b in zip(scene.views, again.views)) <= 1 / 255 + 1e-6
