"""Readers of point-cloud files (PLY ASCII/binary, OBJ vertices, XYZ text, NPZ) into one in-memory form."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from backend.runtime.errors import JobError

MIN_POINTS = 300
FORMATS = (".ply", ".obj", ".xyz", ".txt", ".pts", ".csv", ".npz", ".npy")
FORMAT_HINT = ("Give a point cloud as PLY (ASCII or binary, x y z and optionally nx ny nz), OBJ (v lines), "
               "XYZ text (x y z [nx ny nz] per line) or NPZ (arrays 'points' and optionally 'normals').")
PLY_TYPES = {"char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
             "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
             "float": "f4", "float32": "f4", "double": "f8", "float64": "f8"}
POINT_KEYS = ("points", "positions", "xyz", "vertices", "P", "V", "pts")
NORMAL_KEYS = ("normals", "N", "normal", "nrm")


@dataclass
class PointCloud:
    """Points (N, 3) float64 and, when the file had them, normals (N, 3) float64."""

    points: np.ndarray
    normals: np.ndarray | None = None
    warnings: list[str] = field(default_factory=list)


def _fast_numbers(blob: bytes) -> np.ndarray | None:
    """All whitespace-separated numbers of an ASCII block (C parser), or None when a token is not a number."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        try:
            return np.fromstring(blob.decode("ascii"), dtype=np.float64, sep=" ")
        except (DeprecationWarning, ValueError, UnicodeDecodeError):
            return None


def _bad(path: Path, what: str) -> JobError:
    """The error for a file that is not a readable point cloud."""
    return JobError(f"{path.name}: {what}", FORMAT_HINT)


def _ply_header(data: bytes, path: Path) -> tuple[str, list[tuple[str, int, list[tuple[str, str, str | None]]]], int]:
    """(format, elements [(name, count, [(prop, dtype, list count dtype or None)])], header byte length)."""
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        raise _bad(path, "not a PLY file (no 'ply' magic or no 'end_header')")
    stop = data.find(b"\n", end) + 1 or len(data)
    fmt = ""
    elements: list = []
    for raw in data[:stop].decode("ascii", errors="replace").splitlines()[1:]:
        tok = raw.split()
        if not tok or tok[0] in ("comment", "obj_info", "end_header"):
            continue
        if tok[0] == "format" and len(tok) >= 2:
            fmt = tok[1]
        elif tok[0] == "element" and len(tok) == 3:
            elements.append((tok[1], int(tok[2]), []))
        elif tok[0] == "property" and elements:
            if tok[1] == "list" and len(tok) == 5:
                elements[-1][2].append((tok[4], PLY_TYPES.get(tok[3], ""), PLY_TYPES.get(tok[2], "")))
            elif len(tok) == 3:
                elements[-1][2].append((tok[2], PLY_TYPES.get(tok[1], ""), None))
            else:
                raise _bad(path, f"malformed PLY property line {raw.strip()!r}")
        else:
            raise _bad(path, f"malformed PLY header line {raw.strip()!r}")
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise _bad(path, f"unknown PLY format {fmt!r}")
    for name, _, props in elements:
        for prop, dtype, count in props:
            if not dtype or count == "":
                raise _bad(path, f"PLY element {name!r} property {prop!r} has an unknown type")
    return fmt, elements, stop


