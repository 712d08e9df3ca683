"""The benchmark's job functions: importable by worker processes, doing nothing."""

from __future__ import annotations


def noop() -> None:
    """Do nothing: measures jobq's overhead only."""
