"""One-call GPU comparison: the reference NDS method, ours with nvdiffrast, ours with our rasterizer.

    python benchmarks/gpu/compare_gpu.py --out $OUT               # on the GPU machine
    python benchmarks/gpu/compare_gpu.py --dry-run --out /tmp/x   # anywhere: everything but CUDA

All three read the same NDS-layout job (.gpujob/nds/<name>/: views/, bbox.txt, reference.obj). Each
run is a subprocess with a time limit; GPU memory is polled with `nvidia-smi` the same way for all
(peak used minus the reading just before the run). Per run: wall time, stages (ours: result.json
timings; the reference: up to its first iteration, then the loop and writing), Chamfer and normal
consistency against the ground truth, face count. Writes compare_gpu.json and compare_gpu.png.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SHIMS = HERE / "shims"
CARRY_LIMIT = 64 * 1024 * 1024
RUNS = ("reference", "nvdiffrast", "torch")
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


class GpuMemoryPoller:
    """Polls `nvidia-smi` (memory.used of GPU 0, MiB) every interval seconds in a thread."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def read() -> float | None:
        """Current memory.used of GPU 0 in MiB, or None without nvidia-smi."""
        exe = shutil.which("nvidia-smi")
        if exe is None:
            return None
        try:
            out = subprocess.run([exe, "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", "0"],
                                 capture_output=True, text=True, timeout=10)
            return float(out.stdout.strip().splitlines()[0])
        except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
            return None

    def start(self) -> None:
        """Begin polling."""
        def loop() -> None:
            while not self._stop.is_set():
                v = self.read()
                if v is not None:
                    self.samples.append(v)
                self._stop.wait(self.interval)
        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def stop(self) -> float | None:
        """Stop polling; peak MiB seen (None if nothing was read)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return max(self.samples) if self.samples else None


def run_logged(cmd: list[str], env: dict, log: Path, timeout: float, markers: dict[str, str]) -> dict:
    """Run cmd with stdout+stderr to log; times (s from start) of the first and last line matching each marker."""
    t0 = time.monotonic()
    seen: dict[str, list[float]] = {}
    lines: list[str] = []
    with open(log, "w", encoding="utf-8") as fh:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

        def reader() -> None:
            buf = b""
            while True:
                chunk = proc.stdout.read1(65536) if hasattr(proc.stdout, "read1") else proc.stdout.read(4096)
                if not chunk:
                    break
                buf += chunk
                parts = re.split(rb"[\r\n]", buf)
                buf = parts.pop()
                now = time.monotonic() - t0
                for raw in parts:
                    line = raw.decode("utf-8", "replace")
                    if not line.strip():
                        continue
                    fh.write(f"[{now:8.2f}] {line}\n")
                    lines.append(line)
                    for key, pattern in markers.items():
                        if re.search(pattern, line):
                            seen.setdefault(key, [now, now])[1] = now
            fh.flush()

        th = threading.Thread(target=reader, daemon=True)
        th.start()
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
            rc = 124 if rc is None or rc < 0 else rc
        th.join(10)
    return {"returncode": rc, "wall_s": round(time.monotonic() - t0, 2), "markers": seen, "tail": lines[-8:]}


def environment(site: Path | None) -> dict:
    """Subprocess environment: carried site-packages first, then the repository (stand-ins: with_shims.py)."""
    env = dict(os.environ)
    parts = ([str(site)] if site else []) + [str(ROOT)] + env.get("PYTHONPATH", "").split(os.pathsep)
    env["PYTHONPATH"] = os.pathsep.join(p for p in parts if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def commands(job: Path, ref: Path, work: Path, iterations: int, device: str = "cuda") -> dict[str, list[str]]:
    """The command line of each run (the reference with its own defaults, ours with the same iterations)."""
    py = sys.executable
    out = {"reference": [py, str(HERE / "ref_launcher.py"), str(ref), "--input_dir", str(job / "views"),
                         "--input_bbox", str(job / "bbox.txt"), "--output_dir", str(work / "reference"),
                         "--run_name", "run", "--iterations", str(iterations)]}
    for name in ("nvdiffrast", "torch"):
        out[name] = [py, str(HERE / "with_shims.py"), "-m", "backend", "reconstruct", str(job),
                     "--out", str(work / name), "--device", device, "--rasterizer", name,
                     "--iterations", str(iterations), "--json"]
    return out


def result_mesh(name: str, work: Path, iterations: int) -> Path:
    """Where each run leaves its final mesh."""
    if name == "reference":
        return work / "reference" / "run" / "meshes" / f"mesh_{iterations:06d}.obj"
    return work / name / "mesh.obj"


def stages(name: str, run: dict, work: Path) -> dict:
    """Seconds per stage: ours from result.json, the reference from its log's markers."""
    if name != "reference":
        res = work / name / "result.json"
        if res.is_file():
            data = json.loads(res.read_text())
            return {"timings": data.get("timings_s"), "rasterizer": data.get("rasterizer"),
                    "warnings": data.get("warnings")}
        return {}
    m = run["markers"]
    out = {}
    if "views" in m:
        out["load"] = m["views"][0]
    if "iteration" in m:
        out["setup (load, visual hull)"] = m["iteration"][0]
        out["optimize"] = round(m["iteration"][1] - m["iteration"][0], 2)
        out["write"] = round(run["wall_s"] - m["iteration"][1], 2)
    return {"timings": out}


