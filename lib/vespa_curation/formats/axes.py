"""The record fields every reader of time–frequency files gives for a file's axes, so
that the same checks and columns serve every collection
(:mod:`vespa_curation.services.collections`):

``TIME_FIRST``, ``TIME_LAST``, ``N_TIMES``, ``TIME_STEP_S``, ``TIME_INCREASING``
    the time axis as the data give it (UTC datetimes, seconds);
``FREQ_MIN``, ``FREQ_MAX``, ``FREQ_STEP``, ``N_FREQ``, ``FREQ_UNIT``
    the frequency axis in its own unit.
"""
from __future__ import annotations

from typing import Any

import numpy as np

#: The fields above.
AXIS_FIELDS = ("TIME_FIRST", "TIME_LAST", "N_TIMES", "TIME_STEP_S", "TIME_INCREASING",
               "FREQ_MIN", "FREQ_MAX", "FREQ_STEP", "FREQ_UNIT")


def time_fields(t: np.ndarray) -> dict[str, Any]:
    """N_TIMES, TIME_FIRST, TIME_LAST, TIME_STEP_S (median step), TIME_INCREASING."""
    t = np.asarray(t, dtype="datetime64[ns]")
    if not len(t):
        return {"N_TIMES": 0}
    d = np.diff(t).astype("int64") / 1e9
    return {"N_TIMES": len(t), "TIME_FIRST": t[0], "TIME_LAST": t[-1],
            "TIME_STEP_S": float(np.median(d)) if len(d) else np.nan,
            "TIME_INCREASING": bool((d > 0).all())}


def frequency_fields(f: np.ndarray, unit: str | None) -> dict[str, Any]:
    """FREQ_MIN, FREQ_MAX, FREQ_STEP (median step), N_FREQ in the axis' own unit."""
    f = np.sort(np.asarray(f, dtype=float))
    return {"FREQ_MIN": float(f[0]), "FREQ_MAX": float(f[-1]), "N_FREQ": len(f),
            "FREQ_STEP": float(np.median(np.diff(f))) if len(f) > 1 else np.nan,
            "FREQ_UNIT": unit}
#: What the fields of the convention may hold (a collection's ``Files(kinds=...)``).
AXIS_KINDS = {"TIME_FIRST": "date", "TIME_LAST": "date", "N_TIMES": "int",
              "TIME_STEP_S": "float", "TIME_INCREASING": "bool", "FREQ_MIN": "float",
              "FREQ_MAX": "float", "FREQ_STEP": "float", "N_FREQ": "int",
              "FREQ_UNIT": "text"}
