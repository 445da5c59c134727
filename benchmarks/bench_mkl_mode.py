"""The neural shader's step (CPU schedule: 6 frequencies, 128 wide, 6144 samples, forward + backward + two
shader-only steps) timed under MKL's conditional-reproducibility modes, each in a fresh process, alternating.

`python benchmarks/bench_mkl_mode.py [--modes 'AUTO;AUTO,STRICT;AVX2'] [--rounds 3] [--steps 200]`: prints one JSON
line per (round, mode) with seconds per step and whether two runs of the same steps gave bit-identical weights.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time, torch
from backend.optim.shader import NeuralShader
from backend.optim.losses import shading_loss
from backend.optim.schedule import make_schedule
sch = make_schedule(100, 256, "cpu")
steps = int(sys.argv[1])

def run(seed):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(1)
    shader = NeuralShader(sch.shader_freqs, sch.shader_hidden, late_view=sch.shader_late_view)
    opt = torch.optim.Adam(shader.parameters(), lr=sch.lr_shader)
    n = int(sch.shade_pixels * sch.later_shade)
    pos, nrm = torch.rand(n, 3, generator=g) * 2 - 1, torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=1)
    vdir, target = torch.zeros(n, 3), torch.rand(n, 3, generator=g)
    t = time.perf_counter()
    for _ in range(steps):
        for _ in range(1 + sch.shader_extra_steps):
            opt.zero_grad(set_to_none=True)
            shading_loss(shader(pos, nrm, vdir), target).backward()
            opt.step()
    return (time.perf_counter() - t) / steps, torch.cat([p.detach().flatten() for p in shader.parameters()])

run(0)
s1, w1 = run(0)
s2, w2 = run(0)
print(json.dumps({"s_per_step": round(min(s1, s2), 5), "identical": bool(torch.equal(w1, w2))}))
"""


def main() -> None:
    """Alternate the modes over rounds, each a fresh process with MKL_CBWR set."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modes", default="AUTO;AUTO,STRICT;AVX2", help="MKL_CBWR values separated by ';'")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=200)
    args = ap.parse_args()
    for r in range(args.rounds):
        for mode in args.modes.split(";"):
            env = {**os.environ, "MKL_CBWR": mode, "PYTHONPATH": str(REPO)}
            out = subprocess.run([sys.executable, "-c", CHILD, str(args.steps)], cwd=REPO, env=env, capture_output=True,
                                 text=True, check=True)
            print(json.dumps({"round": r, "mode": mode, **json.loads(out.stdout.strip().splitlines()[-1])}), flush=True)


if __name__ == "__main__":
    main()
