"""The topology stage inside `reconstruct`: decided and run at the first remesh, its mesh kept or not."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from backend.mesh.metrics import genus as mesh_genus
from backend.runtime.protocol import Reporter
from backend.topology.decide import accept, should_run, silhouette_disagreement
from backend.topology.stage import TopologySettings, run_topology_stage


class TopologyHook:
    """Called by `optimize` before each remesh; acts at the first: decides, runs the stage, keeps its mesh or not,
    and records result.json `topology` and `timings_s.topology`."""

    def __init__(self, setting: str, start_from_file: bool, masks_auto: bool, reporter: Reporter,
                 elapsed: Callable[[], float], settings: TopologySettings = TopologySettings(),
                 hull_genus: int | None = None) -> None:
        self.setting = setting
        self.hull_genus = hull_genus
        self.start_from_file = start_from_file
        self.masks_auto = masks_auto
        self.reporter = reporter
        self.elapsed = elapsed
        self.settings = settings
        self.called = False
        self.seconds = 0.0
        self.info: dict = {"ran": False, "reason": "topology is off: the surface keeps the genus of its starting mesh"
                           if setting == "off" else "the run had no remesh step, where the topology stage would run"}

    def disagreement(self, opt: Any, step: int, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
        """Per-view silhouette disagreement of a mesh at the step's resolution, with the given cameras."""
        sch = opt.schedule
        level = opt.views.level(sch.max_sides[min(sch.phase(step), len(sch.max_sides) - 1)])
        return silhouette_disagreement(opt.rasterizer, vertices, faces, level.mvps, level.masks, level.sizes)

    def __call__(self, opt: Any, step: int, edge_length: float) -> None:
        """At the first call: decide, and when it runs, hand the optimiser the stage's mesh if it is accepted."""
        if self.called or self.setting == "off":
            self.called = True
            return
        self.called = True
        t0 = time.monotonic()
        v, f = opt.mesh()
        genus = mesh_genus(v, f)
        before = self.disagreement(opt, step, v, f)
        worst = int(np.argmax(before))
        run, reason = should_run(self.setting, self.start_from_file, self.masks_auto, genus, float(before[worst]),
                                 self.hull_genus)
        self.info = {"ran": run, "reason": reason, "genus_before": genus, "hull_genus": self.hull_genus,
                     "worst_view": opt.views.views[worst].name, "worst_view_disagreement": round(float(before[worst]), 4),
                     "disagreement_before": round(float(before.mean()), 4)}
        self.reporter.log(f"topology: {reason}")
        if not run:
            self.seconds = time.monotonic() - t0
            return
        self.reporter.stage("topology")
        self.reporter.progress("topology", 0, self.settings.steps, {}, self.elapsed())
        def judge(sv: np.ndarray, sf: np.ndarray) -> tuple[bool, float]:
            return mesh_genus(sv, sf) != genus, float(self.disagreement(opt, step, sv, sf).mean())

        out = run_topology_stage(opt, v, f, edge_length, step, poll=self.reporter.check_cancel,
                                 progress=lambda i, n, losses: self.reporter.progress("topology", i, n, losses,
                                                                                      self.elapsed()),
                                 settings=self.settings, judge=judge)
        genus_after = mesh_genus(out.vertices, out.faces)
        after = self.disagreement(opt, step, *out.surface)
        ok, why = accept(genus, genus_after, float(before.mean()), float(after.mean()))
        if ok:
            opt.set_mesh(out.vertices, out.faces)
        self.seconds = time.monotonic() - t0
        self.info.update({"genus_after": genus_after, "accepted": ok, "decision": why,
                          "seconds": round(self.seconds, 3), "steps": out.steps, "grid_res": out.grid_res,
                          "chosen_step": out.chosen_step,
                          "edge_length": round(float(edge_length), 5),
                          "disagreement_after": round(float(after.mean()), 4)})
        if not out.remesh_ok:
            self.info["remesh_message"] = out.message
        self.reporter.log(f"topology: {why}; {'kept' if ok else 'not kept'}")
        self.reporter.stage("optimize")
