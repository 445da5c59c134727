"""Deterministic high-detail textures (numpy + OpenCV drawing) for photo-like captures.

Structure from motion needs photographic detail: soft procedural noise gives too few stable corners
(2-3 of 36 photos registered), so these images carry multi-scale noise and thousands of sharp,
high-contrast shapes of many sizes and colours, each texture with its own palette.
"""
from __future__ import annotations

import colorsys
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Palette:
    """Colours a texture draws from: hue range (0..1, may wrap past 1), saturation and value ranges."""
    hue: tuple[float, float]
    saturation: tuple[float, float]
    value: tuple[float, float]
    grey_share: float = 0.15


OBJECT_PALETTE = Palette(hue=(-0.05, 0.45), saturation=(0.45, 0.95), value=(0.35, 0.95), grey_share=0.12)
FLOOR_PALETTE = Palette(hue=(0.05, 0.14), saturation=(0.15, 0.6), value=(0.2, 0.8), grey_share=0.35)
ROOM_PALETTE = Palette(hue=(0.5, 0.75), saturation=(0.05, 0.35), value=(0.3, 0.85), grey_share=0.4)


def palette_colours(palette: Palette, n: int, rng: np.random.Generator) -> np.ndarray:
    """n RGB colours (uint8, (n, 3)) from the palette; a share of them neutral greys."""
    h = rng.uniform(*palette.hue, n) % 1.0
    s = rng.uniform(*palette.saturation, n)
    v = rng.uniform(*palette.value, n)
    s[rng.random(n) < palette.grey_share] = 0.0
    rgb = np.array([colorsys.hsv_to_rgb(a, b, c) for a, b, c in zip(h, s, v)])
    return np.round(rgb * 255).astype(np.uint8)


