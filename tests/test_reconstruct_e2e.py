"""End to end on a Cycles-rendered Suzanne (16 views at 128x128): the optimisation beats the visual hull."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from backend.mesh.distance import sample_surface
from backend.mesh.metrics import bbox_diagonal, chamfer, load_mesh

ROOT = Path(__file__).resolve().parents[1]


def normalised_chamfer(ref: Path, mesh: Path) -> float:
    """Point-set Chamfer L1 over the reference's bbox diagonal."""
    rv, rf = load_mesh(ref)
    v, f = load_mesh(mesh)
    pa, _ = sample_surface(rv, rf, 30000, 0)
    pb, _ = sample_surface(v, f, 30000, 0)
    return chamfer(pa, pb, bbox_diagonal(rv))["chamfer_l1_norm"]


@pytest.mark.slow
def test_suzanne_reconstruction_beats_visual_hull(tmp_path: Path) -> None:
    from scenegen import render_job_subprocess

    job = render_job_subprocess(tmp_path / "job", mesh="suzanne", n_views=16, resolution=128, samples=4)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "backend", "reconstruct", str(job), "--out", str(out),
                           "--iterations", "300", "--texture-size", "256", "--preview-every", "300", "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert lines[-1] == {"type": "done", "result": "result.json"}
    result = json.loads((out / "result.json").read_text())
    ref = job / "reference.obj"
    hull = normalised_chamfer(ref, out / "previews" / "mesh_000000.ply")
    final = normalised_chamfer(ref, out / result["mesh"])
    print(f"visual hull Chamfer {100 * hull:.3f}%, final {100 * final:.3f}%, timings {result['timings_s']}")
    assert final < 0.8 * hull
    assert final < 0.01
    assert result["symmetry"] is not None and abs(result["symmetry"]["normal"][0]) > 0.95
    assert (out / result["texture"]).is_file()
