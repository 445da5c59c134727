"""CLI: exit codes and error lines, `check`, SIGTERM cancel, a small full run on a synthetic sphere."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import trimesh

from backend.io.job import write_job
from backend.io.views import Scene, View
from test_geometry_visual_hull import sphere_views

ROOT = Path(__file__).resolve().parents[1]


def run_backend(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `python -m backend ...` from the repository root."""
    return subprocess.run([sys.executable, "-m", "backend", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)})


def json_lines(text: str) -> list[dict]:
    """Every stdout line must be one JSON object."""
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture(scope="module")
def sphere_job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A job folder of a coloured sphere seen by 12 cameras at 96x96."""
    views = []
    for i, sv in enumerate(sphere_views(n=12, res=96, f=120.0)):
        h, w = sv.mask.shape
        ramp = np.linspace(0.2, 0.9, w, dtype=np.float32)[None, :]
        image = np.stack([np.broadcast_to(ramp, (h, w)), np.full((h, w), 0.5, np.float32),
                          np.broadcast_to(ramp.T[:h], (h, w)) if h == w else np.full((h, w), 0.3, np.float32)], -1)
        views.append(View(f"cam_{i:03d}", image * sv.mask[..., None], sv.mask, sv.K, sv.R, sv.t))
    scene = Scene(views, (np.full(3, -0.7), np.full(3, 0.7)))
    return write_job(scene, tmp_path_factory.mktemp("sphere") / "job")


def test_bad_job_gives_error_line_with_hint_and_exit_2(tmp_path: Path) -> None:
    job = tmp_path / "job"
    job.mkdir()
    (job / "job.json").write_text(json.dumps({"version": 1, "views": [], "colour": "red"}))
    proc = run_backend("reconstruct", str(job), "--out", str(tmp_path / "out"), "--json")
    assert proc.returncode == 2, proc.stderr
    lines = json_lines(proc.stdout)
    assert lines[0] == {"type": "stage", "name": "load"}
    err = lines[-1]
    assert err["type"] == "error" and err["message"] and err["hint"]
    assert not (tmp_path / "out" / "result.json").exists()


def test_missing_job_folder_exit_2(tmp_path: Path) -> None:
    proc = run_backend("reconstruct", str(tmp_path / "nope"), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    err = json_lines(proc.stdout)[-1]
    assert err["type"] == "error" and "does not exist" in err["message"] and err["hint"]


@pytest.mark.parametrize("flag,value,setting", [("--texture-size", "1000000", "texture_size"),
                                                ("--max-faces", "10", "max_faces")])
def test_out_of_range_setting_exits_2_before_heavy_work(sphere_job: Path, tmp_path: Path, flag: str, value: str,
                                                        setting: str) -> None:
    proc = run_backend("reconstruct", str(sphere_job), "--out", str(tmp_path / "out"), flag, value, "--json")
    assert proc.returncode == 2, proc.stderr
    lines = json_lines(proc.stdout)
    assert [x["name"] for x in lines if x["type"] == "stage"] == ["load"]
    err = lines[-1]
    assert err["type"] == "error" and setting in err["message"] and " to " in err["hint"]
    assert not (tmp_path / "out").exists()


def test_check_reports_environment() -> None:
    proc = run_backend("check")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["torch"] and info["devices"]["cpu"] and info["rasterizers"]["torch"] is True
    assert info["python"].startswith("3.")


def test_sigterm_cancels_within_a_second_and_leaves_no_result(sphere_job: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "backend", "reconstruct", str(sphere_job), "--out", str(out),
                             "--iterations", "100000", "--json"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        for line in proc.stdout:
            if json.loads(line)["type"] == "progress":
                break
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=10)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code != 0
    assert elapsed < 1.5
    assert not (out / "result.json").exists() and not (out / "mesh.obj").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


def test_small_full_run_writes_result_folder(sphere_job: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run_backend("reconstruct", str(sphere_job), "--out", str(out), "--iterations", "40",
                       "--texture-size", "128", "--preview-every", "20", "--max-faces", "1000", "--json")
    assert proc.returncode == 0, proc.stderr
    lines = json_lines(proc.stdout)
    stages = [x["name"] for x in lines if x["type"] == "stage"]
    assert stages == ["load", "visual_hull", "optimize", "decimate", "symmetry", "uv", "texture", "write"]
    assert lines[-1] == {"type": "done", "result": "result.json"}
    previews = [x["mesh"] for x in lines if x["type"] == "preview"]
    assert previews == ["previews/mesh_000000.ply", "previews/mesh_000020.ply", "previews/mesh_000040.ply"]
    assert all((out / p).is_file() for p in previews)
    progress = [x for x in lines if x["type"] == "progress"]
    opt = [x for x in progress if x["stage"] == "optimize"]
    assert opt[-1]["step"] == 40 and opt[-1]["total"] == 40 and "mask" in opt[-1]["losses"]
    result = json.loads((out / "result.json").read_text())
    for key in ("mesh", "texture", "symmetry", "timings_s", "device", "rasterizer", "iterations", "vertices",
                "faces", "losses"):
        assert key in result
    assert result["device"] == "cpu" and result["iterations"] == 40 and result["stop_reason"] == "iterations"
    topo = result["topology"]
    assert topo["ran"] is False and topo["reason"].startswith("auto") and topo["genus_before"] == 0
    assert topo["disagreement_before"] < 0.08 and "topology" not in result["timings_s"]
    assert result["mask_consensus"] == {"ran": True, "reason": "ran", "contradicted": [], "pixels": {}}
    dec = result["decimation"]
    assert dec["applied"] and dec["faces_before"] > 1000 >= dec["faces_after"] and dec["max_faces"] == 1000
    assert 0 < dec["chamfer_l1_norm"] < 0.01
    assert result["uv"]["charts"] > 0 and 0 < result["uv"]["packing_efficiency"] <= 1 and result["uv"]["seconds"] >= 0
    for stage in ("uv", "texture"):
        steps = [x for x in progress if x["stage"] == stage]
        assert steps and steps[-1]["step"] == steps[-1]["total"], f"no progress to the end of {stage}"
    assert "eta_s" not in opt[0], "time left extrapolated from the first step (it holds the JIT compile)"
    assert all("eta_s" in x for x in progress if x is not opt[0]), "a progress line without the time left"
    assert (out / result["texture"]).is_file() and (out / "mesh.mtl").is_file()
    mesh = trimesh.load(out / result["mesh"], force="mesh")
    radius = np.linalg.norm(mesh.vertices, axis=1)
    assert abs(radius.mean() - 0.5) < 0.04
    assert result["symmetry"] is not None and result["symmetry"]["score"] < 0.01


def test_quality_flag_and_fixed_iterations_reach_the_settings() -> None:
    """--quality on reconstruct and photos; no --iterations leaves the setting to the job (null: converge)."""
    from backend.cli import build_parser, settings_overrides

    parser = build_parser()
    for command in (["reconstruct", "J", "--out", "O"], ["photos", "P", "--out", "O"]):
        assert settings_overrides(parser.parse_args([*command, "--quality", "high"])) == {"quality": "high"}
        assert settings_overrides(parser.parse_args([*command, "--iterations", "500"])) == {"iterations": 500}
        assert settings_overrides(parser.parse_args(command)) == {}
        with pytest.raises(SystemExit):
            parser.parse_args([*command, "--quality", "ultra"])


def test_batch_set_quality_becomes_the_flag() -> None:
    from backend.cli import build_parser
    from backend.pipelines.batch_plan import parse_set, settings_flags, subparser

    parser = build_parser()
    for command in ("reconstruct", "photos"):
        assert settings_flags(subparser(parser, command), parse_set(["quality=draft"])) == ["--quality", "draft"]


def test_convert_and_compare_commands(sphere_job: Path, tmp_path: Path) -> None:
    proc = run_backend("convert", str(sphere_job), "--to", "job", str(tmp_path / "copy"))
    assert proc.returncode == 0, proc.stderr
    copied = json.loads((tmp_path / "copy" / "job.json").read_text())
    assert len(copied["views"]) == 12
    a, b = tmp_path / "a.obj", tmp_path / "b.obj"
    trimesh.creation.icosphere(3).export(a)
    trimesh.creation.icosphere(3, radius=1.01).export(b)
    proc = run_backend("compare", str(a), str(b), "--json")
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(proc.stdout)
    assert 0.005 < metrics["chamfer_l1"] < 0.02


@pytest.mark.slow
def test_topology_on_runs_the_stage_at_the_first_remesh(sphere_job: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run_backend("reconstruct", str(sphere_job), "--out", str(out), "--iterations", "12", "--topology", "on",
                       "--texture-size", "64", "--max-faces", "1000", "--json", timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = json_lines(proc.stdout)
    stages = [x["name"] for x in lines if x["type"] == "stage"]
    assert stages == ["load", "visual_hull", "optimize", "topology", "optimize", "decimate", "symmetry", "uv",
                      "texture", "write"]
    topo_lines = [x for x in lines if x["type"] == "progress" and x["stage"] == "topology"]
    assert topo_lines[-1]["step"] == topo_lines[-1]["total"] == 100 and "mask" in topo_lines[-1]["losses"]
    opt_steps = [x["step"] for x in lines if x["type"] == "progress" and x["stage"] == "optimize"]
    assert opt_steps == sorted(opt_steps) and opt_steps[-1] == 12
    result = json.loads((out / "result.json").read_text())
    topo = result["topology"]
    assert topo["ran"] is True and topo["reason"] == "topology is on" and topo["steps"] == 100
    assert topo["genus_before"] == 0 and topo["genus_after"] == 0 and topo["accepted"] is False
    assert 0 <= topo["disagreement_after"] < 0.1 and topo["worst_view"].startswith("cam_")
    assert topo["seconds"] > 0 and result["timings_s"]["topology"] == pytest.approx(topo["seconds"], abs=1e-3)


def test_bad_topology_flag_is_refused(sphere_job: Path, tmp_path: Path) -> None:
    proc = run_backend("reconstruct", str(sphere_job), "--out", str(tmp_path / "out"), "--topology", "maybe")
    assert proc.returncode == 2 and "--topology" in proc.stderr


def two_overlapping_spheres() -> tuple[trimesh.Trimesh, trimesh.Trimesh]:
    """Unit icospheres one radius apart in one file (a quarter of the area inside the other sphere), and their
    outer shell: the triangles whose centroid lies outside the other sphere."""
    a = trimesh.creation.icosphere(4)
    v = np.concatenate([a.vertices, a.vertices + (1.0, 0.0, 0.0)])
    f = np.concatenate([a.faces, a.faces + len(a.vertices)])
    centroids = v[f].mean(axis=1)
    other = np.where(np.arange(len(f)) < len(a.faces), np.linalg.norm(centroids - (1, 0, 0), axis=1),
                     np.linalg.norm(centroids, axis=1))
    return trimesh.Trimesh(v, f, process=False), trimesh.Trimesh(v, f[other > 1.0], process=False)


def test_compare_outer_leaves_the_buried_caps_out(tmp_path: Path) -> None:
    ref, shell = two_overlapping_spheres()
    a, b = tmp_path / "assembly.obj", tmp_path / "shell.obj"
    ref.export(a)
    shell.export(b)
    proc = run_backend("compare", str(a), str(b), "--json")
    assert proc.returncode == 0, proc.stderr
    whole = json.loads(proc.stdout)
    proc = run_backend("compare", str(a), str(b), "--outer", "--json")
    assert proc.returncode == 0, proc.stderr
    outer = json.loads(proc.stdout)
    assert "reference_outer" not in whole and "buried_area_fraction" not in whole
    assert outer["reference_outer"] is True
    assert outer["buried_area_fraction"] == pytest.approx(0.25, abs=0.01)  # caps of area pi on spheres of 4 pi
    assert outer["chamfer_l1_norm"] < 1e-4 and outer["fscore"] > 0.999 and outer["normal_consistency"] > 0.999
    assert whole["chamfer_l1_norm"] > 0.005 and whole["recall"] < 0.9 and whole["hausdorff_norm"] > 0.1
    assert outer["diag"] == pytest.approx(whole["diag"]) == pytest.approx(np.sqrt(17))
    proc = run_backend("compare", "-h")
    assert "--outer" in proc.stdout and "outer surface" in proc.stdout


@pytest.mark.parametrize("preset, expected", [(None, "AUTO,STRICT"), ("AVX2", "AVX2")])
def test_backend_asks_mkl_for_reproducible_results_before_torch_loads(preset: str | None, expected: str) -> None:
    """Same seed, same mesh: the backend sets MKL's strict reproducibility mode (a user's own setting wins) before
    anything loads torch, whose matrix products otherwise vary in their last bits from run to run."""
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}
    if preset is not None:
        env["MKL_CBWR"] = preset
    code = "import sys, os, backend; print(os.environ['MKL_CBWR'], 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**env, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [expected, "False"]