def metrics(gt: Path, mesh: Path) -> dict:
    """Chamfer (L1, / bbox diagonal), normal consistency, F-score and face count against the ground truth."""
    from backend.mesh.metrics import compare_files, load_mesh
    m = compare_files(gt, mesh)
    return {"faces": int(len(load_mesh(mesh)[1])), "chamfer_l1_norm": m["chamfer_l1_norm"],
            "normal_consistency": m["normal_consistency"], "fscore": m["fscore"], "hausdorff_norm": m["hausdorff_norm"]}


def stand_ins_needed(env: dict) -> list[str]:
    """Which stand-in modules the subprocesses will actually import (the real package is missing)."""
    code = ("import importlib.util, json, sys; sys.path.append(%r); names = %r; "
            "print(json.dumps([n for n in names if 'shims' in (importlib.util.find_spec(n).origin or '')]))"
            % (str(SHIMS), [p.name for p in SHIMS.iterdir() if p.is_dir()]))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout) if out.returncode == 0 else [f"unknown: {out.stderr.strip()[-200:]}"]


def table_png(report: dict, path: Path) -> None:
    """Draw the results as a table PNG with Pillow (matplotlib may be missing on the GPU machine)."""
    from PIL import Image, ImageDraw
    head = ["run", "status", "wall s", "optimize s", "peak GPU MiB", "Chamfer/diag", "normal cons.", "faces"]
    rows = [head]
    for r in report["runs"]:
        t = (r.get("stages") or {}).get("timings") or {}
        opt = t.get("optimize")
        m = r.get("metrics") or {}
        fmt = lambda v, f: ("-" if v is None else format(v, f))  # noqa: E731
        rows.append([r["name"], r["status"], fmt(r.get("wall_s"), ".1f"), fmt(opt, ".1f"),
                     fmt(r.get("peak_gpu_mib"), ".0f"), fmt(m.get("chamfer_l1_norm"), ".2e"),
                     fmt(m.get("normal_consistency"), ".4f"), fmt(m.get("faces"), "d")])
    title = f"{report.get('device') or 'no GPU'} | job {report['job']['name']} | {report['iterations']} iterations"
    cw, rh = [max(len(str(row[i])) for row in rows) * 8 + 16 for i in range(len(head))], 22
    img = Image.new("RGB", (max(sum(cw), len(title) * 7) + 20, rh * (len(rows) + 1) + 20), "white")
    d = ImageDraw.Draw(img)
    d.text((10, 8), title, fill="black")
    for i, row in enumerate(rows):
        y = 10 + rh * (i + 1)
        if i == 0:
            d.rectangle([8, y - 2, 10 + sum(cw), y + rh - 4], fill=(225, 230, 240))
        x = 10
        for j, cell in enumerate(row):
            d.text((x + 4, y + 3), str(cell), fill="black")
            x += cw[j]
    img.save(path)


