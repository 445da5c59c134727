"""The "overlap" matcher: a coarse pass on each photo's largest-scale features picks the pairs to match in full,
whatever order the file names are in."""
from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import pycolmap
from PIL import Image

from backend.capture import colmap_steps as steps

STRIP = 10       # photos along a strip of texture, each 40 px on from the last
WIDTH, HEIGHT, STEP = 160, 120, 40


def strip_photos(folder: Path) -> dict[str, int]:
    """Crops of one random texture along a strip, saved under shuffled names; name -> place along the strip.
    Photos k and k+m overlap by (160 - 40 m) px: 3 neighbours on each side, none from 4 on."""
    rng = np.random.default_rng(0)
    noise = (rng.random((HEIGHT // 4, (WIDTH + STEP * (STRIP - 1)) // 4, 3)) * 255).astype(np.uint8)
    texture = np.kron(noise, np.ones((4, 4, 1), np.uint8))
    folder.mkdir()
    order = list(range(STRIP))
    random.Random(3).shuffle(order)
    place = {}
    for k, at in enumerate(order):
        name = f"p{k:02d}.png"
        Image.fromarray(texture[:, at * STEP:at * STEP + WIDTH]).save(folder / name)
        place[name] = at
    return place


def test_largest_scales_keeps_the_biggest_features_in_order():
    shapes = np.array([[1, 0, 0, 1], [3, 0, 0, 3], [0, -2, 2, 0], [0.5, 0, 0, 0.5]], np.float32)
    keypoints = np.hstack([np.zeros((4, 2), np.float32), shapes])
    assert steps.largest_scales(keypoints, 2).tolist() == [1, 2]
    assert steps.largest_scales(keypoints, 9).tolist() == [0, 1, 2, 3]
    scale_orientation = np.array([[0, 0, 2.0, 0.1], [0, 0, 5.0, 0.2], [0, 0, 1.0, 0.3]], np.float32)
    assert steps.largest_scales(scale_orientation, 1).tolist() == [1]


def test_select_pairs_keeps_best_partners_links_groups_and_rescues_lonely_photos():
    names = [f"n{k}" for k in range(8)]
    inliers = {("n0", "n1"): 300, ("n0", "n2"): 200, ("n0", "n3"): 20, ("n1", "n2"): 250,
               ("n4", "n5"): 300, ("n5", "n6"): 280, ("n4", "n6"): 30, ("n3", "n5"): 16}
    pairs = steps.select_pairs(names, inliers, neighbours=1)
    assert pairs == sorted(set(pairs)) and all(a < b for a, b in pairs)
    assert {("n0", "n1"), ("n1", "n2"), ("n4", "n5"), ("n5", "n6")} <= set(pairs)          # best partners
    assert ("n3", "n5") in set(pairs) and ("n0", "n3") in set(pairs)                       # the tree joins both groups
    assert ("n4", "n6") not in set(pairs) and ("n0", "n2") not in set(pairs)               # weak, redundant
    assert {(f"n{k}", "n7") for k in range(7)} <= set(pairs)                               # n7: no partner, all pairs
    assert {(names[k], names[k + 1]) for k in range(7)} <= set(pairs)                      # file-order neighbours


def test_overlap_matcher_matches_the_overlapping_pairs_of_shuffled_photos(tmp_path):
    place = strip_photos(tmp_path / "photos")
    names = sorted(place)
    db = str(tmp_path / "database.db")
    steps.extract(db, str(tmp_path / "photos"), [names], 320, lambda *a: None)
    seen: list[tuple[str, float]] = []
    verified = steps.match(db, "overlap", names, str(tmp_path), lambda step, f: seen.append((step, f)))
    fractions = [f for step, f in seen if step == "match"]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)
    assert steps.COARSE_SHARE in fractions                     # the coarse pass ends there, the full one goes on
    with pycolmap.Database.open(db) as database:
        name = {im.image_id: im.name for im in database.read_all_images()}
        ids, counts = database.read_two_view_geometry_num_inliers()
        matched = database.num_matched_image_pairs()
    pairs = {tuple(sorted(name[i] for i in pycolmap.pair_id_to_image_pair(p))) for p, c in zip(ids, counts) if c > 0}
    apart = {pair: abs(place[pair[0]] - place[pair[1]]) for pair in pairs}
    assert verified == matched and all(d <= 3 for d in apart.values())   # COLMAP counts failed verifications too
    assert {(a, b) for i, a in enumerate(names) for b in names[i + 1:] if abs(place[a] - place[b]) <= 2} <= pairs
    assert matched < STRIP * (STRIP - 1) // 2     # not every pair was matched in full


def test_one_call_reports_progress_from_colmaps_log_and_matches_every_pair(tmp_path, capfd, monkeypatch):
    monkeypatch.setattr(steps, "MIN_BLOCK_PAIRS", 1)  # the strip's few pairs in several blocks
    place = strip_photos(tmp_path / "photos")
    names = sorted(place)
    db = str(tmp_path / "database.db")
    steps.extract(db, str(tmp_path / "photos"), [names], 320, lambda *a: None)
    seen: list[float] = []
    pairs = steps.exhaustive_pairs(names)
    steps.match_pairs(db, pairs, tmp_path / "pairs.txt", lambda step, f: seen.append(f), span=(0.5, 0.9))
    assert seen[0] == 0.5 and seen[-1] == 0.9 and seen == sorted(seen) and all(0.5 <= f <= 0.9 for f in seen)
    assert len(set(seen)) >= 10  # a step per block of pairs, not just the start and the end
    with pycolmap.Database.open(db) as database:
        assert database.num_matched_image_pairs() == len(pairs)
    assert "Processing block" not in capfd.readouterr().err  # COLMAP's INFO lines stay out of stderr
    print("after", file=sys.stderr)
    assert "after" in capfd.readouterr().err  # and stderr is back
