"""Structure-from-motion glue: pycolmap Reconstruction -> K, R, t (pixel convention included), the undistortion
step, focal-prior reset, retry rule, the killable child step, and the failure path on photos that do not match."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pycolmap
import pytest
from PIL import Image

from backend.capture import colmap_steps as steps
from backend.runtime.worker import run_killable
from backend.capture.reconstruction import pinhole_K, sfm_cameras, sparse_points, world_to_camera
from backend.capture.sfm import better_model, needs_focal_retry, run_sfm
from backend.runtime.errors import Cancelled, JobError


def project(K: np.ndarray, R: np.ndarray, t: np.ndarray, X: np.ndarray) -> np.ndarray:
    """OpenCV projection of world points (N, 3) to pixels (N, 2)."""
    x = (R @ X.T).T + t
    uv = (K @ x.T).T
    return uv[:, :2] / uv[:, 2:]


def small_model(model: str, params: list[float], w: int = 320, h: int = 240) -> pycolmap.Reconstruction:
    """Two posed images (names out of id order) of one camera and three points seen by them."""
    rec = pycolmap.Reconstruction()
    cam = pycolmap.Camera.create_from_model_name(1, model, 300.0, w, h)
    cam.params = params
    rec.add_camera_with_trivial_rig(cam)
    poses = {1: ("b.jpg", [0.1, -0.2, 0.05], [0.2, -0.1, 4.0]), 2: ("a.jpg", [-0.05, 0.3, 0.1], [-0.3, 0.2, 3.5])}
    for image_id, (name, rotvec, trans) in poses.items():
        img = pycolmap.Image(name=name, keypoints=np.zeros((3, 2)), camera_id=1, image_id=image_id)
        rec.add_image_with_trivial_frame(img, pycolmap.Rigid3d(pycolmap.Rotation3d(np.array(rotvec)), np.array(trans)))
    for k, (X, seen_by) in enumerate([([0.3, 0.2, 0.1], [(1, 0), (2, 0)]), ([-0.4, 0.1, 0.0], [(1, 1)]),
                                      ([0.0, -0.3, 0.2], [(2, 2)])]):
        track = pycolmap.Track()
        for image_id, idx in seen_by:
            track.add_element(image_id, idx)
        rec.add_point3D(np.array(X), track, np.array([10 * k, 20, 30], np.uint8))
    return rec


@pytest.mark.parametrize("model,params", [("PINHOLE", [310.0, 290.0, 161.5, 118.25]),
                                          ("SIMPLE_PINHOLE", [305.0, 158.0, 122.0])])
def test_pinhole_cameras_project_as_colmap_does(tmp_path, model, params):
    rec = small_model(model, params)
    cams = sfm_cameras(rec, tmp_path / "photos", tmp_path / "images")
    assert [c.name for c in cams] == ["a", "b"]
    assert cams[0].photo == tmp_path / "photos" / "a.jpg" and cams[0].image_path == tmp_path / "images" / "a.png"
    X = np.array([[0.3, 0.2, 0.1], [-0.5, 0.4, 0.3], [0.2, -0.6, -0.4]])
    for cam in cams:
        image = rec.find_image_with_name(cam.photo.name)
        ours = project(cam.K, cam.R, cam.t, X)
        theirs = np.array([image.project_point(x) for x in X])
        np.testing.assert_allclose(ours, theirs, atol=1e-9)
        np.testing.assert_allclose(cam.R @ cam.R.T, np.eye(3), atol=1e-12)
        assert (cam.width, cam.height) == (320, 240)


def test_colmap_pixel_centres_are_at_half_pixels_like_ours():
    cam = pycolmap.Camera.create_from_model_name(1, "PINHOLE", 300.0, 320, 240)
    K = pinhole_K(cam)
    assert (K[0, 2], K[1, 2]) == (160.0, 120.0)        # image centre = corner origin + half the size
    # the ray through the centre of the top-left pixel, (0.5, 0.5), goes through that pixel's centre again
    ray = cam.cam_from_img(np.array([[0.5, 0.5]]))[0]
    np.testing.assert_allclose(K @ np.array([*ray, 1.0]), [0.5, 0.5, 1.0], atol=1e-12)


def test_distorted_camera_is_refused():
    with pytest.raises(ValueError, match="SIMPLE_RADIAL"):
        pinhole_K(pycolmap.Camera.create_from_model_name(1, "SIMPLE_RADIAL", 300.0, 320, 240))


def test_sparse_points_tracks_index_the_sorted_cameras():
    rec = small_model("PINHOLE", [310.0, 290.0, 161.5, 118.25])
    points, colors, views = sparse_points(rec)
    np.testing.assert_allclose(points, [[0.3, 0.2, 0.1], [-0.4, 0.1, 0.0], [0.0, -0.3, 0.2]])
    assert colors.dtype == np.uint8 and colors[1].tolist() == [10, 20, 30]
    # cameras are sorted by name: a.jpg (image 2) is index 0, b.jpg (image 1) is index 1
    assert [v.tolist() for v in views] == [[0, 1], [1], [0]]
    _, t = world_to_camera(rec.image(1))
    np.testing.assert_allclose(t, [0.2, -0.1, 4.0])


def test_undistortion_moves_a_dot_where_the_pinhole_camera_projects_it(tmp_path):
    """A dot drawn where the distorted camera sees a point lands, after undistortion, where our K, R, t put it."""
    rec = small_model("SIMPLE_RADIAL", [300.0, 160.0, 120.0, -0.25])
    image = rec.find_image_with_name("a.jpg")
    X = np.array([0.7, 0.55, 0.0])                      # far from the centre, where distortion is strong
    u, v = image.project_point(X)
    yy, xx = np.mgrid[0:240, 0:320] + 0.5               # pixel centres
    dot = np.exp(-((xx - u) ** 2 + (yy - v) ** 2) / (2 * 1.5 ** 2))
    photos, out = tmp_path / "photos", tmp_path / "und"
    photos.mkdir()
    for name in ("a.jpg", "b.jpg"):
        Image.fromarray(np.repeat((dot * 255).astype(np.uint8)[..., None], 3, axis=-1)).save(photos / name.replace(".jpg", ".png"))
        (photos / name).write_bytes((photos / name.replace(".jpg", ".png")).read_bytes())
    rec.write(str(tmp_path))
    steps.undistort(str(tmp_path), str(photos), str(out / "images"), str(out / "model"), 1600, report=lambda *m: None)
    urec = pycolmap.Reconstruction(str(out / "model"))
    cam = next(c for c in sfm_cameras(urec, photos, out / "images") if c.name == "a")
    img = np.asarray(Image.open(cam.image_path).convert("L"), np.float64)
    assert img.shape == (cam.height, cam.width)
    w = np.where(img > 0.3 * img.max(), img, 0.0)
    yy, xx = np.mgrid[0:img.shape[0], 0:img.shape[1]] + 0.5
    found = np.array([(w * xx).sum() / w.sum(), (w * yy).sum() / w.sum()])
    expected = project(cam.K, cam.R, cam.t, X[None])[0]
    plain = project(np.array([[300.0, 0, 160], [0, 300, 120], [0, 0, 1]]), cam.R, cam.t, X[None])[0]
    assert np.linalg.norm(plain - np.array([u, v])) > 1.0   # distortion really moves it (4x the tolerance) ...
    assert (cam.width, cam.height) == (320, 240)            # ... while the undistorted photo keeps its size
    assert np.linalg.norm(found - expected) < 0.35


def test_focal_prior_reset(tmp_path):
    db_path = str(tmp_path / "db.db")
    with pycolmap.Database.open(db_path) as db:
        cam = pycolmap.Camera.create_from_model_name(1, "SIMPLE_RADIAL", 2600.0, 640, 480)
        cam.has_prior_focal_length = True
        db.write_camera(cam, use_camera_id=True)
        other = pycolmap.Camera.create_from_model_name(2, "SIMPLE_RADIAL", 900.0, 800, 600)
        db.write_camera(other, use_camera_id=True)
    assert steps.reset_focal_priors(db_path) == 1
    with pycolmap.Database.open(db_path) as db:
        cams = {c.camera_id: c for c in db.read_all_cameras()}
    assert not cams[1].has_prior_focal_length and cams[1].focal_length == pytest.approx(1.2 * 640)
    assert cams[2].focal_length == pytest.approx(900.0)


def test_retry_rule_and_model_choice():
    assert needs_focal_retry(0, 11) and needs_focal_retry(5, 11) and not needs_focal_retry(6, 11)
    assert needs_focal_retry(2, 3) and not needs_focal_retry(3, 3)
    a, b = ("a", 10, 0.6), ("b", 11, 0.9)
    assert better_model(a, b) == b and better_model(a, ("c", 10, 0.4))[0] == "c" and better_model(None, a) == a
    assert better_model(None, None) is None
    assert [steps.choose_matcher("auto", n) for n in (30, 31, 200, 201)] == ["exhaustive", "overlap", "overlap", "sequential"]
    assert steps.choose_matcher("overlap", 10) == "overlap" and steps.choose_matcher("sequential", 10) == "sequential"
    with pytest.raises(ValueError):
        steps.choose_matcher("vocab", 10)


def _slow(seconds: float, report) -> str:
    report("wait", 0.5)
    time.sleep(seconds)
    return "done"


def test_child_step_reports_and_is_killed_on_cancel():
    seen = []
    assert run_killable(_slow, (0.1,), None, on_message=lambda *m: seen.append(m)) == "done"
    assert seen == [("wait", 0.5)]
    t0 = time.monotonic()

    def poll() -> None:
        if time.monotonic() - t0 > 0.3:
            raise Cancelled("cancelled")

    with pytest.raises(Cancelled):
        run_killable(_slow, (60.0,), None, poll=poll, on_message=lambda *m: None)
    assert time.monotonic() - t0 < 3.0


def test_photos_that_do_not_overlap_give_a_job_error(tmp_path):
    rng = np.random.default_rng(0)
    photos = tmp_path / "photos"
    photos.mkdir()
    for k in range(3):
        noise = (rng.random((60, 80)) * 255).astype(np.uint8)
        Image.fromarray(np.kron(noise, np.ones((4, 4), np.uint8))).convert("RGB").save(photos / f"p{k}.png")
    with pytest.raises(JobError) as err:
        run_sfm(photos, tmp_path / "work", max_image_size=320)
    assert "0 of 3" in err.value.message and "overlap" in err.value.hint


def test_camera_scoring_undoes_the_similarity_and_finds_a_turned_camera():
    from backend.capture.evaluate import align_cameras
    from backend.cameras.pose import so3_exp

    rng = np.random.default_rng(1)
    n = 8
    R_true = np.stack([so3_exp(rng.normal(size=3)) for _ in range(n)])
    t_true = rng.normal(size=(n, 3)) + [0, 0, 5]
    # the same cameras in another world frame: X_est = (Q X_true + d) / s
    Q, d, s = so3_exp(np.array([0.3, -1.2, 0.7])), np.array([2.0, -1.0, 0.5]), 3.0
    R_est = np.stack([R @ Q.T for R in R_true])
    t_est = np.stack([(t - R @ Q.T @ d) / s for R, t in zip(R_true, t_true)])
    c2 = -R_est[2].T @ t_est[2]
    R_est[2] = so3_exp(np.radians([0.0, 0.0, 1.0])) @ R_est[2]       # one camera turned by 1 degree in place
    t_est[2] = -R_est[2] @ c2
    rot, centre, S = align_cameras(R_est, t_est, R_true, t_true)
    np.testing.assert_allclose(np.delete(rot, 2), 0.0, atol=1e-6)
    assert rot[2] == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(centre, 0.0, atol=1e-9)
    assert np.cbrt(np.linalg.det(S[:3, :3])) == pytest.approx(s)


def synthetic_model(frames: int, pp: tuple[float, float]) -> pycolmap.Reconstruction:
    """pycolmap's synthetic scene: one camera with principal point pp (1024x768), `frames` posed photos, exact
    observations of 300 points."""
    opts = pycolmap.SyntheticDatasetOptions()
    opts.num_rigs, opts.num_cameras_per_rig, opts.num_frames_per_rig = 1, 1, frames
    opts.num_points3D = 300
    opts.camera_params = [1280.0, pp[0], pp[1], 0.0]
    pycolmap.set_random_seed(3)
    return pycolmap.synthesize_dataset(opts)


def test_principal_point_refinement_recovers_an_off_centre_lens(tmp_path):
    from backend.capture.evaluate import align_cameras

    rec = synthetic_model(12, (540.0, 360.0))
    ids = sorted(rec.reg_image_ids())
    R0 = np.stack([world_to_camera(rec.image(i))[0] for i in ids])
    t0 = np.stack([world_to_camera(rec.image(i))[1] for i in ids])
    cam = rec.camera(next(iter(rec.cameras.keys())))
    cam.params = [1280.0, 512.0, 384.0, 0.0]                # as COLMAP's mapper leaves it: at the centre
    rec.write(str(tmp_path))
    error = steps.refine_principal_points(str(tmp_path), str(tmp_path / "out"), report=lambda *m: None)
    assert error is not None and error < 0.05
    out = pycolmap.Reconstruction(str(tmp_path / "out"))
    cam = out.camera(cam.camera_id)
    assert abs(cam.principal_point_x - 540.0) < 1.0 and abs(cam.principal_point_y - 360.0) < 1.0
    R = np.stack([world_to_camera(out.image(i))[0] for i in ids])
    t = np.stack([world_to_camera(out.image(i))[1] for i in ids])
    rot, _, _ = align_cameras(R, t, R0, t0)
    assert rot.max() < 0.05


def test_principal_points_stay_put_for_few_photos_or_implausible_results(tmp_path):
    rec = synthetic_model(6, (540.0, 360.0))
    rec.write(str(tmp_path))
    assert steps.refine_principal_points(str(tmp_path), str(tmp_path / "out"), report=lambda *m: None) is None
    assert steps.principal_points_plausible(rec)
    far = synthetic_model(6, (512.0 + 0.15 * 1024, 384.0))
    assert not steps.principal_points_plausible(far)