def carry_size() -> int:
    """Bytes in the carried folders (.whl, .gpujob, .ref)."""
    return sum(p.stat().st_size for d in (".whl", ".gpujob", ".ref") if (ROOT / d).exists()
               for p in (ROOT / d).rglob("*") if p.is_file())


def dry_run_checks(job: Path, ref: Path, env: dict) -> dict:
    """Everything but CUDA: both readers load the job alike, the swap target exists, metrics and table work."""
    import numpy as np
    checks: dict = {"carry_bytes": carry_size()}
    checks["carry_ok"] = checks["carry_bytes"] <= CARRY_LIMIT
    from backend.io.detect import load_any
    ours = load_any(job)
    checks["ours_views"] = len(ours.views)
    wheels = sorted((ROOT / ".whl").glob("diffrp_nvdiffrast-*.whl"))
    code = f"""
import json, sys
sys.path[:0] = {[str(w) for w in wheels]!r} + [{str(ref)!r}]
sys.path.append({str(SHIMS)!r})
import nvdiffrast.torch as dr
assert hasattr(dr, "RasterizeCudaContext") and hasattr(dr, "RasterizeGLContext")
from nds.utils import read_views
views = read_views({str(job / 'views')!r}, scale=1, device="cpu")
print(json.dumps([[v.camera.K.tolist(), v.camera.R.tolist(), v.camera.t.tolist(), float((v.mask > 0.5).sum()),
                   list(v.color.shape)] for v in views]))
"""
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"the reference cannot read the job:\n{out.stderr[-2000:]}")
    theirs = json.loads(out.stdout.strip().splitlines()[-1])
    diffs = []
    for v, (k, r, t, msum, shape) in zip(ours.views, theirs):
        diffs.append(max(np.abs(np.array(k) - v.K).max() / np.abs(v.K).max(), np.abs(np.array(r) - v.R).max(),
                         np.abs(np.array(t).ravel() - v.t).max()))
        if abs(msum - float((v.mask > 0.5).sum())) > 0.01 * max(msum, 1):
            raise SystemExit(f"view {v.name}: masks differ between the readers ({msum} vs {(v.mask > 0.5).sum()})")
        if shape[:2] != [v.height, v.width]:
            raise SystemExit(f"view {v.name}: sizes differ between the readers")
    checks["reference_views"] = len(theirs)
    checks["camera_max_diff"] = float(max(diffs))   # K relative to its largest entry; R, t absolute
    if len(theirs) != len(ours.views) or checks["camera_max_diff"] > 1e-4:
        raise SystemExit(f"the readers disagree: {checks}")
    gt = job / "reference.obj"
    checks["metrics_self"] = metrics(gt, gt)
    return checks