def multiscale_noise(height: int, width: int, rng: np.random.Generator, octaves: int = 7,
                     persistence: float = 0.6) -> np.ndarray:
    """Sum of bilinearly upsampled random grids from 4 cells to fine grain, scaled to [0, 1] (float32)."""
    out = np.zeros((height, width), np.float32)
    amp, total = 1.0, 0.0
    for k in range(octaves):
        cells = 4 * 2 ** k
        grid = rng.random((max(2, cells * height // width), cells)).astype(np.float32)
        out += amp * cv2.resize(grid, (width, height), interpolation=cv2.INTER_LINEAR)
        total += amp
        amp *= persistence
    out /= total
    lo, hi = np.percentile(out, (1, 99))
    return np.clip((out - lo) / max(hi - lo, 1e-6), 0, 1)


def draw_shapes(img: np.ndarray, n: int, sizes: tuple[float, float], palette: Palette,
                rng: np.random.Generator) -> None:
    """Draw n random filled circles, ellipses, rectangles, polygons and lines in place (sizes in pixels)."""
    h, w = img.shape[:2]
    colours = palette_colours(palette, n, rng)
    size = np.exp(rng.uniform(np.log(sizes[0]), np.log(sizes[1]), n))
    centre = np.stack([rng.uniform(0, w, n), rng.uniform(0, h, n)], axis=1)
    kind = rng.integers(0, 5, n)
    for i in np.argsort(-size):
        c = tuple(int(x) for x in colours[i])
        cx, cy = int(centre[i, 0]), int(centre[i, 1])
        r = max(1, int(size[i] / 2))
        if kind[i] == 0:
            cv2.circle(img, (cx, cy), r, c, -1, cv2.LINE_AA)
        elif kind[i] == 1:
            axes = (r, max(1, int(r * rng.uniform(0.25, 1.0))))
            cv2.ellipse(img, (cx, cy), axes, float(rng.uniform(0, 180)), 0, 360, c, -1, cv2.LINE_AA)
        elif kind[i] == 2:
            half = np.array([r, max(1, int(r * rng.uniform(0.3, 1.0)))])
            box = cv2.boxPoints(((cx, cy), tuple(2.0 * half), float(rng.uniform(0, 90))))
            cv2.fillPoly(img, [np.round(box).astype(np.int32)], c, cv2.LINE_AA)
        elif kind[i] == 3:
            k = int(rng.integers(3, 7))
            ang = np.sort(rng.uniform(0, 2 * np.pi, k))
            rad = r * rng.uniform(0.4, 1.0, k)
            pts = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], axis=1)
            cv2.fillPoly(img, [np.round(pts).astype(np.int32)], c, cv2.LINE_AA)
        else:
            ang = rng.uniform(0, np.pi)
            d = np.array([np.cos(ang), np.sin(ang)]) * r * 1.5
            p0 = (int(cx - d[0]), int(cy - d[1]))
            p1 = (int(cx + d[0]), int(cy + d[1]))
            cv2.line(img, p0, p1, c, max(1, int(r * rng.uniform(0.08, 0.3))), cv2.LINE_AA)


def detail_texture(size: int | tuple[int, int], seed: int, palette: Palette,
                   feature_px: tuple[float, float] = (6.0, 160.0), shapes_per_megapixel: int = 9000) -> np.ndarray:
    """An (H, W, 3) uint8 texture (size N or (H, W)): palette-tinted multi-scale noise under many sharp shapes.

    `feature_px` bounds the shapes' sizes in texels; choose it so they land at 3-40 photo pixels.
    """
    h, w = (size, size) if isinstance(size, int) else size
    rng = np.random.default_rng(seed)
    base_cols = palette_colours(palette, 2, rng).astype(np.float32)
    t = multiscale_noise(h, w, rng)[..., None]
    img = (base_cols[0] * (1 - t) + base_cols[1] * t).astype(np.uint8)
    n = max(50, int(shapes_per_megapixel * h * w / 1e6))
    draw_shapes(img, n, feature_px, palette, rng)
    grain = (multiscale_noise(h, w, rng, octaves=3, persistence=0.5) - 0.5)
    fine = cv2.resize(rng.random((h // 2, w // 2)).astype(np.float32), (w, h)) - 0.5
    shade = 1.0 + 0.25 * grain + 0.12 * fine
    return np.clip(img.astype(np.float32) * shade[..., None], 0, 255).astype(np.uint8)


def room_environment(width: int, seed: int) -> np.ndarray:
    """An equirectangular (width/2, width, 3) uint8 room: bright ceiling, detailed walls, windows, dark floor.

    Row 0 is straight up. Gives the background structure and most of the scene's soft light.
    """
    h = width // 2
    rng = np.random.default_rng(seed)
    img = np.empty((h, width, 3), np.float32)
    elev = 90.0 - (np.arange(h) + 0.5) / h * 180.0
    ceiling = np.array([235, 232, 225], np.float32)
    wall = palette_colours(ROOM_PALETTE, 1, rng)[0].astype(np.float32)
    ground = np.array([70, 60, 52], np.float32)
    for row, e in enumerate(elev):
        if e > 35:
            img[row] = ceiling
        elif e > -45:
            img[row] = wall
        else:
            img[row] = ground
    band = slice(int(h * (90 - 35) / 180), int(h * (90 + 45) / 180))
    tiles = detail_texture((band.stop - band.start, width), seed + 1, ROOM_PALETTE, feature_px=(3.0, 60.0),
                           shapes_per_megapixel=4000).astype(np.float32)
    img[band] = 0.45 * img[band] + 0.55 * tiles
    for _ in range(int(rng.integers(2, 4))):
        cx, cw = rng.uniform(0, width), rng.uniform(0.05, 0.1) * width
        top, bottom = int(h * rng.uniform(0.2, 0.28)), int(h * rng.uniform(0.42, 0.48))
        x0, x1 = int(cx - cw / 2), int(cx + cw / 2)
        img[top:bottom, max(0, x0):min(width, x1)] = (250, 250, 245)
    noise = multiscale_noise(h, width, rng, octaves=6)
    img *= (0.85 + 0.3 * noise)[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)
