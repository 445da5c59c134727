"""Neural deferred shading optimisation: shader, losses, render, schedule, memory, camera refinement."""
