"""End to end on a Cycles torus (16 views at 128x128) with a hole punched into the masks of 2 views: the
reconstruction keeps the true genus (1, no tunnel) and comes close to the clean run's Chamfer distance."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from backend.io.job import load_job
from backend.mesh.metrics import genus, load_mesh
from test_reconstruct_e2e import normalised_chamfer

ROOT = Path(__file__).resolve().parents[1]


def reconstruct(job: Path, out: Path) -> dict:
    """`backend reconstruct` on the job (300 steps on the CPU); its result.json."""
    proc = subprocess.run([sys.executable, "-m", "backend", "reconstruct", str(job), "--out", str(out),
                           "--device", "cpu", "--iterations", "300", "--texture-size", "128", "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "result.json").read_text())


@pytest.mark.slow
def test_punched_masks_keep_the_torus_genus(tmp_path: Path) -> None:
    from scenegen import render_job_subprocess
    from scenegen.damage import enclosed_views, punch_job, tube_point

    clean = render_job_subprocess(tmp_path / "clean", mesh="torus", n_views=16, resolution=128, samples=4)
    ref = clean / "reference.obj"
    point = tube_point(load_mesh(ref)[0])
    views = enclosed_views(load_job(clean).views, point, 6.0, 2)
    assert len(views) == 2
    names = punch_job(clean, tmp_path / "punched", views, point, 6.0)

    punched = reconstruct(tmp_path / "punched", tmp_path / "out_punched")
    assert punched["mask_consensus"]["ran"] and punched["mask_consensus"]["contradicted"] == names
    assert all(punched["mask_consensus"]["pixels"][n] > 100 for n in names)
    assert genus(*load_mesh(tmp_path / "out_punched" / punched["mesh"])) == 1

    plain = reconstruct(clean, tmp_path / "out_clean")
    assert plain["mask_consensus"]["contradicted"] == []
    assert genus(*load_mesh(tmp_path / "out_clean" / plain["mesh"])) == 1
    ours = normalised_chamfer(ref, tmp_path / "out_punched" / punched["mesh"])
    base = normalised_chamfer(ref, tmp_path / "out_clean" / plain["mesh"])
    print(f"Chamfer clean {100 * base:.3f}%, punched {100 * ours:.3f}%")
    assert ours < 1.15 * base
