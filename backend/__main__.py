"""`python -m backend`: see backend.cli."""
import os
import sys

# Idle OpenMP threads of torch must sleep, not spin: they otherwise starve numba's rasterizer threads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from backend.cli import main  # noqa: E402  (after the environment is set)

if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown (torch, numba): a cancelled run must be gone within a second.
    os._exit(code)
