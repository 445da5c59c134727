"""Cycles-rendered test scenes written as job folders (DESIGN.md "Job folder") and phone-like photo captures.

`render_job` renders in-process through the `bpy` module; `render_job_subprocess` runs it in a
separate Python so callers that hold torch never import `bpy` themselves. `render_capture` and
`render_capture_subprocess` write a folder of JPEG photos with the truth (cameras, masks, mesh) kept apart.
"""
from __future__ import annotations

from scenegen.api import render_capture, render_capture_subprocess, render_job, render_job_subprocess

__all__ = ["render_capture", "render_capture_subprocess", "render_job", "render_job_subprocess"]
