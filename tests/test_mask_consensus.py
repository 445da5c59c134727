"""Masks as evidence: enclosed holes that only one view carves are repaired for the hull, true holes kept."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from backend.geometry.mask_consensus import (carved_by_one, contradicted_masks, hole_is_contradicted, mask_holes,
                                             ray_depth, repair_region)
from backend.geometry.visual_hull import silhouettes, visual_hull
from backend.mesh.metrics import genus
from mask_scenes import look_at, sphere_sdf, torus_sdf, views_of
from scenegen.damage import project, punch_mask

BOX = (np.full(3, -1.05), np.full(3, 1.05))


def punched(views: list, indices: list[int], points: list[np.ndarray], radius: float = 4.0) -> list:
    """Copies of the views with a disk punched into the masks of `indices` where each point projects."""
    out = [SimpleNamespace(**vars(v)) for v in views]
    for i in indices:
        for p in points:
            out[i].mask = punch_mask(out[i].mask, project(out[i].K, out[i].R, out[i].t, p), radius)
    return out


def test_mask_holes_are_enclosed_background_only() -> None:
    mask = np.zeros((20, 20), dtype=bool)
    mask[2:18, 2:18] = True
    mask[5:8, 5:8] = False  # enclosed
    mask[12:15, 10:13] = False  # enclosed
    mask[9:11, 14:20] = False  # a notch reaching the border through the outline: not a hole
    holes, n = mask_holes(mask)
    assert n == 2
    assert set(np.unique(holes)) == {0, 1, 2}
    assert (holes > 0).sum() == 9 + 9
    assert not holes[9:11, 14:].any()


def test_mask_holes_of_a_solid_mask_is_empty() -> None:
    mask = np.zeros((10, 10), dtype=bool)
    mask[3:7, 3:7] = True
    holes, n = mask_holes(mask)
    assert n == 0 and not holes.any()


def test_repair_region_fills_only_chosen_holes() -> None:
    holes = np.array([[0, 1, 1], [2, 0, 3], [0, 0, 3]], dtype=np.int32)
    assert repair_region(holes, [1, 3]).sum() == 4
    assert not repair_region(holes, []).any()


def test_hole_is_contradicted_needs_half_its_pixels_deep_enough() -> None:
    assert hole_is_contradicted(np.array([4, 5, 0, 0]))
    assert not hole_is_contradicted(np.array([4, 3, 0, 0]))
    assert not hole_is_contradicted(np.array([], dtype=int))
    assert hole_is_contradicted(np.array([2, 2]), min_steps=2)


def test_carved_by_one_names_the_lone_carver() -> None:
    views = views_of(sphere_sdf(0.6), n=4, size=48)
    views[1].mask = punch_mask(views[1].mask, project(views[1].K, views[1].R, views[1].t, np.zeros(3)), 6)
    who = carved_by_one(silhouettes(views, 0), *BOX, 33)
    assert who[16, 16, 16] == 1, "the centre is inside every mask but the punched one"
    assert who[0, 0, 0] == -1, "a corner outside the sphere is carved by several views"
    assert set(np.unique(who)) <= {-1, 0, 1, 2, 3}


def test_ray_depth_counts_lone_steps_along_the_ray() -> None:
    res = 41
    lone = np.zeros((res,) * 3, dtype=bool)
    lone[:, :, 18:23] = True  # a slab 5 steps thick across z
    r, t = look_at(np.array([0.0, 0.001, 3.0]))
    sil = SimpleNamespace(K=np.array([[50.0, 0, 32], [0, 50.0, 32], [0, 0, 1]]), R=r, t=t, center=-r.T @ t)
    depth = ray_depth(sil, lone, np.full(3, -1.0), np.full(3, 1.0), np.array([[31, 31], [20, 20]]))
    assert 4 <= depth[0] <= 6
    assert depth[1] >= depth[0]  # an oblique ray crosses the slab on a longer path


def test_punched_sphere_mask_is_repaired() -> None:
    views = views_of(sphere_sdf(0.6), n=16, size=64)
    bad = punched(views, [5], [np.zeros(3)], radius=5.0)
    holes = ~bad[5].mask & views[5].mask
    repairs = contradicted_masks(bad, *BOX)
    assert [i for i, r in enumerate(repairs) if r is not None] == [5]
    assert np.array_equal(repairs[5], holes)
    assert genus(*visual_hull(bad, BOX, res=96)) == 1, "the punched hole carves a tunnel through the sphere"
    assert genus(*visual_hull(bad, BOX, res=96, repairs=repairs)) == 0


def test_clean_torus_keeps_its_hole() -> None:
    views = views_of(torus_sdf(), n=16, size=64)
    repairs = contradicted_masks(views, *BOX)
    hole_px = [int((mask_holes(v.mask)[0] > 0).sum()) for v in views]
    widest = [i for i, n in enumerate(hole_px) if n >= 70]
    assert len(widest) >= 6 and all(repairs[i] is None for i in widest)
    assert genus(*visual_hull(views, BOX, res=128, repairs=repairs)) == 1


def test_strict_hull_has_no_spurious_handle() -> None:
    views = views_of(torus_sdf(), n=16, size=64)
    assert genus(*visual_hull(views, BOX, res=128)) == 1
    tolerant = visual_hull(views, BOX, res=128, vote_tolerance=1 / 16)
    assert genus(*tolerant) > 1, "a voxel that one view alone sees through the hole survives a 1-view tolerance"
    assert genus(*tolerant) == genus(*visual_hull(views, BOX, res=128, tolerance=1))


def test_punched_torus_masks_are_repaired_to_genus_one() -> None:
    views = views_of(torus_sdf(), n=16, size=64)
    bad = punched(views, [3, 11], [np.array([0.6, 0.0, 0.0]), np.array([-0.6, 0.0, 0.0])])
    assert genus(*visual_hull(bad, BOX, res=128)) > 2
    repairs = contradicted_masks(bad, *BOX)
    for i in (3, 11):
        assert repairs[i] is not None and repairs[i][views[i].mask & ~bad[i].mask].all()
    assert genus(*visual_hull(bad, BOX, res=128, repairs=repairs)) == 1


def test_notch_at_the_outline_is_not_repaired() -> None:
    views = views_of(sphere_sdf(0.6), n=16, size=64)
    edge = np.array([0.0, 0.0, 0.6])
    bad = punched(views, [5], [edge], radius=5.0)
    assert mask_holes(bad[5].mask)[1] == 0
    assert contradicted_masks(bad, *BOX)[5] is None
