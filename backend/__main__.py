"""`python -m backend`: see backend.cli."""
import os
import sys

from backend.cli import main

if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown (torch, numba): a cancelled run must be gone within a second.
    os._exit(code)
