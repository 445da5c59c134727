"""Load any supported layout by sniffing the folder: job.json, NDS views/, IDR cameras.npz, transforms.json,
COLMAP sparse/."""
from __future__ import annotations

from pathlib import Path

from backend.runtime.errors import JobError
from backend.io.colmap import find_model, load_colmap
from backend.io.idr import find_camera_file, load_idr
from backend.io.job import load_job
from backend.io.nds import load_nds, views_dir
from backend.io.nerf import find_transforms, load_nerf
from backend.io.views import Scene

LAYOUTS_HINT = ("supported layouts: a job folder with job.json (images/, masks/); NDS views/ with <stem>.png, "
                "<stem>_k.txt, _r.txt, _t.txt (+ bbox.txt); IDR/NeuS cameras.npz (or cameras_sphere.npz) with image/ "
                "and mask/; NeRF transforms.json (instant-ngp, nerfstudio, BlenderNeRF); a COLMAP model: "
                "sparse/0/ (or sparse/) with cameras, images, points3D (.bin or .txt) beside images/")


def detect_layout(path: Path) -> str:
    """'job', 'nds', 'idr', 'nerf' or 'colmap' for a folder or file, or a JobError listing the layouts."""
    path = Path(path)
    if not path.exists():
        raise JobError(f"{path} does not exist", LAYOUTS_HINT)
    if path.is_file():
        if path.name == "job.json":
            return "job"
        if path.suffix == ".npz":
            return "idr"
        if path.suffix == ".json":
            return "nerf"
        raise JobError(f"cannot tell the layout of file {path}", LAYOUTS_HINT)
    if (path / "job.json").is_file():
        return "job"
    if find_transforms(path) is not None:
        return "nerf"
    if find_camera_file(path) is not None:
        return "idr"
    if any(views_dir(path).glob("*_k.txt")):
        return "nds"
    if find_model(path) is not None:
        return "colmap"
    raise JobError(f"no known multi-view layout in {path}", LAYOUTS_HINT)


LOADERS = {"job": load_job, "nds": load_nds, "idr": load_idr, "nerf": load_nerf, "colmap": load_colmap}


def load_any(path: Path) -> Scene:
    """Read whichever supported layout `path` holds into a Scene."""
    return LOADERS[detect_layout(path)](Path(path))
