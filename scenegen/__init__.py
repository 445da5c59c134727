"""Cycles-rendered test scenes written as job folders (DESIGN.md "Job folder").

`render_job` renders in-process through the `bpy` module; `render_job_subprocess` runs it in a
separate Python so callers that hold torch never import `bpy` themselves.
"""
from __future__ import annotations

from scenegen.api import render_job, render_job_subprocess

__all__ = ["render_job", "render_job_subprocess"]
