"""Batch planning: what each input is, where its result goes, which are already done, the command to run.

Pure file-system logic, no Ray: the driver plans here, the Ray task cleans up with `clean_partial`.
"""
from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from backend.runtime.errors import JobError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp"}
GT_NAME = "gt.obj"


@dataclass
class BatchJob:
    """One input of a batch: its name (the result folder under OUT), the command that runs it, its files."""

    name: str
    input: Path
    command: str  # "reconstruct" or "photos"
    result_dir: Path
    gt: Path | None = None
    argv: list[str] = field(default_factory=list)  # arguments after `python -m backend`
    error: JobError | None = None  # known to fail before running (e.g. photos without the photos command)


def input_name(path: Path) -> str:
    """The result folder name of an input: the folder's name (a job.json or transforms.json file: its folder's)."""
    path = Path(path).resolve()
    return path.parent.name if path.is_file() else path.name


def unique_names(paths: list[Path]) -> list[str]:
    """Result names for the inputs, in order; a repeated name gets -2, -3... (stable for the same argument order)."""
    seen: dict[str, int] = {}
    names = []
    for p in paths:
        base = input_name(p)
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return names


def is_photo_folder(path: Path) -> bool:
    """A folder holding image files and nothing else (hidden files aside): input of the `photos` command."""
    path = Path(path)
    if not path.is_dir():
        return False
    entries = [p for p in path.iterdir() if not p.name.startswith(".")]
    return bool(entries) and all(p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES for p in entries)


def input_command(path: Path) -> str:
    """'photos' for a folder of only images, else 'reconstruct' (which reports an unreadable layout itself)."""
    from backend.io.detect import detect_layout

    try:
        detect_layout(path)
        return "reconstruct"
    except JobError:
        return "photos" if is_photo_folder(path) else "reconstruct"


def result_complete(result_dir: Path) -> bool:
    """True when result_dir holds a valid result.json whose mesh file exists (a finished run)."""
    try:
        result = json.loads((Path(result_dir) / "result.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(result, dict) and bool(result.get("mesh")) and (Path(result_dir) / result["mesh"]).is_file()


def clean_partial(result_dir: Path) -> None:
    """Remove what a stopped run can leave: staging/old siblings of result_dir, and result_dir unless complete."""
    result_dir = Path(result_dir)
    parent = result_dir.parent
    if parent.is_dir():
        for prefix in (f".{result_dir.name}.tmp-", f".{result_dir.name}.old-"):
            for stale in parent.glob(f"{prefix}*"):
                shutil.rmtree(stale, ignore_errors=True)
    if result_dir.exists() and not result_complete(result_dir):
        shutil.rmtree(result_dir, ignore_errors=True)


def parse_set(items: list[str]) -> dict:
    """`key=value` strings to settings; values read as JSON (30, 0.5, true, null) or else kept as text."""
    from backend.io.validate import validate_settings
    from backend.io.views import DEFAULT_SETTINGS

    out: dict = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise JobError(f"--set {item!r} is not key=value", "Write e.g. --set iterations=300.")
        if key not in DEFAULT_SETTINGS:
            raise JobError(f"--set {key}: unknown setting",
                           f"Settings that exist: {', '.join(sorted(DEFAULT_SETTINGS))}.")
        try:
            out[key] = json.loads(text)
        except ValueError:
            out[key] = text
    validate_settings(out)
    return out


def subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser | None:
    """The sub-command parser `command` of `parser`, or None when the backend has no such command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices.get(command)
    return None


def settings_flags(subparser: argparse.ArgumentParser, settings: dict) -> list[str]:
    """Command-line flags of `subparser` that set `settings` (a setting it has no flag for is a JobError)."""
    flags = []
    by_dest = {a.dest: a for a in subparser._actions if a.option_strings}
    for key, value in settings.items():
        action = by_dest.get(key)
        if action is None:
            raise JobError(f"--set {key}: the {subparser.prog.split()[-1]} command has no option for this setting",
                           "Set it in the job's job.json instead.")
        option = action.option_strings[-1]
        if value is None:
            raise JobError(f"--set {key}=null cannot be passed on the command line",
                           "Leave it out (the job's own setting is used), or give a value.")
        if action.nargs == 0:  # a store_true switch
            if value is True:
                flags.append(option)
            elif value is not False:
                raise JobError(f"--set {key}={value}: expected true or false", f"Write --set {key}=true.")
            else:
                raise JobError(f"--set {key}=false cannot override a job's setting",
                               "Leave it out, or change it in the job's job.json.")
        else:
            flags += [option, str(value).lower() if isinstance(value, bool) else str(value)]
    return flags


def plan_jobs(inputs: list[Path], out: Path, settings: dict, gt_dir: Path | None,
              parser: argparse.ArgumentParser) -> list[BatchJob]:
    """One BatchJob per input: name, command and its arguments, result folder, ground truth if any."""
    names = unique_names(inputs)
    jobs = []
    for path, name in zip(inputs, names):
        path = Path(path).resolve()
        command = input_command(path)
        result_dir = Path(out).resolve() / name
        folder = path.parent if path.is_file() else path
        gt = folder / GT_NAME if (folder / GT_NAME).is_file() else None
        if gt_dir is not None and (Path(gt_dir) / f"{name}.obj").is_file():
            gt = (Path(gt_dir) / f"{name}.obj").resolve()
        job = BatchJob(name, path, command, result_dir, gt)
        sub = subparser(parser, command)
        if not path.exists():
            job.error = JobError(f"input {path} does not exist", "Check the path; give a job or photo folder.")
        elif sub is None:
            job.error = JobError(f"{path} is a folder of photos, and this backend has no `photos` command",
                                 "Run the photos through structure from motion first (a backend with "
                                 "`python -m backend photos`), or give a job folder.")
        else:
            job.argv = [command, str(path), "--out", str(result_dir), "--json", *settings_flags(sub, settings)]
        jobs.append(job)
    return jobs
