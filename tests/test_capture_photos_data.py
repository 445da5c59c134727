"""Structure from motion on the real kermit photos (development machines only: skipped where
/work/data/kermit is absent, as in CI). The photos get an EXIF focal length 8x too long, as resized photos
whose EXIF still describes the original do: mapping with that prior fails and the run must recover."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from backend.capture.sfm import run_sfm

KERMIT = Path("/work/data/kermit")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not KERMIT.is_dir(), reason="needs the kermit photos in /work/data/kermit")]


def copy_with_focal(src: Path, dst: Path, focal_px: float) -> None:
    """Copies of the photos whose EXIF says: 10 mm lens, focal plane resolution giving focal_px pixels."""
    dst.mkdir()
    for path in sorted(src.glob("*.jpg")):
        exif = Image.Exif()
        exif[0x010F], exif[0x0110] = "Test", "Resized Camera"
        ifd = exif.get_ifd(0x8769)
        ifd[0x920A] = IFDRational(10, 1)
        per_inch = round(focal_px / 10 * 25.4)
        ifd[0xA20E] = ifd[0xA20F] = IFDRational(per_inch, 1)
        ifd[0xA210] = 2
        with Image.open(path) as im:
            im.save(dst / path.name, exif=exif, quality=95)


def test_wrong_exif_focal_is_survived(tmp_path):
    copy_with_focal(KERMIT, tmp_path / "photos", 8 * 680.0)      # the true focal is about 690 px
    result = run_sfm(tmp_path / "photos", tmp_path / "work", max_image_size=640)
    assert len(result.cameras) >= 10 and not result.left_out
    assert any("EXIF focal" in w for w in result.warnings)
    assert 600 < result.cameras[0].K[0, 0] < 800
    assert result.reprojection_px < 1.0
    assert all(c.image_path.is_file() for c in result.cameras)
    assert len(result.points) > 100 and len(result.point_views) == len(result.points)
    assert all(len(v) >= 2 for v in result.point_views)
    assert np.isfinite(result.points).all()
