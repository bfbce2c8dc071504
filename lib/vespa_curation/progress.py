"""Progress of a long stage, as a curator watching a 1.15 M-region run wants it: what is
done out of how much, the rate, and the time left — in ``run.log`` and on the terminal
(both take the package's log), at most every few seconds, and once at the end.

::

    p = Progress("harvest", total=1_150_000, unit="records")
    for chunk in chunks:
        ...
        p.update(len(chunk))
    p.close()

logs ``harvest: 230 000 of 1 150 000 records (20 %), 8 120 records/s, about 1 min 53 s
left`` and at the end ``harvest: 1 150 000 records in 2 min 22 s (8 100 records/s)``.
A stage that does not know its total logs what is done and the rate.
"""
from __future__ import annotations

import logging
import time

log = logging.getLogger("vespa_curation.progress")


def duration(seconds: float) -> str:
    """``2 h 05 min``, ``1 min 53 s``, ``4.2 s``."""
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"
    if seconds >= 60:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{seconds:.1f} s"


def _n(x: float) -> str:
    return f"{x:,.0f}".replace(",", " ")


class Progress:
    """Done / total, rate and time left of one stage, logged every ``every`` seconds."""

    def __init__(self, what: str, total: int | None = None, unit: str = "records",
                 every: float = 10.0, logger: logging.Logger | None = None):
        self.what, self.total, self.unit, self.every = what, total, unit, every
        self.log = logger or log
        self.done = 0
        self.t0 = self._last = time.monotonic()

    def update(self, n: int) -> None:
        self.done += int(n)
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            self.log.info("%s", self.line(now))

    def line(self, now: float | None = None) -> str:
        """What :meth:`update` logs."""
        elapsed = max((now or time.monotonic()) - self.t0, 1e-9)
        rate = self.done / elapsed
        text = f"{self.what}: {_n(self.done)}"
        if self.total:
            text += f" of {_n(self.total)} {self.unit} ({100 * self.done / self.total:.0f} %)"
        else:
            text += f" {self.unit}"
        text += f", {_n(rate)} {self.unit}/s"
        if self.total and rate > 0 and self.done < self.total:
            text += f", about {duration((self.total - self.done) / rate)} left"
        return text

    def close(self) -> None:
        elapsed = time.monotonic() - self.t0
        of = f" of {_n(self.total)}" if self.total else ""
        self.log.info("%s: %s%s %s in %s (%s %s/s)", self.what, _n(self.done), of,
                      self.unit, duration(elapsed), _n(self.done / max(elapsed, 1e-9)),
                      self.unit)
