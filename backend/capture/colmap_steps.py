"""The pycolmap steps of structure from motion, each run in a child process (`runtime.worker.run_killable`): feature
extraction, matching, incremental mapping and undistortion. Each takes `report(step, fraction)`."""
from __future__ import annotations

import os
import re
import shutil
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import numpy as np
import pycolmap

EXHAUSTIVE_MAX_PHOTOS = 30     # auto: exhaustive matching up to this many photos (435 pairs), "overlap" beyond
OVERLAP_MAX_PHOTOS = 200       # ... and up to this many (its coarse pass is exhaustive: 19900 pairs), sequential beyond
SEQUENTIAL_OVERLAP = 15        # sequential matching: each photo with its next 15 (and 2^k further ones)
COARSE_FEATURES = 1024         # overlap: the coarse pass matches each photo's largest-scale SIFT features only
COARSE_NEIGHBOURS = 12         # overlap: each photo is fully matched with the photos it shares most coarse inliers with
COARSE_SHARE = 0.25            # overlap: the share of the "match" progress the coarse pass takes
MATCHERS = ("auto", "exhaustive", "overlap", "sequential")
DEFAULT_FOCAL_FACTOR = 1.2     # COLMAP's focal guess without EXIF: 1.2 x the longest side
PP_MIN_IMAGES = 10             # principal points are refined only for cameras shared by this many photos
PP_MAX_SHIFT = 0.1             # ... and kept only within this share of the image size from its centre

Report = Callable[..., None]


def quiet() -> None:
    """COLMAP logs warnings and errors only (its INFO lines would flood the backend's stderr)."""
    pycolmap.logging.minloglevel = 1


def reader_options() -> pycolmap.ImageReaderOptions:
    """Distorted cameras start as SIMPLE_RADIAL (f, cx, cy, k), COLMAP's default for unknown photos."""
    opts = pycolmap.ImageReaderOptions()
    opts.camera_model = "SIMPLE_RADIAL"
    opts.default_focal_length_factor = DEFAULT_FOCAL_FACTOR
    return opts


