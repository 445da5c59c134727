"""Photo checks before and after structure from motion, on synthetic images written to a temporary folder."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from backend.capture.photo_checks import (blurred_indices, check_photos, check_registration, duplicate_of,
                                          laplacian_variance, list_photos, thumbnail)
from backend.runtime.errors import JobError


def texture(seed: int, h: int = 240, w: int = 320) -> np.ndarray:
    """A sharp random texture (grey 0..255 uint8): blobs of several sizes, like a textured object."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w), np.float32)
    for cell in (4, 16, 48):
        small = rng.random((h // cell + 1, w // cell + 1)).astype(np.float32)
        img += cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
    return np.clip(img / 3 * 255, 0, 255).astype(np.uint8)


def write(folder: Path, name: str, gray: np.ndarray, exif: Image.Exif | None = None) -> Path:
    """Save a grey image as RGB under folder/name (format from the suffix)."""
    path = folder / name
    Image.fromarray(np.stack([gray] * 3, axis=-1)).save(path, **({"exif": exif} if exif is not None else {}))
    return path


def test_sharpness_falls_with_blur_and_outliers_are_found():
    sharp = texture(0).astype(np.float32) / 255
    blurred = cv2.GaussianBlur(sharp, (0, 0), 3.0)
    assert laplacian_variance(blurred) < 0.1 * laplacian_variance(sharp)
    scores = np.array([1.0, 0.9, 1.1, 0.05, 0.95, 0.5])
    assert blurred_indices(scores) == [3]
    assert blurred_indices(scores[:3]) == []          # too few to judge


def test_duplicates_exact_and_near_but_not_other_views():
    a = texture(1).astype(np.float32) / 255
    brighter = np.clip(a * 1.1 + 0.02, 0, 1)           # same view, other exposure
    shifted = np.roll(a, 12, axis=1)                   # the camera moved
    other = texture(2).astype(np.float32) / 255
    thumbs = [thumbnail(x) for x in (a, a, brighter, shifted, other)]
    hashes = ["h0", "h0", "h2", "h3", "h4"]
    assert duplicate_of(hashes, thumbs) == {1: (0, "exact"), 2: (0, "near")}


def test_check_photos_leaves_out_and_names_problems(tmp_path):
    for k in range(5):
        write(tmp_path, f"view{k}.png", texture(10 + k))
    write(tmp_path, "view5.png", cv2.GaussianBlur(texture(15), (0, 0), 4.0))
    write(tmp_path, "view6.png", texture(10))                       # exact copy of view0
    (tmp_path / "view7.jpg").write_bytes(b"not a photo")
    write(tmp_path, "view4.tif", texture(40))                       # a different photo with view4's stem
    (tmp_path / "notes.txt").write_text("ignored")
    check = check_photos(tmp_path)
    assert [p.name for p in check.usable] == [f"view{k}.png" for k in range(5)]
    assert check.left_out["view5.png"].startswith("blurred")
    assert check.left_out["view6.png"] == "exact duplicate of view0.png"
    assert check.left_out["view7.jpg"].startswith("unreadable")
    assert check.left_out["view4.tif"].startswith("same name as view4.png")
    text = " ".join(check.warnings)
    for name in ("view5.png", "view6.png", "view7.jpg", "view4.tif"):
        assert name in text
    assert len(check.groups) == 1 and len(check.groups[0]) == 5


def test_mixed_sizes_and_bodies_are_separate_cameras_with_a_warning(tmp_path):
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Maker", "Body One"
    exif.get_ifd(0x8769)[0x920A] = IFDRational(50, 10)
    for k in range(3):
        write(tmp_path, f"a{k}.jpg", texture(20 + k), exif)
        write(tmp_path, f"b{k}.png", texture(30 + k, 300, 400))
    check = check_photos(tmp_path)
    assert not check.left_out
    assert sorted(sorted(p.name for p in g) for g in check.groups) == [["a0.jpg", "a1.jpg", "a2.jpg"],
                                                                        ["b0.png", "b1.png", "b2.png"]]
    assert any("2 cameras" in w and "Maker Body One 320x240 5 mm" in w and "no EXIF 400x300" in w
               for w in check.warnings)


def test_too_few_photos_names_the_folder(tmp_path):
    write(tmp_path, "only.png", texture(3))
    write(tmp_path, "two.png", texture(4))
    with pytest.raises(JobError) as err:
        check_photos(tmp_path)
    assert str(tmp_path) in err.value.message and "at least 3" in err.value.message
    assert "photos" in err.value.hint


def test_too_few_after_leaving_out_duplicates(tmp_path):
    for k in range(3):
        write(tmp_path, f"same{k}.png", texture(5))
    with pytest.raises(JobError) as err:
        check_photos(tmp_path)
    assert "1 usable photo" in err.value.message and "same2.png" in err.value.message


def test_listing_ignores_hidden_and_other_files(tmp_path):
    for name in ("b.JPG", "a.png", ".hidden.png", "c.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in list_photos(tmp_path)] == ["a.png", "b.JPG"]


def test_registration_check():
    names = ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]
    assert check_registration(names, names, Path("p")) == []
    warn = check_registration(names[:3], names, Path("p"))
    assert len(warn) == 1 and "d.jpg" in warn[0]
    with pytest.raises(JobError) as err:
        check_registration(["a.jpg", "c.jpg"], names, Path("photos"))
    assert "a.jpg, c.jpg" in err.value.message and "2 of 4" in err.value.message
    assert "overlap" in err.value.hint and "texture" in err.value.hint
