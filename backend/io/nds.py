"""NDS (neural deferred shading) layout: views/<stem>.png + <stem>_k.txt, _r.txt, _t.txt, bbox.txt."""
from __future__ import annotations

from pathlib import Path

from backend.io.common import load_numbers, mask_from_alpha
from backend.io.images import read_image, read_mask
from backend.io.views import DEFAULT_SETTINGS, Scene, View
from backend.runtime.errors import JobError


def views_dir(path: Path) -> Path:
    """The folder holding the *_k.txt files: `path/views` or `path` itself."""
    path = Path(path)
    if (path / "views").is_dir():
        return path / "views"
    return path


def load_nds(path: Path) -> Scene:
    """Read an NDS job (its root or its views/ folder); masks come from the images' alpha."""
    vdir = views_dir(path)
    k_files = sorted(vdir.glob("*_k.txt"))
    if not k_files:
        raise JobError(f"no <stem>_k.txt files in {vdir}", "the NDS layout is views/<stem>.png with "
                       "<stem>_k.txt, <stem>_r.txt, <stem>_t.txt beside each image")
    views = []
    for k_file in k_files:
        stem = k_file.name[: -len("_k.txt")]
        image_path = next((p for p in (vdir / f"{stem}.png", vdir / f"{stem}.jpg") if p.is_file()), vdir / f"{stem}.png")
        K = load_numbers(k_file, 9, stem).reshape(3, 3)
        R = load_numbers(vdir / f"{stem}_r.txt", 9, stem).reshape(3, 3)
        t = load_numbers(vdir / f"{stem}_t.txt", 3, stem)
        rgb, alpha = read_image(image_path, view=stem)
        mask_file = vdir / f"{stem}_mask.png"
        if mask_file.is_file():
            mask = read_mask(mask_file, view=stem)
        else:
            mask = mask_from_alpha(alpha)
        views.append(View(stem, rgb, mask, K, R, t))
    bbox = None
    for cand in (vdir.parent / "bbox.txt", vdir / "bbox.txt"):
        if cand.is_file():
            b = load_numbers(cand, 6).reshape(2, 3)
            bbox = (b[0], b[1])
            break
    return Scene(views=views, bbox=bbox, settings=dict(DEFAULT_SETTINGS))
