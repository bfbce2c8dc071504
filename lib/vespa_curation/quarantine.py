"""The quarantine table: one line per broken rule of a refused record.

Columns ``granule_uid, source_id, stage, rule, reason``: ``rule`` a code of the
:mod:`vespa_curation.rules` catalogue, ``reason`` a sentence naming the record and what
is wrong with it. A run writes it as ``quarantine.csv``; nothing refused is ever dropped
without a line here.
"""
from __future__ import annotations

import pandas as pd

from . import rules

#: Columns of the quarantine table.
QUARANTINE_COLUMNS = ["granule_uid", "source_id", "stage", "rule", "reason"]


def empty() -> pd.DataFrame:
    """A quarantine table without lines."""
    return pd.DataFrame(columns=QUARANTINE_COLUMNS)


def quarantine_frame(uids, source_ids, stage: str, rule_codes, reasons) -> pd.DataFrame:
    """A quarantine table from aligned sequences (``rule_codes`` catalogued in
    :mod:`vespa_curation.rules`, else :class:`~vespa_curation.rules.UnknownRule`)."""
    codes = list(rule_codes)
    rules.check(codes)
    n = len(codes)
    return pd.DataFrame({
        "granule_uid": list(uids), "source_id": [str(s) for s in source_ids],
        "stage": [stage] * n, "rule": codes, "reason": list(reasons)},
        columns=QUARANTINE_COLUMNS)


__all__ = ["QUARANTINE_COLUMNS", "empty", "quarantine_frame"]
