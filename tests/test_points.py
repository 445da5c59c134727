"""Points to Mesh backend: readers, errors, normals, outliers, trimming, the whole run and its CLI."""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from backend.pipelines.points import points_to_mesh
from backend.points.normals import estimate_normals, orient_normals, voxel_downsample
from backend.points.readers import read_point_cloud
from backend.points.surface import compact, drop_small_parts, knn, outlier_mask, poisson_depth, trim_unsupported
from backend.runtime.errors import JobError
from backend.runtime.protocol import Reporter

ROOT = Path(__file__).resolve().parents[1]


POINTS_STAGES = ["load", "outliers", "normals", "surface", "trim", "decimate", "symmetry", "uv", "texture", "write"]


def sphere_points(n: int, seed: int = 0, noise: float = 0.0, centre=(0.3, -0.2, 1.0), radius: float = 0.8):
    """n points on a sphere (with Gaussian radial noise), and their outward normals."""
    rng = np.random.default_rng(seed)
    d = rng.normal(size=(n, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return np.asarray(centre) + d * (radius + noise * rng.normal(size=(n, 1))), d


def torus_points(n: int, seed: int = 0, big: float = 1.0, small: float = 0.35):
    """n points on a torus around z, their outward normals and the tube centre of each."""
    rng = np.random.default_rng(seed)
    u, v = rng.uniform(0, 2 * np.pi, n), rng.uniform(0, 2 * np.pi, n)
    ring = np.stack([np.cos(u), np.sin(u), np.zeros(n)], axis=1)
    normal = ring * np.cos(v)[:, None] + np.array([0, 0, 1.0]) * np.sin(v)[:, None]
    return big * ring + small * normal, normal, big * ring


def write_ply(path: Path, pts: np.ndarray, nrm: np.ndarray | None, fmt: str, faces: bool = False) -> None:
    """A PLY file written here, independently of the reader (double x y z, float normals, a face element)."""
    props = ["property double x", "property double y", "property double z"]
    fields = [("x", "f8"), ("y", "f8"), ("z", "f8")]
    if nrm is not None:
        props += ["property float nx", "property float ny", "property float nz"]
        fields += [("nx", "f4"), ("ny", "f4"), ("nz", "f4")]
    props += ["property uchar red"]
    fields += [("red", "u1")]
    head = [f"ply", f"format {fmt} 1.0", "comment made by test_points", f"element vertex {len(pts)}", *props]
    if faces:
        head += ["element face 1", "property list uchar int vertex_indices"]
    header = ("\n".join(head + ["end_header"]) + "\n").encode()
    if fmt == "ascii":
        rows = [" ".join([*(f"{x!r}" for x in p), *(f"{x:.7g}" for x in (nrm[i] if nrm is not None else ())), "7"])
                for i, p in enumerate(pts.tolist())]
        body = ("\n".join(rows) + "\n" + ("3 0 1 2\n" if faces else "")).encode()
    else:
        end = "<" if fmt == "binary_little_endian" else ">"
        table = np.zeros(len(pts), dtype=[(n, end + t) for n, t in fields])
        table["x"], table["y"], table["z"] = pts.T
        if nrm is not None:
            table["nx"], table["ny"], table["nz"] = nrm.T
        table["red"] = 7
        body = table.tobytes()
        if faces:
            body += np.array([3], "u1").tobytes() + np.array([0, 1, 2], end + "i4").tobytes()
    path.write_bytes(header + body)


@pytest.fixture(scope="module")
def cloud() -> tuple[np.ndarray, np.ndarray]:
    """600 sphere points and normals."""
    return sphere_points(600, seed=3)


@pytest.mark.parametrize("fmt", ["ascii", "binary_little_endian", "binary_big_endian"])
@pytest.mark.parametrize("with_normals", [True, False])
def test_ply_formats(tmp_path: Path, cloud, fmt: str, with_normals: bool) -> None:
    pts, nrm = cloud
    path = tmp_path / "c.ply"
    write_ply(path, pts, nrm if with_normals else None, fmt, faces=fmt != "binary_big_endian")
    got = read_point_cloud(path)
    np.testing.assert_allclose(got.points, pts, atol=1e-12)
    if with_normals:
        np.testing.assert_allclose(got.normals, nrm, atol=1e-6)
    else:
        assert got.normals is None


def test_obj_xyz_npz_npy(tmp_path: Path, cloud) -> None:
    pts, nrm = cloud
    obj = tmp_path / "c.obj"
    obj.write_text("# points\n" + "".join(f"v {x!r} {y!r} {z!r}\n" for x, y, z in pts)
                   + "".join(f"vn {x!r} {y!r} {z!r}\n" for x, y, z in nrm))
    xyz = tmp_path / "c.xyz"
    xyz.write_text("x,y,z,nx,ny,nz\n" + "".join(",".join(map(repr, r)) + "\n" for r in np.hstack([pts, nrm])))
    coloured = tmp_path / "colour.txt"
    coloured.write_text("".join(" ".join(map(repr, r)) + " 200 10 10\n" for r in pts))
    np.savez(tmp_path / "c.npz", points=pts, normals=nrm)
    np.save(tmp_path / "c.npy", pts)
    for name, has_normals in (("c.obj", True), ("c.xyz", True), ("colour.txt", False), ("c.npz", True),
                              ("c.npy", False)):
        got = read_point_cloud(tmp_path / name)
        np.testing.assert_allclose(got.points, pts, atol=1e-12, err_msg=name)
        assert (got.normals is not None) == has_normals, name
        if has_normals:
            np.testing.assert_allclose(got.normals, nrm, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("case, message", [
    ("empty", "is empty"),
    ("nan", "NaN"),
    ("few", "only 100 points"),
    ("garbage", "not a PLY file"),
    ("no_vertex", "no 'vertex' element"),
    ("line", "single point or line"),
    ("extension", "unknown extension"),
    ("missing", "does not exist"),
    ("npz_keys", "no points array"),
    ("truncated", "shorter than"),
    ("xyz_text", "not numeric"),
    ("xyz_ragged", "do not all have 3 numbers"),
])
def test_bad_files_name_the_problem(tmp_path: Path, cloud, case: str, message: str) -> None:
    pts, _ = cloud
    path = tmp_path / "c.ply"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "nan":
        bad = pts.copy()
        bad[5, 1] = np.nan
        write_ply(path, bad, None, "binary_little_endian")
    elif case == "few":
        write_ply(path, pts[:100], None, "ascii")
    elif case == "garbage":
        path.write_bytes(os.urandom(4000))
    elif case == "no_vertex":
        path.write_bytes(b"ply\nformat ascii 1.0\nelement face 0\nproperty list uchar int vertex_indices\nend_header\n")
    elif case == "line":
        write_ply(path, np.outer(np.linspace(0, 1, 500), [1.0, 2.0, 3.0]), None, "ascii")
    elif case == "extension":
        path = tmp_path / "c.png"
        path.write_bytes(b"\x89PNG\r\n")
    elif case == "missing":
        path = tmp_path / "nothing.ply"
    elif case == "npz_keys":
        path = tmp_path / "c.npz"
        np.savez(path, colours=pts)
    elif case in ("xyz_text", "xyz_ragged"):
        path = tmp_path / "c.xyz"
        rows = [" ".join(map(repr, p)) for p in pts.tolist()]
        rows[300] = "1.0 oops 2.0" if case == "xyz_text" else "1.0 2.0"
        path.write_text("\n".join(rows) + "\n")
    elif case == "truncated":
        write_ply(path, pts, None, "binary_little_endian")
        path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(JobError) as err:
        read_point_cloud(path)
    assert message in err.value.message
    assert err.value.hint


def test_bad_normals_are_replaced_with_a_warning(tmp_path: Path, cloud) -> None:
    pts, nrm = cloud
    np.savez(tmp_path / "c.npz", points=pts, normals=np.zeros_like(nrm))
    got = read_point_cloud(tmp_path / "c.npz")
    assert got.normals is None and "estimating" in got.warnings[0]


def test_estimated_normals_point_outwards_on_a_sphere_and_a_torus() -> None:
    pts, true = sphere_points(20_000, seed=1, noise=0.004)
    n = estimate_normals(pts)
    assert np.mean(np.sum(n * true, axis=1) > 0.9) > 0.99
    tp, tn, _ = torus_points(40_000, seed=2)
    n = estimate_normals(tp)
    assert np.mean(np.sum(n * tn, axis=1) > 0.9) > 0.99


def test_orientation_fixes_random_flips() -> None:
    tp, tn, _ = torus_points(5_000, seed=4)
    signs = np.where(np.random.default_rng(0).random(len(tp)) < 0.5, -1.0, 1.0)
    _, idx = knn(tp, 12)
    fixed = orient_normals(tp, tn * signs[:, None], idx)
    np.testing.assert_allclose(fixed, tn, atol=1e-12)


def test_voxel_downsample_hits_its_target_and_averages() -> None:
    pts, _ = sphere_points(50_000, seed=5)
    centres, inverse = voxel_downsample(pts, 5_000)
    assert 4_000 <= len(centres) <= 6_250
    assert inverse.shape == (50_000,) and inverse.max() == len(centres) - 1
    member = pts[inverse == 17]
    np.testing.assert_allclose(centres[17], member.mean(axis=0))


def test_outliers_are_found() -> None:
    pts, _ = sphere_points(20_000, seed=6, noise=0.005)
    rng = np.random.default_rng(7)
    junk = rng.uniform(-1.5, 1.5, size=(600, 3)) + np.array([0.3, -0.2, 1.0])
    dist = knn(np.concatenate([pts, junk]), 10)[0][:, 1:].mean(axis=1)
    keep = outlier_mask(dist)
    assert np.mean(~keep[20_000:]) > 0.95
    assert np.mean(keep[:20_000]) > 0.98


def test_trim_cuts_the_unsupported_cap_and_small_parts_go() -> None:
    import gpytoolbox

    v, f = gpytoolbox.icosphere(4)
    pts, _ = sphere_points(20_000, seed=13, centre=(0, 0, 0), radius=1.0)
    pts = pts[pts[:, 2] < 0.3]
    spacing = knn(pts, 10)[0][:, 1:].mean(axis=1)
    kept = trim_unsupported(v, f, pts, spacing, 2.5)
    vk, fk = compact(v, kept)
    assert 0.6 * len(f) < len(fk) < 0.72 * len(f)
    assert 0.25 < vk[:, 2].max() < 0.3 + 2.5 * spacing.max()
    island = np.array([[5.0, 5, 5], [5.1, 5, 5], [5, 5.1, 5]])
    v2, f2 = drop_small_parts(np.concatenate([vk, island]), np.concatenate([fk, [[len(vk), len(vk) + 1, len(vk) + 2]]]))
    assert len(f2) == len(fk) and len(v2) == len(vk)


def test_poisson_depth_grows_with_the_points() -> None:
    assert poisson_depth(1_000) == 7 and poisson_depth(200_000) == 8 and poisson_depth(1_000_000) == 9
    assert poisson_depth(10 ** 9) == 10


def test_points_to_mesh_sphere_result_folder(tmp_path: Path) -> None:
    pts, _ = sphere_points(30_000, seed=8, noise=0.004)
    junk = np.random.default_rng(9).uniform(-1, 1, size=(900, 3)) * 1.2 + np.array([0.3, -0.2, 1.0])
    np.savez(tmp_path / "s.npz", points=np.concatenate([pts, junk]))
    stream = io.StringIO()
    result = points_to_mesh(tmp_path / "s.npz", tmp_path / "out", Reporter(stream=stream, json_mode=True,
                                                                           quiet_logs=True))
    lines = [json.loads(x) for x in stream.getvalue().splitlines()]
    stages = [x["name"] for x in lines if x["type"] == "stage"]
    assert stages == POINTS_STAGES
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["mesh.mtl", "mesh.obj", "result.json"]
    saved = json.loads((tmp_path / "out" / "result.json").read_text())
    assert saved["normals"] == "estimated" and saved["faces"] == result["faces"] > 1000
    assert 800 <= saved["outliers_removed"] <= 1500
    assert saved["symmetry"] is not None
    from backend.mesh.metrics import load_mesh

    v, f = load_mesh(tmp_path / "out" / "mesh.obj")
    r = np.linalg.norm(v - np.array([0.3, -0.2, 1.0]), axis=1)
    assert abs(r.mean() - 0.8) < 0.01 and r.std() < 0.01
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    outward = np.sum(fn * (v[f].mean(axis=1) - np.array([0.3, -0.2, 1.0])), axis=1) > 0
    assert outward.mean() > 0.99
    assert not any(p.name.startswith(".out") for p in tmp_path.iterdir())


def test_open_surface_is_trimmed_and_uv_mapped(tmp_path: Path) -> None:
    pts, nrm = sphere_points(20_000, seed=10, centre=(0, 0, 0), radius=1.0)
    half = pts[:, 2] < 0.2
    np.savez(tmp_path / "h.npz", points=pts[half], normals=nrm[half])
    reporter = Reporter(stream=io.StringIO(), quiet_logs=True)
    result = points_to_mesh(tmp_path / "h.npz", tmp_path / "out", reporter, {"uv": True, "symmetry": "off"})
    assert [x["name"] for x in reporter.lines if x["type"] == "stage"] == POINTS_STAGES, "each stage once, in order"
    assert result["uv"]["charts"] > 0 and result["texture"] is None
    from backend.mesh.metrics import load_mesh

    v, _ = load_mesh(tmp_path / "out" / "mesh.obj")
    assert result["normals"] == "file" and result["trimmed_faces"] > 0
    assert v[:, 2].max() < 0.35 and v[:, 2].min() < -0.98
    assert "vt " in (tmp_path / "out" / "mesh.obj").read_text()[:10 ** 7]


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m backend points-to-mesh ...` in a subprocess."""
    return subprocess.run([sys.executable, "-m", "backend", "points-to-mesh", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_cli_runs_and_reports_bad_input(tmp_path: Path) -> None:
    pts, nrm = sphere_points(3_000, seed=11)
    write_ply(tmp_path / "c.ply", pts, nrm, "binary_little_endian")
    ok = run_cli(str(tmp_path / "c.ply"), "--out", str(tmp_path / "out"), "--symmetry", "off", "--depth", "7")
    lines = [json.loads(x) for x in ok.stdout.splitlines()]
    assert ok.returncode == 0 and lines[-1] == {"type": "done", "result": "result.json"}
    saved = json.loads((tmp_path / "out" / "result.json").read_text())
    assert saved["poisson"]["depth"] == 7 and saved["normals"] == "file"
    (tmp_path / "bad.xyz").write_text("1 2 3\n4 5 nan\n")
    bad = run_cli(str(tmp_path / "bad.xyz"), "--out", str(tmp_path / "out2"))
    err = json.loads(bad.stdout.splitlines()[-1])
    assert bad.returncode == 2 and err["type"] == "error" and "bad.xyz" in err["message"] and err["hint"]
    assert not (tmp_path / "out2").exists()
    depth = run_cli(str(tmp_path / "c.ply"), "--out", str(tmp_path / "out3"), "--depth", "20")
    assert depth.returncode == 2 and "depth" in json.loads(depth.stdout.splitlines()[-1])["message"]


def test_sigterm_during_poisson_leaves_nothing(tmp_path: Path) -> None:
    pts, nrm = sphere_points(300_000, seed=12)
    np.savez(tmp_path / "big.npz", points=pts, normals=nrm)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "backend", "points-to-mesh", str(tmp_path / "big.npz"), "--out",
                             str(out), "--depth", "10", "--json"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None
    for line in proc.stdout:
        if json.loads(line).get("name") == "surface":
            break
    time.sleep(0.5)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=30)
    assert rc == 130 and time.monotonic() - sent < 2.0
    assert not (out / "result.json").exists() and not (out / "mesh.obj").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []
