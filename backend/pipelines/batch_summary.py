"""Batch summary: one row per job (status, error, device, stage timings, faces, metrics) as JSON and CSV."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from backend.runtime.result import atomic_write_bytes, write_json

STAGE_ORDER = ("load", "sfm", "masks", "visual_hull", "topology", "optimize", "decimate", "symmetry", "uv", "texture", "write")
METRIC_KEYS = ("chamfer_l1_norm", "normal_consistency", "fscore")
CSV_FIRST = ("name", "status", "skipped", "attempts", "error", "hint", "device", "rasterizer", "faces",
             "vertices", "seconds", *METRIC_KEYS)
CSV_LAST = ("iterations", "host", "input", "result", "log", "metrics_error")


def result_fields(result_dir: Path) -> dict:
    """Device, rasterizer, faces, vertices, iterations and stage timings from a finished result.json."""
    try:
        result = json.loads((Path(result_dir) / "result.json").read_text())
    except (OSError, ValueError):
        return {}
    fields = {k: result.get(k) for k in ("device", "rasterizer", "faces", "vertices")}
    fields["iterations"] = result.get("iterations_run", result.get("iterations"))
    fields["timings_s"] = dict(result.get("timings_s") or {})
    return fields


def job_row(name: str, input_path: Path, result_dir: Path, log: Path, status: str, **extra: object) -> dict:
    """A summary row; a finished job's row carries what its result.json says."""
    row: dict = {"name": name, "input": str(input_path), "status": status, "result": str(result_dir),
                 "log": str(log)}
    if status == "done":
        row.update(result_fields(result_dir))
    metrics = extra.pop("metrics", None) or {}
    row.update({k: v for k, v in extra.items() if v is not None})
    row.update(metrics)
    return row


def csv_text(rows: list[dict]) -> str:
    """The rows as CSV: fixed leading columns, one `t_<stage>` column per stage seen, then the rest."""
    stages = {s for r in rows for s in (r.get("timings_s") or {})}
    ordered = [s for s in STAGE_ORDER if s in stages] + sorted(stages - set(STAGE_ORDER))
    columns = [*CSV_FIRST, *(f"t_{s}" for s in ordered), *CSV_LAST]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        flat = {k: v for k, v in r.items() if k != "timings_s"}
        flat.update({f"t_{s}": t for s, t in (r.get("timings_s") or {}).items()})
        writer.writerow(flat)
    return buf.getvalue()


def counts(rows: list[dict]) -> dict[str, int]:
    """How many jobs are done (of which skipped as already complete), failed, cancelled, pending or running."""
    out = {"jobs": len(rows), "done": 0, "skipped": 0, "failed": 0, "cancelled": 0, "pending": 0, "running": 0}
    for r in rows:
        out[r["status"]] = out.get(r["status"], 0) + 1
        out["skipped"] += bool(r.get("skipped"))
    return out


def write_summary(out: Path, rows: list[dict], info: dict) -> None:
    """OUT/summary.json and OUT/summary.csv, each written atomically."""
    write_json(Path(out) / "summary.json", {**info, **counts(rows), "rows": rows})
    atomic_write_bytes(Path(out) / "summary.csv", csv_text(rows).encode())


def previous_rows(out: Path) -> dict[str, dict]:
    """Rows of an earlier summary.json in OUT by job name (empty when there is none)."""
    try:
        old = json.loads((Path(out) / "summary.json").read_text())
        return {r["name"]: r for r in old.get("rows", []) if isinstance(r, dict) and "name" in r}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}
