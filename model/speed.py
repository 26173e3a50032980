"""The model's speed as the scheduler measures it: a step's time, a piece of score work's
time, and how the model's time is shared between the two kinds of work."""

from __future__ import annotations


class Speed:
    """A step's time as overhead + rows * per_row, learnt from the steps run (moving
    averages: the machine's load changes)."""

    def __init__(self) -> None:
        self.overhead = 0.0  # seconds a step costs whatever its rows
        self.per_row = 0.0  # and each row; 0 until measured
        self.score_overhead = 0.0  # seconds a piece of score work costs whatever its size
        self.per_position = 0.0  # and each position (a name's character or its end)
        self.generate_share = 2 / 3  # of a step's time, when it runs both kinds of work
        self.busy = 1.0  # share of the time between steps that they work
        self.turn = self.worked = 0.0  # when the last step began, what it worked

    def observe(self, rows: int, seconds: float) -> None:
        if rows <= 4:  # the overhead is most of it
            self.overhead = seconds if not self.overhead else 0.9 * self.overhead + 0.1 * seconds
        elif rows >= 32:
            per_row = max(seconds - self.overhead, seconds / 4) / rows
            self.per_row = per_row if not self.per_row else 0.9 * self.per_row + 0.1 * per_row

    def observe_turn(self, now: float, busy: bool) -> None:
        """A step starts at `now`; `busy`: there was work since the last one began."""
        if busy and self.turn:
            share = min(self.worked / (now - self.turn), 1.0)
            self.busy = 0.95 * self.busy + 0.05 * share
        self.turn, self.worked = now, 0.0

    def observe_share(self, generating: float, scoring: float) -> None:
        """A step that had both kinds of work: so many seconds of each."""
        share = generating / (generating + scoring)
        self.generate_share = 0.95 * self.generate_share + 0.05 * share

    def observe_score(self, positions: int, seconds: float) -> None:
        """A piece of score work."""
        if positions <= 16:  # the overhead is most of it
            rate = self.score_overhead
            self.score_overhead = seconds if not rate else 0.9 * rate + 0.1 * seconds
        else:
            per_position = max(seconds - self.score_overhead, seconds / 4) / positions
            rate = self.per_position
            self.per_position = per_position if not rate else 0.9 * rate + 0.1 * per_position

    def positions_within(self, seconds: float) -> int:
        """How many positions a piece of score work of `seconds` can run (64 at least)."""
        if not self.per_position:
            return 1 << 30
        return max(64, int((seconds - self.score_overhead) / self.per_position))

    def rows_within(self, seconds: float) -> int:
        """How many rows a step of `seconds` can run (16 at least)."""
        if not self.per_row:
            return 1 << 30
        return max(16, int((seconds - self.overhead) / self.per_row))
