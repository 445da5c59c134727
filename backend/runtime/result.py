"""The result folder, written so a cancelled run never leaves anything half-written."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np


def _umask() -> int:
    """The process umask (read without changing it for long)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file through a temporary sibling and os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def ply_bytes(vertices: np.ndarray, faces: np.ndarray) -> bytes:
    """Binary little-endian PLY of a triangle mesh."""
    v = np.ascontiguousarray(vertices, dtype="<f4")
    f = np.ascontiguousarray(faces, dtype="<i4")
    header = (f"ply\nformat binary_little_endian 1.0\nelement vertex {len(v)}\n"
              "property float x\nproperty float y\nproperty float z\n"
              f"element face {len(f)}\nproperty list uchar int vertex_indices\nend_header\n").encode()
    face_rows = np.empty(len(f), dtype=[("n", "u1"), ("i", "<i4", (3,))])
    face_rows["n"] = 3
    face_rows["i"] = f
    return header + v.tobytes() + face_rows.tobytes()


def write_obj(path: Path, vertices: np.ndarray, faces: np.ndarray, uv: np.ndarray | None = None,
              mtl_name: str | None = None, normals: np.ndarray | None = None) -> None:
    """Wavefront OBJ with optional per-vertex UVs and a material library reference."""
    lines: list[str] = []
    if mtl_name:
        lines += [f"mtllib {mtl_name}", "usemtl material0"]
    out = "\n".join(lines) + ("\n" if lines else "")
    parts = [out, "".join(f"v {x:.7g} {y:.7g} {z:.7g}\n" for x, y, z in vertices)]
    if uv is not None:
        parts.append("".join(f"vt {u:.7g} {v:.7g}\n" for u, v in uv))
    if normals is not None:
        parts.append("".join(f"vn {x:.5g} {y:.5g} {z:.5g}\n" for x, y, z in normals))
    f1 = np.asarray(faces, dtype=np.int64) + 1
    if uv is not None and normals is not None:
        parts.append("".join(f"f {a}/{a}/{a} {b}/{b}/{b} {c}/{c}/{c}\n" for a, b, c in f1))
    elif uv is not None:
        parts.append("".join(f"f {a}/{a} {b}/{b} {c}/{c}\n" for a, b, c in f1))
    else:
        parts.append("".join(f"f {a} {b} {c}\n" for a, b, c in f1))
    atomic_write_bytes(path, "".join(parts).encode())


def write_mtl(path: Path, texture_name: str | None) -> None:
    """Material library with one diffuse material, textured when a texture is given."""
    text = "newmtl material0\nKa 1 1 1\nKd 1 1 1\nKs 0 0 0\nillum 1\n"
    if texture_name:
        text += f"map_Kd {texture_name}\n"
    atomic_write_bytes(path, text.encode())


def write_json(path: Path, obj: dict) -> None:
    """Pretty JSON, atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


RESULT_NAMES = {"result.json", "mesh.obj", "mesh.mtl", "texture.png", "previews"}


class ResultWriter:
    """Stages the result in a temporary folder beside OUT; commit() swaps it into place.

    Previews go straight into OUT/previews (each one atomically) so a viewer can load them while
    the run goes on; the final files only appear, all together, when commit() renames the folder.
    """

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = Path(out_dir).resolve()
        self.out_dir.parent.mkdir(parents=True, exist_ok=True)
        self.created = not self.out_dir.exists()  # abort() then removes the folder again
        self.committed = False
        self.out_dir.mkdir(exist_ok=True)
        previews = self.out_dir / "previews"
        if previews.exists():
            shutil.rmtree(previews)
        self.staging = Path(tempfile.mkdtemp(prefix=f".{self.out_dir.name}.tmp-", dir=self.out_dir.parent))
        os.chmod(self.staging, 0o777 & ~_umask())

    def write_preview(self, step: int, vertices: np.ndarray, faces: np.ndarray) -> str:
        """Write previews/mesh_<step>.ply into OUT atomically; returns its path relative to OUT."""
        rel = f"previews/mesh_{step:06d}.ply"
        atomic_write_bytes(self.out_dir / rel, ply_bytes(vertices, faces))
        return rel

    def path(self, name: str) -> Path:
        """Path of a final file inside the staging folder."""
        return self.staging / name

    def commit(self) -> None:
        """Carry previews and unrelated files over, then swap the staged folder into OUT's place."""
        for entry in self.out_dir.iterdir():
            if entry.name not in RESULT_NAMES or entry.name == "previews":
                os.replace(entry, self.staging / entry.name)
        trash = Path(tempfile.mkdtemp(prefix=f".{self.out_dir.name}.old-", dir=self.out_dir.parent))
        os.rmdir(trash)
        os.replace(self.out_dir, trash)
        os.replace(self.staging, self.out_dir)
        self.committed = True
        shutil.rmtree(trash, ignore_errors=True)

    def abort(self) -> None:
        """Undo an unfinished run: remove the staging folder and this run's previews, and OUT if this run made it.

        A committed result is complete and stays; an earlier run's result in OUT stays too.
        """
        shutil.rmtree(self.staging, ignore_errors=True)
        if self.committed:
            return
        shutil.rmtree(self.out_dir / "previews", ignore_errors=True)
        if self.created:
            with contextlib.suppress(OSError):
                self.out_dir.rmdir()