def _ply_vertex_table(data: bytes, path: Path) -> dict[str, np.ndarray]:
    """The vertex element's scalar properties of a PLY file, by name."""
    fmt, elements, start = _ply_header(data, path)
    names = [e[0] for e in elements]
    if "vertex" not in names:
        raise _bad(path, "the PLY file has no 'vertex' element")
    before = elements[:names.index("vertex")]
    _, count, props = elements[names.index("vertex")]
    if any(c is not None for _, _, c in props):
        raise _bad(path, "the PLY vertex element has list properties")
    if fmt == "ascii":
        lines = data[start:].split(b"\n")
        skip = sum(e[1] for e in before)
        rows = [ln for ln in lines[skip:skip + count] if ln.strip()]
        if len(rows) < count:
            raise _bad(path, f"the PLY file ends after {len(rows)} of {count} vertices")
        table = _fast_numbers(b" ".join(rows))
        if table is None:
            try:
                table = np.array(b" ".join(rows).split(), dtype=np.float64)
            except ValueError as exc:
                raise _bad(path, f"a PLY vertex line is not numeric ({exc})") from exc
        if table.size != count * len(props):
            raise _bad(path, "the PLY vertex lines do not have one value per property")
        table = table.reshape(count, len(props))
        return {name: table[:, i] for i, (name, _, _) in enumerate(props)}
    endian = "<" if fmt == "binary_little_endian" else ">"
    offset = start
    for name, n, eprops in before:
        if any(c is not None for _, _, c in eprops):
            raise _bad(path, f"PLY element {name!r} with list properties comes before the vertices")
        offset += n * sum(np.dtype(d).itemsize for _, d, _ in eprops)
    dtype = np.dtype([(name, endian + d) for name, d, _ in props])
    if offset + count * dtype.itemsize > len(data):
        raise _bad(path, f"the PLY file is shorter than its {count} vertices")
    table = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    return {name: table[name].astype(np.float64) for name, _, _ in props}


def read_ply(path: Path) -> PointCloud:
    """Vertices (and nx, ny, nz when present) of a PLY file; faces, if any, are ignored."""
    cols = _ply_vertex_table(Path(path).read_bytes(), Path(path))
    if not all(k in cols for k in "xyz"):
        raise _bad(Path(path), "the PLY vertices have no x, y, z properties")
    points = np.stack([cols["x"], cols["y"], cols["z"]], axis=1)
    normals = None
    if all(k in cols for k in ("nx", "ny", "nz")):
        normals = np.stack([cols["nx"], cols["ny"], cols["nz"]], axis=1)
    return PointCloud(points, normals)


def read_obj(path: Path) -> PointCloud:
    """The `v` lines of an OBJ file; `vn` lines count as per-point normals when there is one per `v`."""
    vs: list[bytes] = []
    vns: list[bytes] = []
    for line in Path(path).read_bytes().splitlines():
        if line.startswith(b"v "):
            vs.append(line[2:])
        elif line.startswith(b"vn "):
            vns.append(line[3:])
    if not vs:
        raise _bad(Path(path), "the OBJ file has no vertex ('v') lines")
    points = _numeric_rows(vs, 3, Path(path), "v")
    normals = _numeric_rows(vns, 3, Path(path), "vn") if len(vns) == len(vs) else None
    return PointCloud(points, normals)


def _numeric_rows(rows: list[bytes], width: int, path: Path, what: str) -> np.ndarray:
    """The first `width` numbers of each row as an (N, width) array."""
    try:
        return np.array([r.split()[:width] for r in rows], dtype=np.float64).reshape(len(rows), width)
    except ValueError as exc:
        raise _bad(path, f"an OBJ {what!r} line does not hold {width} numbers") from exc


def read_xyz(path: Path) -> PointCloud:
    """Text with x y z [nx ny nz ...] per line (spaces, tabs or commas; '#' comments and a header line allowed)."""
    text = Path(path).read_bytes().replace(b",", b" ").replace(b";", b" ").replace(b"\t", b" ").replace(b"\r", b" ")
    if b"#" in text:
        text = b"\n".join(ln.split(b"#", 1)[0] for ln in text.split(b"\n"))
    text = text.strip()
    first, _, rest = text.partition(b"\n")
    try:
        float(first.split()[0])
    except ValueError:
        text = rest.strip()
    except IndexError:
        return PointCloud(np.zeros((0, 3)))
    if not text:
        return PointCloud(np.zeros((0, 3)))
    width = len(text.partition(b"\n")[0].split())
    if width < 3:
        raise _bad(Path(path), f"the first line has {width} numbers, expected x y z")
    rows = text.count(b"\n") - text.count(b"\n\n") + 1
    table = _fast_numbers(text)
    if table is None or table.size != width * rows:
        lines = [ln for ln in text.split(b"\n") if ln.strip()]
        try:
            table = np.array(b" ".join(lines).split(), dtype=np.float64)
        except ValueError as exc:
            raise _bad(Path(path), f"a line is not numeric ({exc})") from exc
        if table.size != width * len(lines):
            raise _bad(Path(path), f"the lines do not all have {width} numbers")
    table = table.reshape(-1, width)
    normals = table[:, 3:6] if width >= 6 and _look_like_normals(table[:, 3:6]) else None
    return PointCloud(table[:, :3], normals)


