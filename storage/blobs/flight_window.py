"""The bytes of a flight held in memory, as the store sent them (no copy): the stretch
[base, position) of the blob, for the followers to read at their own pace."""

from __future__ import annotations

import bisect

from .base import Piece


class Window:
    def __init__(self, start: int) -> None:
        self.base = self.position = start
        self._pieces: list[memoryview] = []
        self._offsets: list[int] = []  # where each piece starts

    def append(self, piece: Piece) -> None:
        self._pieces.append(memoryview(piece))
        self._offsets.append(self.position)
        self.position += len(piece)

    def skip(self, length: int) -> None:
        """`length` bytes went by without entering memory (to a lone reader): what was held
        goes too, as nothing could follow on from it."""
        self._pieces.clear()
        self._offsets.clear()
        self.position += length
        self.base = self.position

    def piece(self, cursor: int, end: int) -> memoryview | None:
        """The bytes from `cursor` to the end of the piece holding them (at most to `end`)."""
        if cursor >= self.position or cursor < self.base:
            return None
        index = bisect.bisect_right(self._offsets, cursor) - 1
        piece, offset = self._pieces[index], self._offsets[index]
        return piece[cursor - offset : min(len(piece), end - offset)]

    def trim(self, floor: int, keep: int) -> None:
        """Drop what nobody needs (the bytes before `floor`), oldest first, but only as far as
        keeping `keep` bytes must: while there is room, bytes already read stay for reads that
        join late (a storm does not arrive in one instant)."""
        drop = 0
        while (
            drop < len(self._pieces)
            and self.position - self._offsets[drop] > keep
            and self._offsets[drop] + len(self._pieces[drop]) <= floor
        ):
            drop += 1
        if drop:
            del self._pieces[:drop]
            del self._offsets[:drop]
        self.base = self._offsets[0] if self._pieces else self.position
