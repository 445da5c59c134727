"""COLMAP reader on real photos: `python benchmarks/bench_colmap_io.py PHOTOS_DIR --work /tmp/colmap_bench`.

Runs pycolmap's structure from motion on the photos (SIMPLE_RADIAL cameras, COLMAP's default), then checks
our reader against pycolmap itself:
- distorted model: every observed 3D point projected through our undistorted K_new, R, t, then carried through
  our undistortion map back into the photo, lands where pycolmap projects it (pixels);
- the same model with its cameras made PINHOLE (distortion dropped): our K, R, t projection vs pycolmap's;
- pycolmap's own undistorter (images/ + sparse/ layout, which our reader also loads): its undistorted photos
  resampled into our K_new frame vs ours, shift by phase correlation and mean absolute difference.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from backend.io.colmap import load_colmap  # noqa: E402
from backend.io.undistort import opencv_coefficients, undistort_maps  # noqa: E402


def run_sfm(photos: Path, work: Path):
    """Feature extraction, exhaustive matching and incremental mapping into work/sparse/0 (cached)."""
    import pycolmap

    model = work / "sparse" / "0"
    if not model.is_dir():
        work.mkdir(parents=True, exist_ok=True)
        db = work / "database.db"
        db.unlink(missing_ok=True)
        t0 = time.time()
        pycolmap.extract_features(db, photos)
        pycolmap.match_exhaustive(db)
        pycolmap.incremental_mapping(db, photos, work / "sparse")
        print(f"sfm: {time.time() - t0:.1f} s")
    images = work / "images"
    if not images.exists():
        images.symlink_to(Path(photos).resolve())
    return pycolmap.Reconstruction(str(model))


def project(K: np.ndarray, R: np.ndarray, t: np.ndarray, X: np.ndarray) -> np.ndarray:
    """(N, 2) pixels of world points through a pinhole camera."""
    x = (X @ R.T + t) @ K.T
    return x[:, :2] / x[:, 2:3]


def sample(map_: np.ndarray, px: np.ndarray) -> np.ndarray:
    """Bilinear value (float64, unlike cv2.remap's 1/32-pixel weights) of an OpenCV-indexed map at pixels in our
    convention (centres at +0.5)."""
    from scipy.ndimage import map_coordinates

    return map_coordinates(map_.astype(np.float64), [px[:, 1] - 0.5, px[:, 0] - 0.5], order=1)


def observations(rec, image) -> np.ndarray:
    """World points seen by an image."""
    ids = [p.point3D_id for p in image.points2D if p.has_point3D()]
    return np.array([rec.points3D[i].xyz for i in ids]).reshape(-1, 3)


def check_distorted(rec, work: Path) -> None:
    """Our undistorted projection, mapped back through the undistortion map, vs pycolmap's projection."""
    scene = load_colmap(work)
    by_name = {im.name: im for im in rec.images.values()}
    errors = []
    for view in scene.views:
        image = next(im for n, im in by_name.items() if Path(n).stem == view.name)
        cam = rec.cameras[image.camera_id]
        extra = np.asarray(cam.params)[list(cam.extra_params_idxs())]
        map_x, map_y, K_new = undistort_maps(cam.calibration_matrix(), cam.model.name, extra, (cam.width, cam.height))
        X = observations(rec, image)
        ours = project(view.K, view.R, view.t, X)
        inside = (ours[:, 0] > 1) & (ours[:, 0] < view.width - 1) & (ours[:, 1] > 1) & (ours[:, 1] < view.height - 1)
        X, ours = X[inside], ours[inside]
        back = np.stack([sample(map_x, ours), sample(map_y, ours)], 1) + 0.5
        theirs = np.array([image.project_point(x) for x in X])
        errors.append(np.linalg.norm(back - theirs, axis=1))
    e = np.concatenate(errors)
    print(f"{cam.model.name} model, {len(scene.views)} views, {len(e)} observations inside the undistorted frames: "
          f"|ours mapped back - pycolmap| mean {e.mean():.5f} px, max {e.max():.5f} px")


def check_pinhole(rec, work: Path) -> None:
    """The model with PINHOLE cameras: our K, R, t projection vs pycolmap's own."""
    import pycolmap

    pin = work.parent / (work.name + "_pinhole")
    shutil.rmtree(pin, ignore_errors=True)
    (pin / "sparse" / "0").mkdir(parents=True)
    (pin / "images").symlink_to((work / "images").resolve())
    for cam in rec.cameras.values():
        f, cx, cy = cam.params[:3]
        cam.model = pycolmap.CameraModelId.PINHOLE
        cam.params = [f, f, cx, cy]
    rec.write_text(str(pin / "sparse" / "0"))
    rec = pycolmap.Reconstruction(str(pin / "sparse" / "0"))
    scene = load_colmap(pin)
    errors = []
    for view, image in zip(scene.views, sorted(rec.images.values(), key=lambda im: im.name)):
        X = observations(rec, image)
        errors.append(np.linalg.norm(project(view.K, view.R, view.t, X)
                                     - np.array([image.project_point(x) for x in X]), axis=1))
    e = np.concatenate(errors)
    print(f"PINHOLE model (.txt): |ours - pycolmap| mean {e.mean():.2e} px, max {e.max():.2e} px")


def image_shift(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(dx, dy) with b(x) ~ a(x + d): one Gauss-Newton step on lightly blurred grey images (small shifts)."""
    a, b = (cv2.GaussianBlur(img.astype(np.float64), (0, 0), 1.5) for img in (a, b))
    gy, gx = np.gradient(a)
    J = np.stack([gx.ravel(), gy.ravel()], 1)
    return np.linalg.solve(J.T @ J, J.T @ (b - a).ravel())


def check_undistorter(work: Path) -> None:
    """pycolmap's undistorted photos resampled into our K_new frame vs ours."""
    import pycolmap

    out = work.parent / (work.name + "_undistorted")
    shutil.rmtree(out, ignore_errors=True)
    pycolmap.undistort_images(out, work / "sparse" / "0", work / "images")
    ours, theirs = load_colmap(work), load_colmap(out)
    shifts, diffs = [], []
    for a, b in zip(ours.views, theirs.views):
        assert a.name == b.name and np.allclose(a.R, b.R) and np.allclose(a.t, b.t)
        h, w = a.height, a.width
        u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
        rays = np.linalg.solve(a.K, np.stack([u.ravel(), v.ravel(), np.ones(u.size)]))
        px = (b.K @ rays)[:2] - 0.5
        resampled = cv2.remap(b.image, px[0].reshape(h, w).astype(np.float32), px[1].reshape(h, w).astype(np.float32),
                              cv2.INTER_LINEAR)
        inner = (slice(8, h - 8), slice(8, w - 8))
        ga, gb = (cv2.cvtColor(np.ascontiguousarray(img[inner]), cv2.COLOR_RGB2GRAY) for img in (a.image, resampled))
        shifts.append(np.hypot(*image_shift(ga, gb)))
        diffs.append(np.abs(ga - gb).mean() * 255)
    print(f"pycolmap undistorter vs ours ({len(shifts)} views): shift (least squares) mean {np.mean(shifts):.3f} px, "
          f"max {np.max(shifts):.3f} px; mean |difference| {np.mean(diffs):.2f} / 255")


def main() -> None:
    """Run the three checks on a photo folder."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("photos", type=Path)
    p.add_argument("--work", type=Path, default=Path("/tmp/colmap_bench"))
    args = p.parse_args()
    rec = run_sfm(args.photos, args.work)
    print(rec.summary())
    cams = {c.model.name: opencv_coefficients(c.model.name, np.asarray(c.params)[list(c.extra_params_idxs())])[1]
            for c in rec.cameras.values()}
    print("cameras:", {k: np.round(v[np.nonzero(v)], 5).tolist() for k, v in cams.items()})
    check_distorted(rec, args.work)
    check_undistorter(args.work)
    check_pinhole(rec, args.work)


if __name__ == "__main__":
    main()