def _look_like_normals(cols: np.ndarray) -> bool:
    """True when columns 4-6 are (nearly all) unit vectors rather than colours or intensities."""
    lengths = np.linalg.norm(cols, axis=1)
    return bool(np.mean(np.abs(lengths - 1.0) < 0.05) > 0.95)


def read_npz(path: Path) -> PointCloud:
    """An NPZ with a points array (points/positions/xyz/vertices/P/V) and optionally normals, or an NPY (N, 3|6)."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise _bad(Path(path), f"not a readable NumPy file ({exc})") from exc
    if isinstance(loaded, np.ndarray):
        arr = np.asarray(loaded, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] not in (3, 6):
            raise _bad(Path(path), f"the array has shape {arr.shape}, expected (N, 3) or (N, 6)")
        return PointCloud(arr[:, :3], arr[:, 3:6] if arr.shape[1] == 6 else None)
    with loaded:
        key = next((k for k in POINT_KEYS if k in loaded.files), None)
        if key is None:
            raise _bad(Path(path), f"no points array (looked for {', '.join(POINT_KEYS)}; it has "
                                   f"{', '.join(loaded.files) or 'nothing'})")
        points = np.asarray(loaded[key], dtype=np.float64)
        nkey = next((k for k in NORMAL_KEYS if k in loaded.files), None)
        normals = np.asarray(loaded[nkey], dtype=np.float64) if nkey else None
    if points.ndim != 2 or points.shape[1] != 3:
        raise _bad(Path(path), f"array {key!r} has shape {points.shape}, expected (N, 3)")
    if normals is not None and normals.shape != points.shape:
        raise _bad(Path(path), f"array {nkey!r} has shape {normals.shape} but the points {points.shape}")
    return PointCloud(points, normals)


def read_point_cloud(path: Path) -> PointCloud:
    """Read any supported file by its extension, then check it is a usable point cloud."""
    path = Path(path)
    if not path.is_file():
        raise JobError(f"point cloud file {path} does not exist", "Give the path of a PLY, OBJ, XYZ or NPZ file.")
    ext = path.suffix.lower()
    if ext not in FORMATS:
        raise _bad(path, f"unknown extension {ext or '(none)'!r}")
    if path.stat().st_size == 0:
        raise JobError(f"{path.name} is empty (0 bytes)", "Export the point cloud again; the file holds nothing.")
    readers = {".ply": read_ply, ".obj": read_obj, ".npz": read_npz, ".npy": read_npz}
    cloud = readers.get(ext, read_xyz)(path)
    check_cloud(cloud, path.name)
    return cloud


def check_cloud(cloud: PointCloud, name: str) -> None:
    """JobError for too few points, NaN/inf coordinates or all points (nearly) on one spot or one line."""
    n = len(cloud.points)
    if n == 0:
        raise JobError(f"{name} holds no points", "Export the point cloud again; the file has no vertices.")
    if not np.all(np.isfinite(cloud.points)):
        bad = int(np.count_nonzero(~np.all(np.isfinite(cloud.points), axis=1)))
        raise JobError(f"{name}: {bad} of {n} points have NaN or infinite coordinates",
                       "Remove those points (or fix the export) and try again.")
    if n < MIN_POINTS:
        raise JobError(f"{name} has only {n} points; at least {MIN_POINTS} are needed for a surface",
                       "Use a denser point cloud (thousands of points or more).")
    sample = cloud.points[:: max(1, n // 10_000)]
    spread = np.linalg.svd(sample - sample.mean(axis=0), compute_uv=False)
    if spread[1] <= 1e-6 * max(float(spread[0]), 1e-300):
        raise JobError(f"{name}: the points lie on a single point or line",
                       "A surface needs points spread over an area; check the export.")
    if cloud.normals is not None:
        lengths = np.linalg.norm(cloud.normals, axis=1)
        if not np.all(np.isfinite(cloud.normals)) or np.mean(lengths > 1e-12) < 0.99:
            cloud.normals = None
            cloud.warnings.append(f"{name}: the normals in the file are NaN or zero; estimating them instead")
