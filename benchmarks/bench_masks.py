"""Automatic masks benchmark: `python benchmarks/bench_masks.py [--dtu DIR] [--job DIR] [--work DIR]`.

DTU (IDR layout, e.g. scan65): the photos are downscaled to --side px, pycolmap finds the cameras and sparse
points (features, exhaustive matching, incremental mapping, one shared PINHOLE camera), `locate_object` fixes
the frame and `make_masks` makes the masks (given the floor plane locate found, if any, and the points' tracks as
the photos command gives them); each is scored by IoU against the dataset's mask (frame-free). The structure from
motion is kept in WORK/dtu_sfm.pkl and reused (delete it after changing --side).
A scenegen job (--job, RGBA renders of a mesh without a floor): the photos are composited over a plain grey
backdrop, the job's true cameras are used and the sparse points are sampled on its reference.obj (noise of 0.3 % of
its diagonal, plus 60 outliers), standing in for SfM on renders too plain for SIFT.
Prints per-case mean/min/median IoU and seconds, and writes a picture (photo | mask found | true mask) of the
worst, a middle and the best view of each case to --work.
"""
from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from backend.capture.locate import apply_similarity, camera_vectors, locate_object, transform_points  # noqa: E402
from backend.capture.masks import make_masks  # noqa: E402
from backend.capture.seed_visibility import visible_points  # noqa: E402


def sfm(images: list[np.ndarray], work: Path) -> dict:
    """pycolmap structure from motion on RGB images; cameras (by input index) and sparse points with tracks."""
    import pycolmap

    img_dir = work / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    for i, im in enumerate(images):
        cv2.imwrite(str(img_dir / f"{i:04d}.png"), cv2.cvtColor(im, cv2.COLOR_RGB2BGR))
    db = work / "database.db"
    db.unlink(missing_ok=True)
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = "PINHOLE"
    pycolmap.extract_features(db, img_dir, camera_mode=pycolmap.CameraMode.SINGLE, reader_options=reader)
    pycolmap.match_exhaustive(db)
    options = pycolmap.IncrementalPipelineOptions()
    options.multiple_models = False
    recs = pycolmap.incremental_mapping(db, img_dir, work / "sparse", options=options)
    rec = max(recs.values(), key=lambda r: r.num_reg_images())
    cams = {}
    for im in rec.images.values():
        M = im.cam_from_world().matrix()
        i = int(Path(im.name).stem)
        cams[i] = (rec.cameras[im.camera_id].calibration_matrix(), M[:, :3], M[:, 3])
    index = sorted(cams)
    order = {i: k for k, i in enumerate(index)}
    by_id = {im.image_id: order[int(Path(im.name).stem)] for im in rec.images.values()}
    xyz, tracks = [], []
    for p in rec.points3D.values():
        xyz.append(p.xyz)
        tracks.append(np.array(sorted({by_id[e.image_id] for e in p.track.elements})))
    return {"index": index, "cams": [cams[i] for i in index], "xyz": np.array(xyz), "tracks": tracks}


def score(name: str, images, Ks, Rs, ts, points, tracks, truths, work: Path) -> None:
    """Locate, make masks, print IoU and time, save the picture."""
    t0 = time.time()
    frame = locate_object(*camera_vectors(Rs, ts), points, tracks)
    cams = [apply_similarity(frame.transform, R, t) for R, t in zip(Rs, ts)]
    local = transform_points(frame.transform, points)
    t1 = time.time()
    background = np.flatnonzero(~frame.object_points)
    visible = None if tracks is None else visible_points(len(background), [tracks[k] for k in background], len(images))
    masks = make_masks(images, Ks, [c[0] for c in cams], [c[1] for c in cams], frame.bbox_min, frame.bbox_max,
                       local[frame.object_points], local[background], floor=frame.floor, background_visible=visible)
    t2 = time.time()
    ious = np.array([(m & t).sum() / max((m | t).sum(), 1) for m, t in zip(masks, truths)])
    print(f"{name}: {len(images)} views {images[0].shape[1]}x{images[0].shape[0]}, floor "
          f"{'found' if frame.floor else 'none'}, {int(frame.object_points.sum())}/{len(points)} object points; "
          f"IoU mean {ious.mean():.3f} min {ious.min():.3f} median {np.median(ious):.3f}; "
          f"locate {t1 - t0:.1f} s, masks {t2 - t1:.1f} s")
    rows = []
    for i in np.argsort(ious)[[0, len(ious) // 2, -1]]:
        grey = lambda m: np.repeat((m * 255).astype(np.uint8)[:, :, None], 3, 2)  # noqa: E731
        row = np.hstack([cv2.cvtColor(images[i], cv2.COLOR_RGB2BGR), grey(masks[i]), grey(truths[i])])
        cv2.putText(row, f"view {i} IoU {ious[i]:.3f}", (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 255), 2)
        rows.append(cv2.resize(row, (1200, round(1200 * row.shape[0] / row.shape[1]))))
    out = work / f"masks_{name}.png"
    cv2.imwrite(str(out), np.vstack(rows))
    print(f"  picture: {out}")


def run_dtu(root: Path, side: int, work: Path) -> None:
    """DTU-style IDR folder: SfM on the downscaled photos, masks scored against the dataset's."""
    from backend.io.idr import load_idr

    scene = load_idr(root)
    images, truths = [], []
    for v in scene.views:
        s = side / max(v.width, v.height)
        size = (round(v.width * s), round(v.height * s))
        images.append(cv2.resize((v.image * 255 + 0.5).astype(np.uint8), size, interpolation=cv2.INTER_AREA))
        truths.append(cv2.resize(v.mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool))
    t = time.time()
    cached = work / "dtu_sfm.pkl"
    if cached.is_file():  # the same photos at the same side: structure from motion once
        rec = pickle.loads(cached.read_bytes())
    else:
        rec = sfm(images, work / "dtu_sfm")
        cached.write_bytes(pickle.dumps(rec))
    print(f"dtu sfm: {len(rec['index'])}/{len(images)} registered, {len(rec['xyz'])} points, {time.time() - t:.0f} s")
    idx = rec["index"]
    Ks, Rs, ts = (np.array([c[k] for c in rec["cams"]]) for k in range(3))
    score("dtu", [images[i] for i in idx], Ks, Rs, ts, rec["xyz"], rec["tracks"], [truths[i] for i in idx], work)


def run_job(job: Path, work: Path) -> None:
    """scenegen job: renders over a plain backdrop, true cameras, points sampled on the reference mesh."""
    import trimesh

    spec = json.loads((job / "job.json").read_text())
    rng = np.random.default_rng(0)
    images, truths, Ks, Rs, ts = [], [], [], [], []
    for v in spec["views"]:
        rgba = cv2.cvtColor(cv2.imread(str(job / v["image"]), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA) / 255.0
        h, w = rgba.shape[:2]
        alpha = rgba[:, :, 3:]
        backdrop = np.array([0.58, 0.6, 0.62]) * (0.9 + 0.1 * np.linspace(0, 1, h)[:, None, None])
        rgb = rgba[:, :, :3] * alpha + (backdrop + rng.normal(0, 0.01, (h, w, 3))) * (1 - alpha)
        images.append(np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8))
        truths.append(alpha[:, :, 0] > 0.5)
        Ks.append(np.array(v["K"]))
        Rs.append(np.array(v["R"]))
        ts.append(np.array(v["t"]))
    mesh = trimesh.load(job / "reference.obj", force="mesh")
    diag = float(np.linalg.norm(mesh.extents))
    pts = np.asarray(mesh.sample(2500)) + rng.normal(0, 0.003 * diag, (2500, 3))
    points = np.vstack([pts, rng.uniform(-3, 3, (60, 3)) * diag])
    score(f"job_{job.name}", images, np.array(Ks), np.array(Rs), np.array(ts), points, None, truths, work)


def main() -> None:
    """Parse arguments and run the cases asked for."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dtu", type=Path, help="IDR folder (cameras.npz, image/, mask/), e.g. DTU scan65")
    ap.add_argument("--side", type=int, default=800, help="longest side of the DTU photos for SfM and masks")
    ap.add_argument("--job", type=Path, help="a scenegen job folder (RGBA renders, job.json, reference.obj)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench_masks"))
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.dtu:
        run_dtu(args.dtu, args.side, args.work)
    if args.job:
        run_job(args.job, args.work)
    if not (args.dtu or args.job):
        ap.error("give --dtu and/or --job")


if __name__ == "__main__":
    main()
