"""A read following a flight (flight.py): where it stands and where it reads from."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Mode(enum.Enum):
    """Where a follower reads: the window in memory, the spool, or on its own (left behind)."""

    MEMORY = 1
    SPOOL = 2
    DETACHED = 3


@dataclass(eq=False)
class Follower:
    """One read following a flight: the next byte it needs, where it stops, where it reads."""

    cursor: int
    end: int
    mode: Mode
    fill: bool = False  # the spool's writer: never shed, holds the window at `spool.written`

    @property
    def detached(self) -> bool:
        """Left behind by its flight (a slow reader, without a spool)."""
        return self.mode is Mode.DETACHED
