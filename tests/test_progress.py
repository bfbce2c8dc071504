"""Progress of long stages: done of total, rate, time left, in the log (run.log)."""
from __future__ import annotations

import logging

from vespa_curation import harvest
from vespa_curation.config import load_config
from vespa_curation.progress import Progress, duration


def test_a_progress_line_says_done_total_rate_and_time_left():
    p = Progress("hfc1ar harvest", total=1_150_000)
    p.done = 230_000
    line = p.line(now=p.t0 + 28.3)
    assert line == ("hfc1ar harvest: 230 000 of 1 150 000 records (20 %), 8 127 "
                    "records/s, about 1 min 53 s left")
    q = Progress("export", unit="rows")
    q.done = 5000
    assert q.line(now=q.t0 + 2.0) == "export: 5 000 rows, 2 500 rows/s"
    assert duration(7530) == "2 h 05 min" and duration(4.21) == "4.2 s"


def test_a_harvest_logs_its_progress_against_the_source_count(tmp_path, caplog):
    from vespa_curation.samples import build_samples
    out = build_samples(tmp_path / "s")
    cfg = load_config("hfc1ar", overrides={"source": f"sqlite:///{out['hfc']}",
                                           "workers": 1, "outputs": str(tmp_path / "r"),
                                           "dachs_inputs": str(tmp_path / "d")})
    with caplog.at_level(logging.INFO, logger="vespa_curation.progress"):
        h = harvest.run(cfg, tmp_path / "r" / "x" / "hfc1ar")
    n = h["counts"]["source_records"]
    lines = [r.getMessage() for r in caplog.records if r.name == "vespa_curation.progress"]
    assert any(m.startswith(f"hfc1ar harvest: {n} of {n} records in ") for m in lines), lines
