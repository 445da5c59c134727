"""Run `-m module args` or `script args` with the stand-in modules appended to sys.path.

Appended after site-packages (PYTHONPATH would put them first), so an installed package always wins
and a stand-in is only imported where the package is missing (see shims/README.md).
"""
from __future__ import annotations

import runpy
import sys
from pathlib import Path

SHIMS = Path(__file__).resolve().parent / "shims"


def add_shims() -> None:
    """Append the stand-in folder to sys.path (once)."""
    if str(SHIMS) not in sys.path:
        sys.path.append(str(SHIMS))


def main() -> None:
    """Run the module or script named on the command line as __main__."""
    add_shims()
    if len(sys.argv) > 2 and sys.argv[1] == "-m":
        module = sys.argv[2]
        sys.argv = [module] + sys.argv[3:]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    else:
        sys.argv = sys.argv[1:]
        runpy.run_path(sys.argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
