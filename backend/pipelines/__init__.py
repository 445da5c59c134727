"""Pipelines: what one command runs, calling the stages below."""
