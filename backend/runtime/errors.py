"""Errors the backend reports to the user on the progress protocol."""
from __future__ import annotations


class JobError(Exception):
    """A problem with the user's input: reported as an `error` line with a hint, exit code 2."""

    def __init__(self, message: str, hint: str = "", view: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.view = view

    def to_dict(self) -> dict:
        """The protocol's error object."""
        d = {"type": "error", "message": self.message, "hint": self.hint}
        if self.view is not None:
            d["view"] = self.view
        return d


class Cancelled(Exception):
    """The run was cancelled (SIGTERM or Ctrl-C); nothing half-written is left behind."""
