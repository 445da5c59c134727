"""Build dist/photomesh-<version>.zip: the add-on (folder photomesh/) with backend/ bundled inside it."""
from __future__ import annotations

import argparse
import ast
import re
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
ADDON_SRC = ROOT / "blender_addon"
BACKEND_SRC = ROOT / "backend"
PACKAGE = "photomesh"
SKIP_DIRS = {"__pycache__", ".pytest_cache", "tests"}
SKIP_SUFFIXES = {".pyc", ".pyo", ".blend1"}


def addon_version() -> tuple[int, int, int]:
    """The version in bl_info of blender_addon/__init__.py."""
    tree = ast.parse((ADDON_SRC / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "bl_info" for t in node.targets):
            return tuple(ast.literal_eval(node.value)["version"])
    raise SystemExit("bl_info not found in blender_addon/__init__.py")


def manifest_version() -> str:
    """The version in blender_addon/blender_manifest.toml."""
    text = (ADDON_SRC / "blender_manifest.toml").read_text(encoding="utf-8")
    match = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
    if match is None:
        raise SystemExit("version not found in blender_manifest.toml")
    return match.group(1)


def _files(src: Path) -> list[Path]:
    """Files under src worth shipping, sorted."""
    out = []
    for p in sorted(src.rglob("*")):
        rel = p.relative_to(src)
        if p.is_dir() or any(part in SKIP_DIRS for part in rel.parts) or p.suffix in SKIP_SUFFIXES:
            continue
        out.append(p)
    return out


def build(out_dir: Path = ROOT / "dist") -> Path:
    """Write the zip and return its path."""
    version = ".".join(map(str, addon_version()))
    if manifest_version() != version:
        raise SystemExit(f"bl_info version {version} != blender_manifest.toml version {manifest_version()}")
    if not (BACKEND_SRC / "__init__.py").is_file():
        raise SystemExit("backend/ package not found")
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{PACKAGE}-{version}.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in _files(ADDON_SRC):
            zf.write(p, f"{PACKAGE}/{p.relative_to(ADDON_SRC).as_posix()}")
        for p in _files(BACKEND_SRC):
            zf.write(p, f"{PACKAGE}/backend/{p.relative_to(BACKEND_SRC).as_posix()}")
        licence = ROOT / "LICENSE"
        if licence.is_file():
            zf.write(licence, f"{PACKAGE}/LICENSE")
    return target


def main(argv: list[str] | None = None) -> int:
    """Command line: build the zip, print its path."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=ROOT / "dist", help="output folder (default: dist/)")
    args = ap.parse_args(argv)
    print(build(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
