"""A small filesystem of a test's own, to fill: SQLite's full disk, for real."""

from __future__ import annotations

from pathlib import Path


def fill(disk: Path) -> Path:
    """Fill `disk` to the last byte with one file; removing it makes room again."""
    filler = disk / "filler"
    # Unbuffered: the write that finds the disk full raises, and closing has nothing left to
    # flush (a buffered file raised ENOSPC again from its close).
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 65536)
        except OSError:
            pass
    return filler
