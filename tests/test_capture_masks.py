"""Automatic masks on a ray-cast scene with known truth: a textured ball on a textured floor."""
from __future__ import annotations

import numpy as np
import pytest

from backend.capture.floor_parallax import plane_homography
from backend.capture.masks import ScaledView, _disc, _grabcut, hull_silhouette, hull_vote, make_masks

BALL = np.array([0.0, 0.0, 0.5])  # centre; radius 0.5, resting on the floor z = 0
RADIUS = 0.5
W, H = 160, 120


def camera(azimuth: float, elevation: float, distance: float = 3.2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """K, R, t (OpenCV) of a camera looking at the ball from a direction."""
    eye = BALL + distance * np.array([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth),
                                      np.sin(elevation)])
    fwd = (BALL - eye) / np.linalg.norm(BALL - eye)
    right = np.cross(fwd, [0, 0, 1.0])
    right /= np.linalg.norm(right)
    R = np.stack([right, np.cross(fwd, right), fwd])
    K = np.array([[150.0, 0, W / 2], [0, 150.0, H / 2], [0, 0, 1]])
    return K, R, -R @ eye


def render(K: np.ndarray, R: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ray-cast image (H, W, 3) uint8 and true mask: a blue-and-yellow striped ball on a brown checker floor."""
    v, u = np.mgrid[0:H, 0:W] + 0.5
    rays = np.stack([u, v, np.ones_like(u)], -1).reshape(-1, 3) @ np.linalg.inv(K).T @ R
    rays /= np.linalg.norm(rays, axis=1, keepdims=True)
    eye = -R.T @ t
    oc = eye - BALL
    b = rays @ oc
    disc = b * b - (oc @ oc - RADIUS ** 2)
    hit = disc > 0
    s_ball = np.where(hit, -b - np.sqrt(np.maximum(disc, 0)), np.inf)
    s_floor = np.where(rays[:, 2] < 0, -eye[2] / np.minimum(rays[:, 2], -1e-9), np.inf)
    ball = s_ball < s_floor
    rng = np.random.default_rng(0)
    depth = np.where(ball, s_ball, s_floor)
    sky = ~np.isfinite(depth)
    p = eye + rays * np.where(sky, 0.0, depth)[:, None]
    stripes = (np.floor((p[:, 2] + 0.3 * np.arctan2(p[:, 1], p[:, 0])) * 8) % 2)[:, None]
    img_ball = stripes * [0.95, 0.8, 0.1] + (1 - stripes) * [0.1, 0.25, 0.85]
    shade = 0.6 + 0.4 * np.clip((p - BALL) @ np.array([0.3, 0.2, 0.93]) / RADIUS, 0, 1)
    checker = ((np.floor(p[:, 0] * 4) + np.floor(p[:, 1] * 4)) % 2)[:, None]
    img_floor = checker * [0.55, 0.4, 0.3] + (1 - checker) * [0.4, 0.3, 0.22]
    img = np.where(ball[:, None], img_ball * shade[:, None], img_floor)
    img = np.where(sky[:, None], [0.2, 0.2, 0.25], img)
    img = np.clip(img + rng.normal(0, 0.02, img.shape), 0, 1)
    return (img.reshape(H, W, 3) * 255).astype(np.uint8), ball.reshape(H, W)


@pytest.fixture(scope="module")
def scene():
    """Twelve views around the ball, their true masks, sparse points on the ball and on the floor."""
    rng = np.random.default_rng(1)
    cams = [camera(a, e) for a, e in zip(np.linspace(0, 2 * np.pi, 12, endpoint=False), [0.35, 0.7] * 6)]
    renders = [render(*c) for c in cams]
    d = rng.normal(size=(300, 3))
    obj = BALL + RADIUS * d / np.linalg.norm(d, axis=1, keepdims=True)
    obj = obj[obj[:, 2] > 0.05]
    r, a = 2.0 * np.sqrt(rng.uniform(0.1, 1, 500)), rng.uniform(0, 2 * np.pi, 500)
    floor = np.stack([r * np.cos(a), r * np.sin(a), np.zeros(500)], 1)
    floor = floor[np.linalg.norm(floor[:, :2], axis=1) > 0.55]
    return cams, renders, obj, floor


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two masks."""
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_masks_match_the_truth_and_report_progress(scene) -> None:
    cams, renders, obj, floor = scene
    fractions = []
    masks = make_masks([r[0] for r in renders], [c[0] for c in cams], [c[1] for c in cams], [c[2] for c in cams],
                       np.array([-0.6, -0.6, -0.02]), np.array([0.6, 0.6, 1.1]), obj, floor,
                       progress=fractions.append)
    scores = [iou(m, r[1]) for m, r in zip(masks, renders)]
    assert all(m.shape == (H, W) and m.dtype == bool for m in masks)
    assert np.mean(scores) > 0.93 and min(scores) > 0.85, scores
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)


