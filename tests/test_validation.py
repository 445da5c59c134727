"""Every job problem is reported before heavy work, naming the view, key or file, with a hint."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from backend.io.job import load_job, write_job
from backend.io.validate import validate_scene
from backend.io.views import Scene, View
from backend.runtime.errors import JobError

SIZE = 48


def sphere_view(name: str, azimuth: float, radius: float = 0.6) -> View:
    """A camera 4 units away looking at a sphere at the origin, its image and mask made by projection."""
    eye = 4.0 * np.array([np.cos(azimuth), np.sin(azimuth), 0.3])
    fwd = -eye / np.linalg.norm(eye)
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    R = np.stack([right, down, fwd])
    t = -R @ eye
    K = np.array([[60.0, 0, SIZE / 2], [0, 60.0, SIZE / 2], [0, 0, 1]])
    rows, cols = np.indices((SIZE, SIZE))
    rays = np.stack([(cols + 0.5 - K[0, 2]) / K[0, 0], (rows + 0.5 - K[1, 2]) / K[1, 1], np.ones_like(rows, float)], -1)
    rays = rays @ R
    rays /= np.linalg.norm(rays, axis=-1, keepdims=True)
    b = rays @ eye
    mask = b * b - (eye @ eye - radius**2) > 0
    image = np.zeros((SIZE, SIZE, 3), np.float32)
    image[mask] = [0.8, 0.4, 0.2]
    return View(name, image, mask, K, R, t)


def make_scene(n: int = 4) -> Scene:
    """n views of a sphere, with a bbox around it."""
    views = [sphere_view(f"cam_{i}", 2 * np.pi * i / n) for i in range(n)]
    return Scene(views=views, bbox=(np.full(3, -0.7), np.full(3, 0.7)))


@pytest.fixture()
def job(tmp_path: Path) -> Path:
    """A valid job folder written by write_job."""
    return write_job(make_scene(), tmp_path / "job")


def edit(job: Path, change) -> None:
    """Apply `change` to the parsed job.json and write it back."""
    data = json.loads((job / "job.json").read_text())
    change(data)
    (job / "job.json").write_text(json.dumps(data))


def load_error(job: Path) -> JobError:
    """The JobError of loading and validating the job."""
    with pytest.raises(JobError) as info:
        validate_scene(load_job(job))
    return info.value


def test_valid_job_passes(job: Path) -> None:
    scene = load_job(job)
    validate_scene(scene)
    assert len(scene.views) == 4 and scene.views[0].mask.any()


def test_missing_image_names_file_and_view(job: Path) -> None:
    (job / "images" / "cam_2.png").unlink()
    err = load_error(job)
    assert "cam_2.png" in err.message and err.view == "cam_2" and err.hint


def test_unreadable_image(job: Path) -> None:
    (job / "images" / "cam_1.png").write_bytes(b"not a png at all")
    err = load_error(job)
    assert "cam_1.png" in err.message and err.view == "cam_1"


def test_image_size_differs_from_job(job: Path) -> None:
    edit(job, lambda d: d["views"][3].update(width=64))
    err = load_error(job)
    assert err.view == "cam_3" and "64" in err.message and "width" in err.message


def test_non_rotation_R_hints_convention(job: Path) -> None:
    edit(job, lambda d: d["views"][1].update(R=(np.array(d["views"][1]["R"]) * 2).tolist()))
    err = load_error(job)
    assert err.view == "cam_1" and "rotation" in err.message and "OpenCV" in err.hint


def test_reflection_R_is_rejected(job: Path) -> None:
    edit(job, lambda d: d["views"][0].update(R=(np.diag([1, 1, -1]) @ np.array(d["views"][0]["R"])).tolist()))
    assert load_error(job).view == "cam_0"


def test_opengl_pose_is_behind_camera(job: Path) -> None:
    def to_gl(d):
        for v in d["views"]:
            v["R"] = (np.diag([1, -1, -1]) @ np.array(v["R"])).tolist()
            v["t"] = (np.diag([1, -1, -1]) @ np.array(v["t"])).tolist()
    edit(job, to_gl)
    err = load_error(job)
    assert err.view == "cam_0" and "behind" in err.message and "flip the y and z" in err.hint


def test_non_positive_focal(job: Path) -> None:
    edit(job, lambda d: d["views"][2]["K"][1].__setitem__(1, -60.0))
    err = load_error(job)
    assert err.view == "cam_2" and "focal" in err.message


def test_empty_mask(job: Path) -> None:
    iio.imwrite(job / "images" / "cam_1.png", np.zeros((SIZE, SIZE, 4), np.uint8))
    err = load_error(job)
    assert err.view == "cam_1" and "empty" in err.message


def test_mask_file_size_mismatch(job: Path) -> None:
    (job / "masks").mkdir()
    iio.imwrite(job / "masks" / "cam_0.png", np.full((10, 12), 255, np.uint8))
    err = load_error(job)
    assert err.view == "cam_0" and "12x10" in err.message


def test_fewer_than_two_views(job: Path) -> None:
    edit(job, lambda d: d.update(views=d["views"][:1]))
    assert "at least 2" in load_error(job).message


def test_duplicate_names(job: Path) -> None:
    edit(job, lambda d: d["views"][2].update(name="cam_0", image="images/cam_2.png"))
    err = load_error(job)
    assert "duplicate" in err.message and err.view == "cam_0"


@pytest.mark.parametrize("where", ["top", "view", "bbox", "settings"])
def test_unknown_keys_are_named(job: Path, where: str) -> None:
    def add(d):
        target = {"top": d, "view": d["views"][1], "bbox": d["bbox"], "settings": d["settings"]}[where]
        target["colour_space"] = "srgb"
    edit(job, add)
    err = load_error(job)
    assert "colour_space" in err.message and err.hint
    if where == "view":
        assert err.view == "cam_1"


def test_missing_view_key(job: Path) -> None:
    edit(job, lambda d: d["views"][0].pop("K"))
    err = load_error(job)
    assert err.view == "cam_0" and "'K'" in err.message


def test_bbox_min_not_below_max(job: Path) -> None:
    edit(job, lambda d: d["bbox"].update(min=[-1, 0.8, -1], max=[1, 0.5, 1]))
    err = load_error(job)
    assert "along y" in err.message


def test_bbox_outside_a_view(job: Path) -> None:
    edit(job, lambda d: d["views"][2].update(t=(np.array(d["views"][2]["t"]) + [40.0, 0, 0]).tolist()))
    err = load_error(job)
    assert err.view == "cam_2" and "outside the image" in err.message


@pytest.mark.parametrize("key", ["K", "R", "t", "bbox"])
def test_nan_anywhere(job: Path, key: str) -> None:
    def poison(d):
        if key == "bbox":
            d["bbox"]["max"][0] = float("nan")
        elif key == "t":
            d["views"][1]["t"][2] = float("nan")
        else:
            d["views"][1][key][0][0] = float("nan")
    edit(job, poison)
    err = load_error(job)
    assert "NaN" in err.message
    if key != "bbox":
        assert err.view == "cam_1" and key in err.message


@pytest.mark.parametrize("setting,value", [("device", "gpu"), ("rasterizer", "opengl"), ("symmetry", "yes"),
                                           ("iterations", 0), ("texture_size", 10.5), ("image_scale", 2),
                                           ("seed", -1), ("iterations", True), ("quality", "ultra"),
                                           ("quality", None)])
def test_bad_setting_values_named(job: Path, setting: str, value) -> None:
    edit(job, lambda d: d["settings"].update({setting: value}))
    err = load_error(job)
    assert setting in err.message and err.hint


def test_wrong_version(job: Path) -> None:
    edit(job, lambda d: d.update(version=2))
    assert "version" in load_error(job).message


def test_mask_on_border_is_only_a_warning(job: Path, caplog: pytest.LogCaptureFixture) -> None:
    img = iio.imread(job / "images" / "cam_0.png")
    img[:, :3, 3] = 255
    iio.imwrite(job / "images" / "cam_0.png", img)
    with caplog.at_level(logging.WARNING):
        validate_scene(load_job(job))
    assert any("cam_0" in r.getMessage() and "border" in r.getMessage() for r in caplog.records)


def test_validate_in_memory_scene_mask_shape() -> None:
    scene = make_scene()
    scene.views[3].mask = scene.views[3].mask[:, :-1]
    with pytest.raises(JobError) as info:
        validate_scene(scene)
    assert info.value.view == "cam_3"


@pytest.mark.parametrize("setting,value,bounds", [
    ("texture_size", 1_000_000, "16 to 8192"), ("texture_size", 8, "16 to 8192"),
    ("iterations", 10_000_000, "1 to 1000000"), ("seed", 2**40, "0 to 2147483647"),
    ("max_faces", 100, "500 to 10000000"), ("max_faces", 2.5, "500 to 10000000"),
    ("image_scale", 0.001, "0.01 to 1.0"), ("image_scale", float("inf"), "0.01 to 1.0")])
def test_numeric_settings_out_of_range_name_setting_and_range(job: Path, setting: str, value, bounds: str) -> None:
    edit(job, lambda d: d["settings"].update({setting: value}))
    err = load_error(job)
    assert setting in err.message and "outside the allowed range" in err.message
    assert bounds in err.hint


def test_every_numeric_default_setting_has_a_range() -> None:
    from backend.io.validate import BOOL_SETTINGS, CHOICES, IMAGE_SCALE_RANGE, INT_RANGES, PATH_SETTINGS
    from backend.io.views import DEFAULT_SETTINGS

    numeric = {k for k in DEFAULT_SETTINGS if k not in CHOICES and k not in PATH_SETTINGS and k not in BOOL_SETTINGS}
    assert numeric == set(INT_RANGES) | {"image_scale"}
    assert IMAGE_SCALE_RANGE[0] > 0


def test_refine_cameras_must_be_a_boolean(job: Path) -> None:
    edit(job, lambda d: d["settings"].update({"refine_cameras": "yes"}))
    err = load_error(job)
    assert "refine_cameras" in err.message and "true or false" in err.hint
    edit(job, lambda d: d["settings"].update({"refine_cameras": True}))
    assert load_job(job).settings["refine_cameras"] is True


def test_iterations_null_converges_by_quality_level(job: Path) -> None:
    """Without iterations the run stops when the mesh is done (the default); a number keeps a fixed schedule."""
    from backend.io.quality import DEFAULT_QUALITY, LEVELS
    from backend.io.views import DEFAULT_SETTINGS

    assert DEFAULT_SETTINGS["iterations"] is None and DEFAULT_SETTINGS["quality"] == DEFAULT_QUALITY
    for quality in LEVELS:
        edit(job, lambda d: d["settings"].update({"iterations": None, "quality": quality}))
        settings = load_job(job).settings
        assert settings["iterations"] is None and settings["quality"] == quality
    edit(job, lambda d: d["settings"].update({"iterations": 300}))
    assert load_job(job).settings["iterations"] == 300
    edit(job, lambda d: d["settings"].update({"quality": "best"}))
    err = load_error(job)
    assert "quality" in err.message and "draft, standard, high" in err.hint


def test_max_faces_null_and_in_range_pass(job: Path) -> None:
    for value in (None, 500, 200_000):
        edit(job, lambda d: d["settings"].update({"max_faces": value}))
        assert load_job(job).settings["max_faces"] == value


def test_image_outside_job_folder_is_a_warning_naming_the_view(job: Path, tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    outside = tmp_path / "elsewhere.png"
    outside.write_bytes((job / "images" / "cam_2.png").read_bytes())
    edit(job, lambda d: d["views"][2].update(image="../elsewhere.png"))
    with caplog.at_level(logging.WARNING):
        scene = load_job(job)
    validate_scene(scene)
    warned = [r.getMessage() for r in caplog.records if "outside the job folder" in r.getMessage()]
    assert len(warned) == 1 and "cam_2" in warned[0] and "elsewhere.png" in warned[0]


def test_image_path_not_a_string(job: Path) -> None:
    edit(job, lambda d: d["views"][0].update(image=5))
    err = load_error(job)
    assert err.view == "cam_0" and "image" in err.message


def test_missing_mask_is_reported_only_when_required() -> None:
    scene = make_scene()
    scene.views[2].mask = None
    validate_scene(scene, require_masks=False)
    with pytest.raises(JobError) as info:
        validate_scene(scene)
    err = info.value
    assert err.view == "cam_2" and "'cam_2' has no alpha channel and no mask file was found" in err.message
    assert "photos" in err.hint


def test_job_without_alpha_or_mask_loads_with_none(job: Path) -> None:
    iio.imwrite(job / "images" / "cam_3.png", np.full((SIZE, SIZE, 3), 128, np.uint8))
    scene = load_job(job)
    assert scene.views[3].mask is None and scene.views[0].mask is not None
    assert load_error(job).view == "cam_3"


DESIGN_SETTINGS = {"device": "auto", "rasterizer": "auto", "image_scale": 1, "iterations": 2000,
                   "symmetry": "detect", "texture_size": 2048, "seed": 0, "max_faces": None,
                   "refine_cameras": False, "initial_mesh": None, "topology": "auto"}  # DESIGN.md "Job folder"


def test_design_settings_block_is_accepted(job: Path) -> None:
    from backend.io.views import DEFAULT_SETTINGS

    assert set(DEFAULT_SETTINGS) == set(DESIGN_SETTINGS) | {"quality"}  # quality: ours (docs/ARCHITECTURE.md)
    edit(job, lambda d: d.update(settings=dict(DESIGN_SETTINGS)))
    scene = load_job(job)
    validate_scene(scene)
    assert scene.settings["topology"] == "auto"


def test_topology_setting_takes_auto_on_off(job: Path) -> None:
    for value in ("off", "on", "auto"):
        edit(job, lambda d: d["settings"].update({"topology": value}))
        scene = load_job(job)
        validate_scene(scene)
        assert scene.settings["topology"] == value
    edit(job, lambda d: d["settings"].update({"topology": "sometimes"}))
    err = load_error(job)
    assert "topology" in err.message and "auto, on, off" in err.hint
