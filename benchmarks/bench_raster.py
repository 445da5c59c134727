"""Rasterizer micro-benchmark: rasterize + interpolate + antialias, forward and backward.

Vertices (positions + a constant channel, C = 4) are interpolated, antialiased and reduced with a fixed
random weight image, so the timed work is the three primitives and their gradients. "cpu_time" is the
process CPU time per step (all threads): on a shared machine it shows the work independent of waiting.

    python benchmarks/bench_raster.py [--faces 20000] [--res 512 512] [--views 1] [--repeats 15]
                                      [--rasterizer torch] [--device cpu] [--kernels auto|numba|torch]
                                      [--json bench_out/raster.json]

Prints the median milliseconds per part and writes them to a JSON file.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

# torch's OpenMP workers otherwise spin after each op and starve numba's threads (6x slower on 2 cores);
# this must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from backend.cameras.projection import world_to_clip  # noqa: E402
from backend.raster import TorchRasterizer, get_rasterizer  # noqa: E402


def icosphere(min_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit icosphere subdivided until it has at least min_faces faces, with a bumpy radius."""
    t = (1 + 5 ** 0.5) / 2
    v = [[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t], [0, -1, -t], [0, 1, -t],
         [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]]
    f = [[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4], [11, 10, 2],
         [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9], [4, 9, 5], [2, 4, 11],
         [6, 2, 10], [8, 6, 7], [9, 8, 1]]
    verts = [np.array(p, dtype=np.float64) / np.linalg.norm(p) for p in v]
    faces = np.array(f, dtype=np.int64)
    while len(faces) < min_faces:
        cache: dict[tuple[int, int], int] = {}

        def mid(a: int, b: int) -> int:
            key = (min(a, b), max(a, b))
            if key not in cache:
                p = verts[a] + verts[b]
                verts.append(p / np.linalg.norm(p))
                cache[key] = len(verts) - 1
            return cache[key]

        new = []
        for a, b, c in faces:
            ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
            new += [[a, ab, ca], [b, bc, ab], [c, ca, bc], [ab, bc, ca]]
        faces = np.array(new, dtype=np.int64)
    vv = np.array(verts)
    bump = 1 + 0.1 * np.sin(5 * vv[:, 0]) * np.cos(4 * vv[:, 1]) + 0.05 * np.sin(7 * vv[:, 2])
    return vv * bump[:, None], faces.astype(np.int32)


def look_at_views(n: int, width: int, height: int, dist: float = 3.2) -> np.ndarray:
    """(n, 4, 4) world-to-clip matrices of cameras on a sphere looking at the origin (OpenCV)."""
    mats = []
    golden = math.pi * (3 - 5 ** 0.5)
    for i in range(n):
        y = 1 - 2 * (i + 0.5) / n if n > 1 else 0.3
        r = math.sqrt(max(0.0, 1 - y * y))
        c = dist * np.array([r * math.cos(golden * i), y, r * math.sin(golden * i)])
        fwd = -c / np.linalg.norm(c)
        right = np.cross(fwd, [0.0, 1.0, 0.0])
        right /= np.linalg.norm(right)
        down = np.cross(fwd, right)
        rot = np.stack([right, down, fwd])
        f = 1.1 * max(width, height)
        k = np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]])
        mats.append(world_to_clip(k, rot, -rot @ c, width, height))
    return np.stack(mats)