def test_hull_vote_tolerates_a_wrong_mask(scene) -> None:
    cams, renders, _, _ = scene
    lo, hi = np.array([-0.6, -0.6, -0.02]), np.array([0.6, 0.6, 1.1])
    views = [ScaledView(r[0], *c, side=W) for c, r in zip(cams, renders)]
    masks = [r[1].copy() for r in renders]
    masks[3][: H // 2] = False  # the top half of the ball missing in one view
    masks[7][:] = True  # and another view's mask all foreground
    centres, size = hull_vote(views, masks, lo, hi, resolution=48)
    for i in (3, 7):
        hull = hull_silhouette(views[i], centres, size)
        truth = renders[i][1]
        assert (hull & truth).sum() / truth.sum() > 0.97  # nothing of the ball lost
        assert (hull & ~truth).sum() / truth.sum() < 0.25  # and not much more than it


def test_poll_cancels(scene) -> None:
    cams, renders, obj, _ = scene
    calls = []

    def poll() -> None:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        make_masks([r[0] for r in renders], [c[0] for c in cams], [c[1] for c in cams], [c[2] for c in cams],
                   np.array([-0.6, -0.6, -0.02]), np.array([0.6, 0.6, 1.1]), obj, poll=poll)
    assert len(calls) == 3


ARCH = [(np.array([-0.45, -0.15, 0.0]), np.array([-0.25, 0.15, 0.45])),  # two legs standing on the floor z = 0
        (np.array([0.25, -0.15, 0.0]), np.array([0.45, 0.15, 0.45])),
        (np.array([-0.45, -0.15, 0.45]), np.array([0.45, 0.15, 0.6]))]  # and the lintel across them


def texture(p: np.ndarray) -> np.ndarray:
    """One busy colour texture for the arch and the floor alike (colour statistics cannot tell them apart)."""
    rng = np.random.default_rng(5)
    out = np.full((len(p), 3), 0.5)
    for _ in range(12):
        w = rng.normal(size=3) * 30
        out += 0.06 * np.sin(p @ w + rng.uniform(0, 6.3))[:, None] * rng.uniform(0.3, 1.0, 3)
    return out


def render_arch(K: np.ndarray, R: np.ndarray, t: np.ndarray, size: tuple[int, int],
                boxes: list[tuple[np.ndarray, np.ndarray]] = ARCH,
                tint: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> tuple[np.ndarray, np.ndarray]:
    """Ray-cast image and true mask of textured boxes (the arch) on the floor, textured alike; the boxes'
    colours multiplied by tint."""
    w, h = size
    v, u = np.mgrid[0:h, 0:w] + 0.5
    rays = np.stack([u, v, np.ones_like(u)], -1).reshape(-1, 3) @ np.linalg.inv(K).T @ R
    eye = -R.T @ t
    s_arch = np.full(len(rays), np.inf)
    for lo, hi in boxes:
        with np.errstate(divide="ignore", invalid="ignore"):
            a, b = (lo - eye) / rays, (hi - eye) / rays
        near, far = np.nanmax(np.minimum(a, b), axis=1), np.nanmin(np.maximum(a, b), axis=1)
        s_arch = np.minimum(s_arch, np.where((near < far) & (near > 0), near, np.inf))
    s_floor = np.where(rays[:, 2] < 0, -eye[2] / np.minimum(rays[:, 2], -1e-9), np.inf)
    arch = s_arch < s_floor
    depth = np.minimum(s_arch, s_floor)
    p = eye + rays * np.where(np.isfinite(depth), depth, 0.0)[:, None]
    img = np.where(np.isfinite(depth)[:, None], texture(p) * np.where(arch[:, None], tint, 1.0), [0.6, 0.65, 0.7])
    img = np.clip(img + np.random.default_rng(0).normal(0, 0.01, img.shape), 0, 1)
    return (img.reshape(h, w, 3) * 255).astype(np.uint8), arch.reshape(h, w)


def arch_points(rng: np.random.Generator, count: int,
                boxes: list[tuple[np.ndarray, np.ndarray]] = ARCH) -> np.ndarray:
    """Points on the faces of the boxes (sparse points of the object, seen or hidden)."""
    out = []
    for lo, hi in boxes:
        p = rng.uniform(lo, hi, (count, 3))
        axis = rng.integers(0, 3, count)
        p[np.arange(count), axis] = np.where(rng.random(count) < 0.5, lo[axis], hi[axis])
        out.append(p)
    return np.vstack(out)


def ring_cameras(size: tuple[int, int], elevations: tuple[float, float]) -> list[tuple]:
    """16 cameras (K, R, t) around the origin 2.2 away, alternating between two elevations, for size (w, h)."""
    K = np.array([[190.0, 0, size[0] / 2], [0, 190.0, size[1] / 2], [0, 0, 1]])
    return [(K, *camera(az, el, 2.2)[1:]) for az, el in zip(np.linspace(0, 2 * np.pi, 16, endpoint=False),
                                                             list(elevations) * 8)]


def test_floor_homography_maps_floor_points_between_views() -> None:
    (K1, R1, t1), (K2, R2, t2) = camera(0.3, 0.5), camera(1.1, 0.8)
    X = np.array([[0.7, -0.2, 0.0], [-1.0, 0.4, 0.0], [0.3, 1.2, 0.0]])
    u1, u2 = ((X @ R.T + t) @ K.T for K, R, t in ((K1, R1, t1), (K2, R2, t2)))
    Hm = plane_homography(K1, R1, t1, K2, R2, t2, np.array([0.0, 0.0, 1.0]), 0.0)
    mapped = np.c_[u1[:, :2] / u1[:, 2:], np.ones(3)] @ Hm.T
    np.testing.assert_allclose(mapped[:, :2] / mapped[:, 2:], u2[:, :2] / u2[:, 2:], atol=1e-6)
    raised = plane_homography(K1, R1, t1, K2, R2, t2, np.array([0.0, 0.0, 1.0]), 0.3)
    assert not np.allclose(raised, Hm)


def test_floor_parallax_opens_the_arch_over_a_floor_of_the_same_texture() -> None:
    size = (200, 150)
    rng = np.random.default_rng(2)
    cams = ring_cameras(size, (0.3, 0.6))
    renders = [render_arch(*c, size) for c in cams]
    r, a = rng.uniform(0.7, 2.0, 400), rng.uniform(0, 2 * np.pi, 400)
    floor_pts = np.stack([r * np.cos(a), r * np.sin(a), np.zeros(400)], 1)
    args = ([r[0] for r in renders], [c[0] for c in cams], [c[1] for c in cams], [c[2] for c in cams],
            np.array([-0.6, -0.3, -0.02]), np.array([0.6, 0.3, 0.75]), arch_points(rng, 150), floor_pts)
    plain = [iou(m, r[1]) for m, r in zip(make_masks(*args), renders)]
    cued = [iou(m, r[1]) for m, r in zip(make_masks(*args, floor=(np.array([0.0, 0.0, 1.0]), 0.0)), renders)]
    assert np.mean(cued) > 0.85 and np.mean(cued) > np.mean(plain) + 0.05, (np.mean(plain), np.mean(cued))


TABLE = [(np.array([-0.08, -0.08, 0.0]), np.array([0.08, 0.08, 0.4])),  # a thin post standing on the floor z = 0
         (np.array([-0.45, -0.3, 0.4]), np.array([0.45, 0.3, 0.6]))]  # and a top on it


def test_a_stand_without_points_of_its_own_stays_in_the_masks() -> None:
    size = (200, 150)
    rng = np.random.default_rng(3)
    cams = ring_cameras(size, (0.25, 0.5))
    renders = [render_arch(*c, size, TABLE, (0.7, 1.3, 0.8)) for c in cams]  # greener than the floor
    top_only = arch_points(rng, 300, TABLE[1:])  # the object's points: on the top only,
    r, a = rng.uniform(0.7, 2.0, 400), rng.uniform(0, 2 * np.pi, 400)
    floor_pts = np.stack([r * np.cos(a), r * np.sin(a), np.zeros(400)], 1)
    floor_pts = np.vstack([floor_pts, arch_points(rng, 40, TABLE[:1])])  # the post's counted as background
    masks = make_masks([r[0] for r in renders], [c[0] for c in cams], [c[1] for c in cams], [c[2] for c in cams],
                       np.array([-0.6, -0.4, -0.02]), np.array([0.6, 0.4, 0.75]), top_only, floor_pts,
                       floor=(np.array([0.0, 0.0, 1.0]), 0.0))
    post = [render_arch(*c, size, TABLE[:1])[1] & r[1] for c, r in zip(cams, renders)]
    kept = [(m & q).sum() / max(q.sum(), 1) for m, q in zip(masks, post)]
    scores = [iou(m, r[1]) for m, r in zip(masks, renders)]
    assert np.mean(kept) > 0.9 and np.mean(scores) > 0.95, (np.mean(kept), np.mean(scores))


BAR = [(np.array([-0.2, -0.2, 0.0]), np.array([0.2, 0.2, 0.5])),  # a body standing on the floor z = 0
       (np.array([0.2, -0.03, 0.28]), np.array([0.6, 0.03, 0.34]))]  # and a thin bar sticking out of it


def hidden(eye: np.ndarray, points: np.ndarray, boxes: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """True for the points that a box hides from the camera at eye."""
    d = points - eye
    out = np.zeros(len(points), dtype=bool)
    for lo, hi in boxes:
        with np.errstate(divide="ignore", invalid="ignore"):
            a, b = (lo - eye) / d, (hi - eye) / d
        near, far = np.nanmax(np.minimum(a, b), axis=1), np.nanmin(np.maximum(a, b), axis=1)
        out |= (near < far) & (near > 0) & (near < 1 - 1e-6)
    return out


def test_floor_points_hidden_behind_a_thin_part_do_not_cut_it_away() -> None:
    size = (200, 150)
    rng = np.random.default_rng(4)
    cams = ring_cameras(size, (0.35, 0.6))
    renders = [render_arch(*c, size, BAR, (0.7, 1.3, 0.8)) for c in cams]
    body = arch_points(rng, 300, BAR[:1])  # the object's points: on the body only, none on the bar
    r, a = np.sqrt(rng.uniform(0.05, 4.0, 3000)), rng.uniform(0, 2 * np.pi, 3000)
    floor_pts = np.stack([r * np.cos(a), r * np.sin(a), np.zeros(3000)], 1)
    floor_pts = floor_pts[~np.all(np.abs(floor_pts[:, :2]) < 0.2, axis=1)]
    tracks = [~hidden(-R.T @ t, floor_pts, BAR) for _, R, t in cams]  # each view observes what it can see
    args = ([r[0] for r in renders], [c[0] for c in cams], [c[1] for c in cams], [c[2] for c in cams],
            np.array([-0.7, -0.4, -0.02]), np.array([0.7, 0.4, 0.6]), body, floor_pts)
    bar = [render_arch(*c, size, BAR[1:])[1] & r[1] for c, r in zip(cams, renders)]

    def kept(masks: list[np.ndarray]) -> float:
        return float(np.mean([(m & q).sum() / max(q.sum(), 1) for m, q in zip(masks, bar)]))

    every = make_masks(*args, floor=(np.array([0.0, 0.0, 1.0]), 0.0))
    own = make_masks(*args, floor=(np.array([0.0, 0.0, 1.0]), 0.0), background_visible=tracks)
    scores = [iou(m, r[1]) for m, r in zip(own, renders)]
    assert kept(own) > 0.75 and kept(own) > kept(every) + 0.15 and np.mean(scores) > 0.9, \
        (kept(every), kept(own), np.mean(scores))


def test_visible_points_follow_the_tracks() -> None:
    from backend.capture.seed_visibility import visible_points

    vis = visible_points(3, [np.array([0, 2]), np.array([1]), np.array([], dtype=int)], 3)
    assert [v.tolist() for v in vis] == [[True, False, False], [False, True, False], [True, False, False]]
    assert visible_points(3, None, 3) is None


def test_see_through_finds_the_floor_under_the_arch_and_not_on_it() -> None:
    from backend.capture.floor_parallax import neighbours, see_through

    size = (200, 150)
    cams = ring_cameras(size, (0.3, 0.6))
    renders = [render_arch(*c, size) for c in cams]  # the arch and the floor share one texture

    def under_legs(X: np.ndarray) -> np.ndarray:
        return (np.abs(X[:, 1]) < 0.17) & (np.abs(X[:, 0]) > 0.23) & (np.abs(X[:, 0]) < 0.47)

    far = neighbours(np.array([-R.T @ t for _, R, t in cams]), 12)
    under_found, on_object = [], []
    for i in (3, 4, 12):  # looking through the arch: at a slant, from the front, from behind
        K, R, t = cams[i]
        shows = see_through([r[0] for r in renders], [c[0] for c in cams], [c[1] for c in cams],
                            [c[2] for c in cams], i, far[i], np.array([0.0, 0.0, 1.0]), 0.0, under_legs)
        v, u = np.mgrid[0:size[1], 0:size[0]] + 0.5
        rays = np.stack([u, v, np.ones_like(u)], -1) @ np.linalg.inv(K).T @ R
        eye = -R.T @ t
        X = eye + rays * (-eye[2] / np.minimum(rays[..., 2:], -1e-9))
        opening = ~renders[i][1] & (np.abs(X[..., 0]) < 0.2) & (np.abs(X[..., 1]) < 0.12)  # floor under the lintel
        under_found.append(shows[opening].mean())
        on_object.append(shows[renders[i][1]].mean())
    assert min(under_found) > 0.5 and max(on_object) < 0.02, (under_found, on_object)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grabcut_on_an_upscaled_crop_keeps_a_thin_arm(seed: int) -> None:
    """A 3-px arm of a disc in noise GrabCut's smoothness cuts away at the photo's size stays on the crop
    upscaled (its shrinking bias); the disc itself is found either way."""
    import cv2

    rng = np.random.default_rng(seed)
    size = 120
    disc = cv2.circle(np.zeros((size, size), np.uint8), (60, 60), 22, 1, -1).astype(bool)
    arm = cv2.line(np.zeros((size, size), np.uint8), (80, 60), (108, 40), 1, 2).astype(bool) & ~disc
    obj = disc | arm
    image = rng.normal(110, 25, (size, size, 3))
    image[obj] = rng.normal(170, 25, (int(obj.sum()), 3))
    image = np.clip(image, 0, 255).astype(np.uint8)
    labels = np.full((size, size), cv2.GC_BGD, np.uint8)
    labels[cv2.dilate(obj.astype(np.uint8), _disc(6)).astype(bool)] = cv2.GC_PR_BGD
    labels[cv2.dilate(obj.astype(np.uint8), _disc(2)).astype(bool)] = cv2.GC_PR_FGD
    labels[cv2.erode(obj.astype(np.uint8), _disc(6)).astype(bool)] = cv2.GC_FGD
    native = _grabcut(image, labels, 3)
    upscaled = _grabcut(image, labels, 3, reach=240)
    assert (native & arm).sum() < 0.2 * arm.sum()
    assert (upscaled & arm).sum() > 0.9 * arm.sum()
    for found in (native, upscaled):
        assert (found & disc).sum() > 0.97 * disc.sum()
    assert (upscaled & obj).sum() / (upscaled | obj).sum() > 0.98
