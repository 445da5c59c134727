"""Pure add-on logic (no bpy): mesh readers, PNG writer, job spec, backend set-up plan."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from blender_addon.backend_setup import parse_check, setup_plan, summarize_check, torch_install_args
from blender_addon.job_spec import (PRESET_EXTRAS, QUALITY_PRESETS, GatherError, ViewSpec, build_job, fit_intrinsics,
                                    image_scale_for, job_settings, match_files, safe_name)
from blender_addon.mesh_io import read_mesh, read_obj, read_ply
from blender_addon.png_io import png_info, write_png


def _ply_binary(path: Path, v: np.ndarray, f: np.ndarray, endian: str = "<") -> None:
    fmt = "binary_little_endian" if endian == "<" else "binary_big_endian"
    head = (f"ply\nformat {fmt} 1.0\nelement vertex {len(v)}\nproperty float x\nproperty float y\n"
            f"property float z\nproperty uchar red\nelement face {len(f)}\n"
            "property list uchar int vertex_indices\nend_header\n").encode()
    vr = np.empty(len(v), dtype=[("xyz", endian + "f4", (3,)), ("r", "u1")])
    vr["xyz"], vr["r"] = v, 7
    body = b"".join(struct.pack(endian + "B" + "i" * len(t), len(t), *t) for t in f)
    path.write_bytes(head + vr.tobytes() + body)


def test_read_ply_binary_both_endians_and_polygons(tmp_path: Path) -> None:
    v = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    tris = [(0, 1, 2), (2, 3, 4)]
    for endian in "<>":
        _ply_binary(tmp_path / "m.ply", v, tris, endian)
        m = read_ply(tmp_path / "m.ply")
        assert np.allclose(m.vertices, v) and m.faces.tolist() == [list(t) for t in tris]
    _ply_binary(tmp_path / "q.ply", v, [(0, 1, 2, 3), (1, 2, 4)])
    assert read_ply(tmp_path / "q.ply").faces.tolist() == [[0, 1, 2], [0, 2, 3], [1, 2, 4]]


def test_read_ply_ascii(tmp_path: Path) -> None:
    p = tmp_path / "a.ply"
    p.write_text("ply\nformat ascii 1.0\ncomment x\nelement vertex 4\nproperty double x\nproperty double y\n"
                 "property double z\nelement face 1\nproperty list uchar int vertex_index\nend_header\n"
                 "0 0 0\n1 0 0\n1 1 0\n0 1 0\n4 0 1 2 3\n")
    m = read_mesh(p)
    assert m.faces.tolist() == [[0, 1, 2], [0, 2, 3]] and m.vertices.shape == (4, 3)


def test_read_obj_uvs_negative_indices_and_mtl(tmp_path: Path) -> None:
    (tmp_path / "m.mtl").write_text("newmtl a\nmap_Kd tex.png\n")
    (tmp_path / "m.obj").write_text(
        "# c\nmtllib m.mtl\nv 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\n"
        "vn 0 0 1\nf 1/1/1 2/2/1 3/3/1 4/4/1\nf -4/-4 -2/-2 -1/-1\n")
    m = read_obj(tmp_path / "m.obj")
    assert m.faces.tolist() == [[0, 1, 2], [0, 2, 3], [0, 2, 3]]
    assert m.corner_uv.shape == (3, 3, 2)
    assert m.corner_uv[1].tolist() == [[0, 0], [1, 1], [0, 1]]
    assert m.texture == str((tmp_path / "tex.png").resolve())


def test_read_obj_rejects_bad_index(tmp_path: Path) -> None:
    (tmp_path / "b.obj").write_text("v 0 0 0\nv 1 0 0\nf 1 2 3\n")
    with pytest.raises(ValueError, match="does not exist"):
        read_obj(tmp_path / "b.obj")


def test_png_writer_roundtrip(tmp_path: Path) -> None:
    img = np.random.default_rng(1).integers(0, 256, size=(7, 5, 4), dtype=np.uint8)
    write_png(tmp_path / "x.png", img)
    assert png_info(tmp_path / "x.png") == (5, 7, 8, 4)
    data = (tmp_path / "x.png").read_bytes()
    idat = data[data.index(b"IDAT") + 4:data.index(b"IEND") - 8]
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(7, 1 + 5 * 4)
    assert np.array_equal(raw[:, 1:].reshape(7, 5, 4), img)
    try:
        import imageio.v3 as iio
    except ImportError:
        return
    assert np.array_equal(iio.imread(tmp_path / "x.png"), img)


def test_face_budget_from_preset_or_field() -> None:
    budgets = [QUALITY_PRESETS[q]["max_faces"] for q in ("DRAFT", "STANDARD", "HIGH")]
    assert budgets == sorted(budgets) and all(500 <= b <= 10_000_000 for b in budgets)
    assert job_settings("HIGH", "AUTO", 640, 480)["max_faces"] == QUALITY_PRESETS["HIGH"]["max_faces"]
    assert job_settings("DRAFT", "CPU", 640, 480, max_faces=12345)["max_faces"] == 12345


def test_job_spec_helpers(tmp_path: Path) -> None:
    taken: set = set()
    assert [safe_name(n, taken) for n in ("Cam 1", "cam_1", "..", "Cam/1")] == ["Cam_1", "cam_1_1", "view", "Cam_1_2"]
    assert image_scale_for("DRAFT", 1024, 512) == 0.25 and image_scale_for("HIGH", 4000, 3000) == 1.0
    K = np.array([[100.0, 0, 32], [0, 100, 24], [0, 0, 1]])
    assert np.allclose(fit_intrinsics(K, (64, 48), (128, 96), "c")[:2], 2 * K[:2])
    with pytest.raises(GatherError, match="different aspect ratio"):
        fit_intrinsics(K, (64, 48), (64, 64), "c")
    v = ViewSpec("a", "images/a.png", None, 64, 48, K, np.eye(3), np.zeros(3))
    with pytest.raises(GatherError, match="at least 2"):
        build_job([v], None, {})
    with pytest.raises(GatherError, match="no volume"):
        build_job([v, ViewSpec("b", "images/b.png", None, 64, 48, K, np.eye(3), np.zeros(3))],
                  ([0, 0, 0], [1, 1, 0]), {})
    for n in ("Cam.000.jpg", "Cam.001.PNG", "shot_Cam.002_final.png", "notes.txt"):
        (tmp_path / n).write_text("x")
    m = match_files(tmp_path, ["Cam.000", "Cam.001", "Cam.002", "Cam.003"])
    assert {k: p.name for k, p in m.items()} == {"Cam.000": "Cam.000.jpg", "Cam.001": "Cam.001.PNG",
                                                 "Cam.002": "shot_Cam.002_final.png"}


def test_setup_plan_and_check_summary(tmp_path: Path) -> None:
    plan = setup_plan("/usr/bin/python3", tmp_path / "venv", tmp_path / "requirements.txt", cuda=False,
                      platform="linux")
    assert plan[0].argv == ["/usr/bin/python3", "-m", "venv", str(tmp_path / "venv")]
    assert "https://download.pytorch.org/whl/cpu" in plan[2].argv
    assert plan[3].argv[-2:] == ["-r", str(tmp_path / "requirements.txt")]
    gpu = setup_plan("py", tmp_path / "venv", tmp_path / "r.txt", cuda=True, nvdiffrast=True)
    assert "diffrp-nvdiffrast" in gpu[-2].argv and "cu128" in " ".join(gpu[2].argv)
    assert gpu[-1].argv[1:] == ["-m", "backend", "check", "--strict"] and "compiles" in gpu[-1].label
    assert plan[-1].argv[1:] == ["-m", "backend", "check", "--strict"]
    assert torch_install_args(False, "darwin") == ["torch"]
    info = parse_check('noise\n{"python": "3.11.7", "torch": "2.5.0", "devices": {"cpu": true, "cuda": false},'
                       ' "rasterizers": {"torch": true, "nvdiffrast": false}, "missing_packages": [], "ok": true}')
    ok, text = summarize_check(info)
    assert ok and text == "Python 3.11.7, torch 2.5.0, devices: cpu, rasterizers: torch"
    info.update(auto_rasterizer="torch", rasterizer_errors={"nvdiffrast": "RasterizerUnavailable: plugin fails"})
    ok, text = summarize_check(info)
    assert ok and text.endswith("rasterizers: torch (auto: torch); nvdiffrast does not render: "
                                "RasterizerUnavailable: plugin fails")
    assert summarize_check({"python": "3.11", "torch": None})[0] is False
    ok, text = summarize_check(None, "ModuleNotFoundError: No module named 'torch'", 1)
    assert not ok and "Set up backend" in text


def test_presets_are_the_backend_quality_levels() -> None:
    """One definition: each add-on preset names a backend quality level, and its settings let the backend stop
    when the mesh is done (no iteration count) unless the operator gives one."""
    from backend.io.quality import LEVELS

    assert [QUALITY_PRESETS[k]["quality"] for k in ("DRAFT", "STANDARD", "HIGH")] == list(LEVELS)
    assert set(QUALITY_PRESETS) == set(PRESET_EXTRAS)
    for key, preset in QUALITY_PRESETS.items():
        level = LEVELS[preset["quality"]]
        assert preset["description"].startswith(level.description)
        settings = job_settings(key, "CPU", 640, 480)
        assert settings["quality"] == level.name and settings["iterations"] is None
    assert job_settings("DRAFT", "CPU", 640, 480, iterations=40)["iterations"] == 40


def test_preset_settings_pass_the_backend_validation() -> None:
    from backend.io.validate import validate_settings

    for key in QUALITY_PRESETS:
        out = validate_settings(job_settings(key, "AUTO", 1600, 1200, iterations=0))
        assert out["quality"] == QUALITY_PRESETS[key]["quality"]


def test_prepared_floor_is_a_unit_plane_or_nothing() -> None:
    from blender_addon.photo_job import prepared_floor

    assert prepared_floor({"floor": {"normal": [0, 0, 2], "offset": -1}}) == [0.0, 0.0, 1.0, -0.5]
    for sfm in ({}, {"floor": None}, {"floor": {"normal": [0, 0, 0], "offset": 1}}, {"floor": {"normal": "up"}},
                {"floor": {"normal": [0, 1], "offset": 0}}, None):
        assert prepared_floor(sfm) is None
    job = build_job([ViewSpec("a", "images/a.png", None, 64, 48, np.eye(3), np.eye(3), np.zeros(3)),
                     ViewSpec("b", "images/b.png", None, 64, 48, np.eye(3), np.eye(3), np.zeros(3))], None, {},
                    [0.0, 0.0, 1.0, -0.5])
    assert job["floor"] == {"normal": [0.0, 0.0, 1.0], "offset": -0.5}