def extract(database: str, photos_dir: str, groups: list[list[str]], max_image_size: int, report: Report) -> int:
    """Import the photos, one camera per group (EXIF body, image size and focal: COLMAP's AUTO mode would
    give every photo without an EXIF focal its own camera), then extract SIFT features on the CPU in
    chunks, reporting the share done; returns the number of cameras."""
    quiet()
    pycolmap.Database.open(database).close()
    for group in groups:
        pycolmap.import_images(database, photos_dir, pycolmap.CameraMode.SINGLE, group, reader_options())
    names = [n for group in groups for n in group]
    opts = pycolmap.FeatureExtractionOptions()
    opts.max_image_size = max_image_size
    opts.use_gpu = False
    step = max(1, len(names) // 20)
    for k in range(0, len(names), step):
        pycolmap.extract_features(database, photos_dir, image_names=names[k:k + step],
                                  camera_mode=pycolmap.CameraMode.SINGLE, reader_options=reader_options(),
                                  extraction_options=opts, device=pycolmap.Device.cpu)
        report("extract", min(1.0, (k + step) / len(names)))
    with pycolmap.Database.open(database) as db:
        return db.num_cameras()


def choose_matcher(matcher: str, n_photos: int) -> str:
    """"exhaustive", "overlap" or "sequential": auto picks exhaustive up to EXHAUSTIVE_MAX_PHOTOS photos,
    overlap up to OVERLAP_MAX_PHOTOS, sequential (file-name order) beyond."""
    if matcher == "auto":
        if n_photos <= EXHAUSTIVE_MAX_PHOTOS:
            return "exhaustive"
        return "overlap" if n_photos <= OVERLAP_MAX_PHOTOS else "sequential"
    if matcher not in MATCHERS:
        raise ValueError(f"unknown matcher {matcher!r} ({', '.join(MATCHERS[:-1])} or {MATCHERS[-1]})")
    return matcher


def exhaustive_pairs(names: list[str]) -> list[tuple[str, str]]:
    """Every pair of photos once, in file-name order."""
    return [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]


@contextmanager
def colmap_log(keep: Callable[[str], bool]) -> Iterator[None]:
    """Within the block this process's stderr, where COLMAP's glog writes, goes line by line through keep(line),
    with COLMAP logging at INFO; a line keep() returns True for still reaches stderr. Stderr and the log level come
    back after. For progress without reading the database while COLMAP writes it (a reader's lock made COLMAP's
    matcher abort: a busy database is fatal to it)."""
    sys.stderr.flush()
    saved = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    level, to_stderr = pycolmap.logging.minloglevel, pycolmap.logging.logtostderr
    pycolmap.logging.minloglevel, pycolmap.logging.logtostderr = 0, True

    def pump() -> None:
        with os.fdopen(read_end, "r", errors="replace") as lines:
            for line in lines:
                if keep(line):
                    os.write(saved, line.encode(errors="replace"))

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        yield
    finally:
        pycolmap.logging.minloglevel, pycolmap.logging.logtostderr = level, to_stderr
        sys.stderr.flush()
        os.dup2(saved, 2)  # the pipe's last write end closes: the reader sees the end
        reader.join(timeout=5)
        os.close(saved)


BLOCK_LINE = re.compile(r"Processing block \[(\d+)/(\d+)")
INFO_LINE = re.compile(r"I\d{8} ")  # glog's INFO prefix (I + date)
PROGRESS_BLOCKS = 20  # matching in up to this many blocks of pairs: a progress step each
MIN_BLOCK_PAIRS = 50  # ... of at least this many pairs (435 pairs in blocks of 11 took twice the time of 1225 or 30)


def match_pairs(database: str, pairs: list[tuple[str, str]], pair_file: Path, report: Report,
                span: tuple[float, float] = (0.0, 1.0)) -> None:
    """Match and verify the given photo pairs (CPU) in one COLMAP call, which builds each photo's descriptor index
    once (a call per chunk of pairs rebuilt them all: 1.9x the time on 297 pairs); progress ("match", fraction
    from span[0] to span[1]) comes from COLMAP's own "Processing block [i/n]" log lines, the pairs cut into up to
    PROGRESS_BLOCKS blocks; COLMAP's warnings and errors still reach stderr, its other INFO lines do not."""
    pair_file.write_text("".join(f"{a} {b}\n" for a, b in pairs))
    opts = pycolmap.FeatureMatchingOptions()
    opts.use_gpu = False
    imported = pycolmap.ImportedPairingOptions()
    imported.match_list_path = str(pair_file)
    imported.block_size = max(MIN_BLOCK_PAIRS, -(-len(pairs) // PROGRESS_BLOCKS))
    report("match", span[0])

    def keep(line: str) -> bool:
        found = BLOCK_LINE.search(line)
        if found:
            done, total = int(found.group(1)) - 1, max(int(found.group(2)), 1)
            report("match", span[0] + (span[1] - span[0]) * min(done / total, 1.0))
        return not INFO_LINE.match(line)

    with colmap_log(keep):
        pycolmap.match_image_pairs(database, matching_options=opts, pairing_options=imported,
                                   device=pycolmap.Device.cpu)
    report("match", span[1])


def largest_scales(keypoints: np.ndarray, count: int) -> np.ndarray:
    """Indices (ascending) of the `count` keypoints of largest scale: COLMAP keypoints are x, y and either scale,
    orientation or the 2x2 affine shape, whose determinant is the squared scale."""
    if len(keypoints) <= count:
        return np.arange(len(keypoints))
    k = np.asarray(keypoints, np.float64)
    scale = k[:, 2] if k.shape[1] == 4 else np.sqrt(np.abs(k[:, 2] * k[:, 5] - k[:, 3] * k[:, 4]))
    return np.sort(np.argsort(-scale, kind="stable")[:count])


def coarse_database(database: str, coarse: str, count: int = COARSE_FEATURES) -> None:
    """A copy of the database (no matches yet) in which each photo keeps only its `count` largest-scale features:
    what a small, downscaled photo would give, without reading the photos again."""
    for suffix in ("", "-wal", "-shm"):
        Path(coarse + suffix).unlink(missing_ok=True)
    with closing(sqlite3.connect(database)) as src, closing(sqlite3.connect(coarse)) as dst:
        src.backup(dst)
    with pycolmap.Database.open(coarse) as db:
        features = {}
        for image in db.read_all_images():
            keypoints, descriptors = db.read_keypoints(image.image_id), db.read_descriptors(image.image_id)
            keep = largest_scales(keypoints, count)
            features[image.image_id] = (keypoints[keep],
                                        pycolmap.FeatureDescriptors(descriptors.type, descriptors.data[keep]))
        db.clear_keypoints()
        db.clear_descriptors()
        for image_id, (keypoints, descriptors) in features.items():
            db.write_keypoints(image_id, keypoints)
            db.write_descriptors(image_id, descriptors)


def verified_inliers(database: str) -> dict[tuple[str, str], int]:
    """(photo, photo) -> inlier matches of each geometrically verified pair of the database."""
    with pycolmap.Database.open(database) as db:
        name = {im.image_id: im.name for im in db.read_all_images()}
        pair_ids, counts = db.read_two_view_geometry_num_inliers()
    out = {}
    for pair_id, count in zip(pair_ids, counts):
        a, b = pycolmap.pair_id_to_image_pair(pair_id)
        if count > 0:
            out[(name[a], name[b])] = int(count)
    return out


def select_pairs(names: list[str], inliers: dict[tuple[str, str], int],
                 neighbours: int = COARSE_NEIGHBOURS) -> list[tuple[str, str]]:
    """The pairs worth full matching, from a coarse pass's inlier counts (any photo order): each photo with the
    `neighbours` photos it shares most inliers with, the strongest links that join every group the coarse pass
    connects (a maximum spanning tree), each photo with the next in file-name order, and every pair of a photo
    the coarse pass found no partner for. Returned in file-name order, each pair once."""
    index = {n: i for i, n in enumerate(names)}
    chosen: set[tuple[int, int]] = {(i, i + 1) for i in range(len(names) - 1)}
    partners: dict[int, list[tuple[int, int]]] = {i: [] for i in range(len(names))}
    for (a, b), count in inliers.items():
        i, j = sorted((index[a], index[b]))
        partners[i].append((count, j))
        partners[j].append((count, i))
    for i, found in partners.items():
        if not found:
            chosen |= {tuple(sorted((i, j))) for j in range(len(names)) if j != i}
        for _, j in sorted(found, reverse=True)[:neighbours]:
            chosen.add(tuple(sorted((i, j))))
    root = list(range(len(names)))

    def find(i: int) -> int:
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i

    for count, a, b in sorted(((c, *sorted((index[a], index[b]))) for (a, b), c in inliers.items()), reverse=True):
        if find(a) != find(b):
            root[find(a)] = find(b)
            chosen.add((a, b))
    return [(names[i], names[j]) for i, j in sorted(chosen)]


def overlap_pairs(database: str, names: list[str], work_dir: str, report: Report) -> list[tuple[str, str]]:
    """The coarse pass: every pair matched on the largest-scale features only, in a copy of the database
    (work_dir/coarse.db); the pairs that share most inliers are returned for full matching."""
    coarse = str(Path(work_dir) / "coarse.db")
    coarse_database(database, coarse)
    match_pairs(coarse, exhaustive_pairs(names), Path(work_dir) / "coarse_pairs.txt", report, span=(0.0, COARSE_SHARE))
    return select_pairs(names, verified_inliers(coarse))


def match(database: str, matcher: str, names: list[str], work_dir: str, report: Report) -> int:
    """Match features between photo pairs and verify them geometrically; returns the verified pairs.

    exhaustive: all pairs in one call, progress read from the database as it fills; overlap: a coarse exhaustive pass
    on each photo's largest-scale features picks the pairs that overlap (any photo order), then only those are
    matched in full; sequential: COLMAP's sequential pairing in file-name order with loop detection off (no
    vocabulary tree to download).
    """
    quiet()
    report("match", 0.0)
    if matcher == "sequential":
        opts = pycolmap.FeatureMatchingOptions()
        opts.use_gpu = False
        pairing = pycolmap.SequentialPairingOptions()
        pairing.overlap = SEQUENTIAL_OVERLAP
        pairing.loop_detection = False
        pycolmap.match_sequential(database, matching_options=opts, pairing_options=pairing, device=pycolmap.Device.cpu)
        report("match", 1.0)
    elif matcher == "overlap":
        pairs = overlap_pairs(database, names, work_dir, report)
        match_pairs(database, pairs, Path(work_dir) / "pairs.txt", report, span=(COARSE_SHARE, 1.0))
    else:
        match_pairs(database, exhaustive_pairs(names), Path(work_dir) / "pairs.txt", report)
    with pycolmap.Database.open(database) as db:
        return db.num_verified_image_pairs()


def reset_focal_priors(database: str) -> int:
    """Forget EXIF focal lengths: every camera with a focal prior restarts from the default guess
    (1.2 x the longest side) with no prior; returns how many cameras changed."""
    changed = 0
    with pycolmap.Database.open(database) as db:
        for cam in db.read_all_cameras():
            if not cam.has_prior_focal_length:
                continue
            f = DEFAULT_FOCAL_FACTOR * max(cam.width, cam.height)
            params = list(cam.params)
            for idx in cam.focal_length_idxs():
                params[idx] = f
            cam.params = params
            cam.has_prior_focal_length = False
            db.update_camera(cam)
            changed += 1
    return changed


def mapping_options(seed: int = 0) -> pycolmap.IncrementalPipelineOptions:
    """Incremental mapping that keeps models from 3 photos up (COLMAP drops later ones under 10)."""
    opts = pycolmap.IncrementalPipelineOptions()
    opts.min_model_size = 3
    opts.random_seed = seed
    opts.mapper.random_seed = seed
    opts.triangulation.random_seed = seed
    return opts


def incremental_map(database: str, photos_dir: str, out_dir: str, n_photos: int, report: Report) -> list[tuple[str, int, float]]:
    """COLMAP's incremental mapping with bundle adjustment into out_dir/<k>/; reports photos registered
    so far; returns (model folder, registered photos, mean reprojection px) per model, largest first."""
    quiet()
    shutil.rmtree(out_dir, ignore_errors=True)
    Path(out_dir).mkdir(parents=True)
    pycolmap.set_random_seed(0)
    count = [0]

    def first_pair() -> None:
        count[0] = 2
        report("map", min(1.0, count[0] / n_photos))

    def next_image() -> None:
        count[0] += 1
        report("map", min(1.0, count[0] / n_photos))

    models = pycolmap.incremental_mapping(database, photos_dir, out_dir, mapping_options(),
                                          initial_image_pair_callback=first_pair, next_image_callback=next_image)
    out = [(str(Path(out_dir) / str(k)), rec.num_reg_images(), float(rec.compute_mean_reprojection_error()))
           for k, rec in models.items()]
    return sorted(out, key=lambda m: -m[1])


def principal_points_plausible(rec: pycolmap.Reconstruction, max_shift: float = PP_MAX_SHIFT) -> bool:
    """Whether every camera's principal point lies within max_shift of its size from the image centre."""
    return all(abs(c.principal_point_x - c.width / 2) <= max_shift * c.width
               and abs(c.principal_point_y - c.height / 2) <= max_shift * c.height for c in rec.cameras.values())


def refine_principal_points(model_dir: str, out_dir: str, report: Report) -> float | None:
    """A last bundle adjustment (Cauchy loss) that also frees the principal points: COLMAP holds them at the
    image centre, and a real lens's offset then turns every camera (DTU: 30 px, 0.6 degrees). Only when each
    camera has PP_MIN_IMAGES photos; the result is kept (written to out_dir, its mean reprojection error
    returned) only if the points stay plausible and the error does not grow; else None."""
    quiet()
    rec = pycolmap.Reconstruction(model_dir)
    counts: dict[int, int] = {}
    for i in rec.reg_image_ids():
        counts[rec.image(i).camera_id] = counts.get(rec.image(i).camera_id, 0) + 1
    if not counts or min(counts.values()) < PP_MIN_IMAGES or len(counts) < len(rec.cameras):
        return None
    report("refine", 0.0)
    rec.update_point_3d_errors()
    before = rec.compute_mean_reprojection_error()
    opts = pycolmap.BundleAdjustmentOptions()
    opts.refine_principal_point = True
    opts.print_summary = False
    opts.ceres.loss_function_type = pycolmap.LossFunctionType.CAUCHY
    pycolmap.bundle_adjustment(rec, opts)
    report("refine", 1.0)
    rec.update_point_3d_errors()
    after = rec.compute_mean_reprojection_error()
    if not principal_points_plausible(rec) or not after <= before * 1.02:
        return None
    shutil.rmtree(out_dir, ignore_errors=True)
    Path(out_dir).mkdir(parents=True)
    rec.write(out_dir)
    return float(after)


def undistort_options(max_image_size: int) -> pycolmap.UndistortCameraOptions:
    """COLMAP's undistortion to a pinhole image of the photo's own size (scaled down only to max_image_size), so
    undistorted photos, their masks and any truth keep one pixel grid; the focal is chosen so no pixel is blank."""
    opts = pycolmap.UndistortCameraOptions()
    opts.min_scale = opts.max_scale = 1.0
    opts.max_image_size = max_image_size
    return opts


def undistort(model_dir: str, photos_dir: str, image_dir: str, out_model_dir: str, max_image_size: int,
              report: Report) -> None:
    """Undistort every registered photo to a pinhole image <stem>.png in image_dir (longest side at most
    max_image_size) and write the model with those pinhole cameras to out_model_dir."""
    quiet()
    rec = pycolmap.Reconstruction(model_dir)
    opts = undistort_options(max_image_size)
    shutil.rmtree(image_dir, ignore_errors=True)
    Path(image_dir).mkdir(parents=True)
    images = [rec.image(i) for i in sorted(rec.reg_image_ids())]
    for k, image in enumerate(images):
        bitmap = pycolmap.Bitmap.read(str(Path(photos_dir) / image.name), True)
        if bitmap is None:
            raise OSError(f"cannot read {image.name}")
        undistorted, _ = pycolmap.undistort_image(opts, bitmap, image.camera)
        if not undistorted.write(str(Path(image_dir) / (Path(image.name).stem + ".png"))):
            raise OSError(f"cannot write the undistorted {image.name}")
        report("undistort", (k + 1) / len(images))
    for cid in list(rec.cameras.keys()):
        cam = pycolmap.undistort_camera(opts, rec.camera(cid))
        cam.camera_id = cid
        rec.cameras[cid] = cam
    Path(out_model_dir).mkdir(parents=True, exist_ok=True)
    rec.write(out_model_dir)
