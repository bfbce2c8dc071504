"""Refusing records by rule in a service's ``prepare`` step.

:class:`Refusals` sets ``rule`` and ``reason`` on the records a check refuses — the
first rule a record breaks wins — with reasons that name the record (``TABLE.ID=…``
or ``nrh document _id=…``), and :func:`time_order` is the check most services share.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd

from ..times import to_datetime
from .rowmaker import REASON, RULE


class Refusals:
    """The refusals of one chunk of records (set on the frame itself).

    Parameters
    ----------
    records : DataFrame
        The chunk; a copy gets ``rule``/``reason`` columns (None = still in).
    who : callable
        ``who(records) -> sequence of str`` naming each record in reasons
        (e.g. ``"ACTIVEREGIONS.ID_AR=12"``).
    """

    def __init__(self, records: pd.DataFrame, who: Callable[[pd.DataFrame], Sequence[str]]):
        self.records = records.copy()
        self.records[RULE] = None
        self.records[REASON] = None
        self._who = np.asarray(list(who(self.records)), dtype=object)

    @property
    def ok(self) -> np.ndarray:
        """Records no rule refused so far."""
        return self.records[RULE].isna().to_numpy()

    def refuse(self, mask, rule, reasons) -> None:
        """Refuse the records of ``mask`` that are still in, under ``rule`` (a code, or
        an array of codes aligned with the records) with ``reasons`` (a sentence, an
        array aligned with the records, or ``f(i) -> sentence`` of a record's index)."""
        mask = np.asarray(mask, dtype=bool) & self.ok
        if not mask.any():
            return
        idx = np.flatnonzero(mask)
        rules = rule if isinstance(rule, str) else np.asarray(rule, dtype=object)[idx]
        if callable(reasons):
            why = [reasons(i) for i in idx]
        elif isinstance(reasons, str):
            why = [reasons] * len(idx)
        else:
            why = list(np.asarray(reasons, dtype=object)[idx])
        self.records.loc[self.records.index[idx], RULE] = rules
        self.records.loc[self.records.index[idx], REASON] = [
            f"{w}: {r}" for w, r in zip(self._who[idx], why)]


def time_order(refusals: Refusals, start: str, end: str) -> None:
    """Refuse records whose ``start`` is not a date (``source.bad_date``) or whose
    ``end`` precedes it (``source.time_order``)."""
    r = refusals.records
    t0, t1 = to_datetime(r[start]), to_datetime(r[end])
    refusals.refuse(t0.isna().to_numpy(), "source.bad_date",
                    lambda i: f"{start.lower()} {r[start].iat[i]!r} is not a date")
    refusals.refuse((t1 < t0).to_numpy(), "source.time_order",
                    lambda i: f"{end.lower()} {r[end].iat[i]!r} is before "
                              f"{start.lower()} {r[start].iat[i]!r}")