def make_scene(faces: int, width: int, height: int, views: int, device: torch.device
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """World vertices (V, 3) float32, triangles (F, 3) int32 and view matrices (B, 4, 4) on device."""
    v, f = icosphere(faces)
    mats = look_at_views(views, width, height)
    return (torch.tensor(v, dtype=torch.float32, device=device), torch.tensor(f, device=device),
            torch.tensor(mats, dtype=torch.float32, device=device))


def step(r, verts: torch.Tensor, tri: torch.Tensor, mats: torch.Tensor, res: tuple[int, int],
         weight: torch.Tensor, timings: dict[str, list[float]] | None, sync) -> None:
    """One forward + backward of rasterize -> interpolate -> antialias, recording per-part times."""
    def mark() -> float:
        sync()
        return time.perf_counter()

    c0 = time.process_time()
    t0 = mark()
    homo = torch.cat([verts, torch.ones_like(verts[:, :1])], 1)
    pos = torch.einsum("vi,bji->bvj", homo, mats)
    rast = r.rasterize(pos, tri, res)
    t1 = mark()
    attr = torch.cat([verts, torch.ones_like(verts[:, :1])], 1)
    gbuf = r.interpolate(attr, rast, tri)
    t2 = mark()
    img = r.antialias(gbuf, rast, pos, tri)
    t3 = mark()
    (img * weight).sum().backward()
    t4 = mark()
    c1 = time.process_time()
    if timings is not None:
        for k, v in (("rasterize", t1 - t0), ("interpolate", t2 - t1), ("antialias", t3 - t2),
                     ("backward", t4 - t3), ("total", t4 - t0), ("cpu_time", c1 - c0)):
            timings[k].append(1000 * v)


def run(rasterizer: str, device: str, faces: int, width: int, height: int, views: int, repeats: int,
        kernels: str = "auto") -> dict:
    """Median milliseconds per part for one configuration (plus peak CUDA memory where relevant).

    kernels ("numba" / "torch", ours only) forces our implementation: "torch" on the CPU times the
    code that runs on CUDA, which a machine without a GPU can still compare between versions.
    """
    r = get_rasterizer(rasterizer, device)
    if kernels != "auto":
        r = TorchRasterizer(r.device, kernels=kernels)
    dev = r.device
    verts, tri, mats = make_scene(faces, width, height, views, dev)
    verts.requires_grad_(True)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    res = (height, width)
    weight = torch.rand((views, height, width, 4), generator=torch.Generator().manual_seed(0)).to(dev)
    for _ in range(2):
        step(r, verts, tri, mats, res, weight, None, sync)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    timings: dict[str, list[float]] = {k: [] for k in ("rasterize", "interpolate", "antialias", "backward", "total",
                                                       "cpu_time")}
    for _ in range(repeats):
        verts.grad = None
        step(r, verts, tri, mats, res, weight, timings, sync)
    with torch.no_grad():
        homo = torch.cat([verts, torch.ones_like(verts[:, :1])], 1)
        cover = float((r.rasterize(torch.einsum("vi,bji->bvj", homo, mats), tri, res)[..., 3] > 0).float().mean())
    out = {"rasterizer": r.name, "kernels": getattr(r, "kernels", None), "device": str(dev),
           "faces": int(tri.shape[0]), "width": width, "height": height,
           "views": views, "repeats": repeats, "coverage": round(cover, 4), "torch_threads": torch.get_num_threads(),
           "load_avg_1min": round(os.getloadavg()[0], 2), "cpu_count": os.cpu_count(),
           "median_ms": {k: round(statistics.median(v), 2) for k, v in timings.items()},
           "min_ms": {k: round(min(v), 2) for k, v in timings.items()}}
    if dev.type == "cuda":
        out["peak_memory_mb"] = round(torch.cuda.max_memory_allocated(dev) / 2 ** 20, 1)
    return out


def main(argv: list[str] | None = None) -> dict:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=int, default=20000)
    ap.add_argument("--res", type=int, nargs=2, default=[512, 512], metavar=("W", "H"))
    ap.add_argument("--views", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--rasterizer", default="torch")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--kernels", default="auto", choices=["auto", "numba", "torch"], help="ours only")
    ap.add_argument("--json", default="bench_out/raster.json")
    a = ap.parse_args(argv)
    result = run(a.rasterizer, a.device, a.faces, a.res[0], a.res[1], a.views, a.repeats, a.kernels)
    print(f"{result['rasterizer']} on {result['device']}: {result['faces']} faces, {a.res[0]}x{a.res[1]}, "
          f"{a.views} view(s), coverage {result['coverage']:.1%}")
    for k, v in result["median_ms"].items():
        print(f"  {k:12s} {v:8.2f} ms (median of {a.repeats}, min {result['min_ms'][k]:.2f})")
    if "peak_memory_mb" in result:
        print(f"  peak memory  {result['peak_memory_mb']:.1f} MB")
    path = Path(a.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