def main(argv: list[str] | None = None) -> int:
    """Run (or dry-run) the comparison; exit status 1 when a run failed."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--job", type=Path, help="NDS-layout job (default: the only folder in .gpujob/nds)")
    ap.add_argument("--ref", type=Path, default=ROOT / ".ref" / "nds")
    ap.add_argument("--out", type=Path, default=ROOT / "bench_out" / "gpu")
    ap.add_argument("--work", type=Path, default=Path("/tmp/compare_gpu"))
    ap.add_argument("--site", type=Path, default=Path("/tmp/site"), help="installed carried wheels (if present)")
    ap.add_argument("--iterations", type=int, default=int(os.environ.get("COMPARE_ITERATIONS", 2000)))
    ap.add_argument("--runs", nargs="+", default=list(RUNS), choices=RUNS)
    ap.add_argument("--timeout", type=float, default=float(os.environ.get("COMPARE_TIMEOUT", 150)),
                    help="seconds per run")
    ap.add_argument("--dry-run", action="store_true", help="check everything except CUDA; run nothing")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"],
                    help="cpu: a smoke run of ours with our rasterizer (--runs torch), same machinery")
    a = ap.parse_args(argv)
    if a.job is None:
        found = sorted(p for p in (ROOT / ".gpujob" / "nds").glob("*") if (p / "views").is_dir())
        if len(found) != 1:
            raise SystemExit(f"give --job: found {len(found)} NDS jobs in .gpujob/nds (make_jobs.sh makes one)")
        a.job = found[0]
    needs = [a.job / "views", a.job / "bbox.txt", a.job / "reference.obj"]
    if "reference" in a.runs or a.dry_run:
        needs.append(a.ref / "reconstruct.py")
    for need in needs:
        if not need.exists():
            raise SystemExit(f"missing {need} (see benchmarks/gpu/README.md)")
    env = environment(a.site if a.site.is_dir() else None)
    a.out.mkdir(parents=True, exist_ok=True)
    cmds = commands(a.job, a.ref, a.work, a.iterations, a.device)
    import torch
    report: dict = {"device": torch.cuda.get_device_name(0) if a.device == "cuda" and torch.cuda.is_available()
                    else None,
                    "torch": torch.__version__, "iterations": a.iterations, "timeout_s": a.timeout,
                    "job": {"name": a.job.name, "views": len(list((a.job / "views").glob("*_k.txt")))},
                    "reference_commit": ((a.ref / "COMMIT").read_text().strip() if (a.ref / "COMMIT").is_file()
                                         else None),
                    "stand_ins": stand_ins_needed(env), "memory_poll": "nvidia-smi memory.used, GPU 0, every 0.2 s",
                    "runs": []}
    status = 0
    if a.dry_run:
        report["dry_run"] = dry_run_checks(a.job, a.ref, env)
        report["runs"] = [{"name": n, "status": "dry run", "command": cmds[n]} for n in a.runs]
    else:
        if a.device == "cuda" and not torch.cuda.is_available():
            raise SystemExit("no CUDA here: use --dry-run (or --device cpu --runs torch)")
        if a.device == "cpu" and a.runs != ["torch"]:
            raise SystemExit("on the CPU only ours with our rasterizer runs: --runs torch")
        shutil.rmtree(a.work, ignore_errors=True)
        a.work.mkdir(parents=True)
        for name in a.runs:
            markers = ({"views": r"Found \d+ views", "iteration": r"Iteration \d+"} if name == "reference"
                       else {"stage": r'"type": ?"stage"'})
            before = GpuMemoryPoller.read()
            poller = GpuMemoryPoller()
            poller.start()
            run = run_logged(cmds[name], env, a.out / f"compare_{name}.log", a.timeout, markers)
            peak = poller.stop()
            entry = {"name": name, "command": cmds[name], "returncode": run["returncode"], "wall_s": run["wall_s"],
                     "gpu_mib_before": before,
                     "peak_gpu_mib": None if peak is None or before is None else peak - before,
                     "stages": stages(name, run, a.work)}
            mesh = result_mesh(name, a.work, a.iterations)
            if run["returncode"] == 0 and mesh.is_file():
                entry["status"] = "ok"
                entry["metrics"] = metrics(a.job / "reference.obj", mesh)
            else:
                entry["status"] = "timeout" if run["returncode"] == 124 else f"failed ({run['returncode']})"
                entry["log_tail"] = run["tail"]
                status = 1
            report["runs"].append(entry)
            print(json.dumps({k: v for k, v in entry.items() if k != "command"}), flush=True)
            (a.out / "compare_gpu.json").write_text(json.dumps(report, indent=2))
    (a.out / "compare_gpu.json").write_text(json.dumps(report, indent=2))
    table_png(report, a.out / "compare_gpu.png")
    print(f"wrote {a.out / 'compare_gpu.json'} and {a.out / 'compare_gpu.png'}")
    return status


if __name__ == "__main__":
    sys.exit(main())
