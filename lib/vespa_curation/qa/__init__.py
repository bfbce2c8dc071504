"""The QA stage: figures of the regions (chain-code contour beside the published
s_region), summaries, ``report.html`` and ``report.json`` (:mod:`.report`); the curator's
widgets (:mod:`.widgets`) and the offline Aladin view (:mod:`.aladin`, :mod:`.hips`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping


def run(params: Mapping[str, Any], run_dir) -> dict:
    """QA figures and the run report of ``run_dir`` (``figures/``, ``report.html``,
    ``report.json``)."""
    from .report import build_report
    return build_report(params, Path(run_dir))
