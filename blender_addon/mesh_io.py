"""Readers of the backend's OBJ (with UVs) and PLY meshes into numpy arrays. No bpy."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np


@dataclass
class MeshData:
    """Triangle mesh: positions (N,3), faces (F,3) and optional per-corner UVs (F,3,2)."""

    vertices: np.ndarray
    faces: np.ndarray
    corner_uv: Optional[np.ndarray] = None
    texture: Optional[str] = None


def _triangulate(polys: list[list[int]]) -> np.ndarray:
    """Fan-triangulate polygons given as index lists; returns (F,3) int."""
    tris = []
    for p in polys:
        for k in range(1, len(p) - 1):
            tris.append((p[0], p[k], p[k + 1]))
    return np.asarray(tris, dtype=np.int64).reshape(-1, 3)


def _obj_index(token: str, count: int) -> int:
    """Zero-based index of an OBJ index token (1-based, or negative = relative to the end)."""
    i = int(token)
    return i - 1 if i > 0 else count + i


def read_mtl_texture(mtl_path: Path) -> Optional[str]:
    """The first map_Kd file named in an MTL file (absolute path), or None."""
    if not mtl_path.is_file():
        return None
    for line in mtl_path.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) == 2 and parts[0] == "map_Kd":
            name = parts[1].strip().split()[-1]
            return str((mtl_path.parent / name).resolve())
    return None


def read_obj(path: Path) -> MeshData:
    """Read a Wavefront OBJ: v, vt, f (any v/vt/vn form, polygons fanned), texture from its mtllib."""
    path = Path(path)
    verts: list[list[float]] = []
    uvs: list[list[float]] = []
    face_v: list[list[int]] = []
    face_t: list[list[int]] = []
    mtllib = None
    with open(path, "r", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line or line[0] == "#":
                continue
            parts = line.split()
            if not parts:
                continue
            tag = parts[0]
            if tag == "v":
                verts.append([float(x) for x in parts[1:4]])
            elif tag == "vt":
                uvs.append([float(x) for x in parts[1:3]])
            elif tag == "f":
                fv, ft = [], []
                for tok in parts[1:]:
                    fields = tok.split("/")
                    fv.append(_obj_index(fields[0], len(verts)))
                    if len(fields) > 1 and fields[1]:
                        ft.append(_obj_index(fields[1], len(uvs)))
                face_v.append(fv)
                face_t.append(ft if len(ft) == len(fv) else [])
            elif tag == "mtllib" and len(parts) > 1:
                mtllib = line.split(None, 1)[1].strip()
    vertices = np.asarray(verts, dtype=np.float64).reshape(-1, 3)
    faces = _triangulate(face_v)
    corner_uv = None
    if uvs and all(ft for ft in face_t):
        uv_arr = np.asarray(uvs, dtype=np.float64).reshape(-1, 2)
        corner_uv = uv_arr[_triangulate(face_t)]
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ValueError(f"{path.name}: a face refers to a vertex that does not exist")
    texture = read_mtl_texture(path.parent / mtllib) if mtllib else None
    return MeshData(vertices, faces, corner_uv, texture)


_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}


def _read_ply_header(fh) -> tuple[str, list]:
    """Parse a PLY header: (format, [(element, count, [(prop, type, list_types|None)])])."""
    if fh.readline().strip() != b"ply":
        raise ValueError("not a PLY file")
    fmt = ""
    elements: list = []
    while True:
        line = fh.readline()
        if not line:
            raise ValueError("PLY header has no end_header")
        parts = line.decode("ascii", "replace").split()
        if not parts:
            continue
        if parts[0] == "format":
            fmt = parts[1]
        elif parts[0] == "element":
            elements.append((parts[1], int(parts[2]), []))
        elif parts[0] == "property":
            if parts[1] == "list":
                elements[-1][2].append((parts[4], None, (_PLY_TYPES[parts[2]], _PLY_TYPES[parts[3]])))
            else:
                elements[-1][2].append((parts[2], _PLY_TYPES[parts[1]], None))
        elif parts[0] == "end_header":
            return fmt, elements


def _ply_binary_element(buf: bytes, offset: int, count: int, props: list, endian: str):
    """Read one binary element block; returns (dict of arrays or face list, new offset)."""
    if all(p[2] is None for p in props):
        dt = np.dtype([(name, endian + t) for name, t, _ in props])
        arr = np.frombuffer(buf, dtype=dt, count=count, offset=offset)
        return {name: arr[name] for name, _, _ in props}, offset + dt.itemsize * count
    if len(props) == 1 and count:
        name, _, (ct, it) = props[0]
        first_n = int(np.frombuffer(buf, dtype=endian + ct, count=1, offset=offset)[0])
        dt = np.dtype([("n", endian + ct), ("idx", endian + it, (first_n,))])
        if offset + dt.itemsize * count <= len(buf):
            arr = np.frombuffer(buf, dtype=dt, count=count, offset=offset)
            if np.all(arr["n"] == first_n):
                return {name: arr["idx"].astype(np.int64)}, offset + dt.itemsize * count
    out: dict = {name: [] for name, _, _ in props}
    for _ in range(count):
        for name, t, lt in props:
            if lt is None:
                val = np.frombuffer(buf, dtype=endian + t, count=1, offset=offset)[0]
                offset += np.dtype(t).itemsize
                out[name].append(val)
            else:
                ct, it = lt
                n = int(np.frombuffer(buf, dtype=endian + ct, count=1, offset=offset)[0])
                offset += np.dtype(ct).itemsize
                out[name].append(np.frombuffer(buf, dtype=endian + it, count=n, offset=offset).astype(np.int64))
                offset += np.dtype(it).itemsize * n
    return out, offset


def read_ply(path: Path) -> MeshData:
    """Read a PLY mesh (ascii or binary, either endianness): vertex x/y/z and face index lists."""
    path = Path(path)
    with open(path, "rb") as fh:
        fmt, elements = _read_ply_header(fh)
        body = fh.read()
    data: dict = {}
    if fmt == "ascii":
        tokens = body.split()
        pos = 0
        for name, count, props in elements:
            cols: dict = {p[0]: [] for p in props}
            for _ in range(count):
                for pname, _t, lt in props:
                    if lt is None:
                        cols[pname].append(float(tokens[pos]))
                        pos += 1
                    else:
                        n = int(tokens[pos])
                        cols[pname].append(np.asarray([int(x) for x in tokens[pos + 1:pos + 1 + n]]))
                        pos += 1 + n
            data[name] = cols
    elif fmt in ("binary_little_endian", "binary_big_endian"):
        endian = "<" if fmt == "binary_little_endian" else ">"
        offset = 0
        for name, count, props in elements:
            data[name], offset = _ply_binary_element(body, offset, count, props, endian)
    else:
        raise ValueError(f"{path.name}: unsupported PLY format {fmt!r}")
    v = data.get("vertex", {})
    vertices = np.stack([np.asarray(v[k], dtype=np.float64) for k in ("x", "y", "z")], axis=1) \
        if v else np.zeros((0, 3))
    f = data.get("face", {})
    idx = f.get("vertex_indices", f.get("vertex_index"))
    if idx is None:
        faces = np.zeros((0, 3), dtype=np.int64)
    elif isinstance(idx, np.ndarray) and idx.ndim == 2 and idx.shape[1] == 3:
        faces = idx.astype(np.int64)
    else:
        faces = _triangulate([list(map(int, p)) for p in idx])
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ValueError(f"{path.name}: a face refers to a vertex that does not exist")
    return MeshData(vertices, faces)


def read_mesh(path: Path) -> MeshData:
    """Read an OBJ or PLY file by its extension."""
    suffix = Path(path).suffix.lower()
    if suffix == ".obj":
        return read_obj(path)
    if suffix == ".ply":
        return read_ply(path)
    raise ValueError(f"unsupported mesh format: {Path(path).name}")
