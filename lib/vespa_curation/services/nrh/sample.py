"""The embedded nrh sample: an NDJSON dump of an ``nrh`` index in the layout
:data:`vespa_curation.services.nrh.LAYOUT` declares; one document ends before it
starts (refused, ``source.time_order``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ...sources.documents import random_id, write_dump
from ...times import iso_ms
from .layout import LAYOUT, NRH_FREQUENCIES_MHZ

def nrh_hits(seed: int) -> list[dict]:
    """Documents of the sample's ``nrh`` index (layout of services.nrh.LAYOUT)."""
    rng = np.random.default_rng(seed + 30)
    hits = []
    for k, day in enumerate(pd.date_range("2012-01-09", periods=5, freq="D")):
        t0 = day + pd.Timedelta(hours=8, minutes=int(rng.integers(0, 30)),
                                seconds=int(rng.integers(0, 60)), milliseconds=999)
        t1 = day + pd.Timedelta(hours=15, minutes=int(rng.integers(0, 59)))
        freqs = list(NRH_FREQUENCIES_MHZ) if k != 2 else list(NRH_FREQUENCIES_MHZ[1:6])
        fname = f"nrh2_0000_h80_{t0:%Y%m%d_%H%M%S}c04_b.fts"
        src = {
            LAYOUT["DATE_OBS"]: iso_ms([t0])[0] + "Z", LAYOUT["DATE_END"]: iso_ms([t1])[0] + "Z",
            LAYOUT["FILENAME"]: fname,
            LAYOUT["FILE_URL"]: f"https://rsdb.obs-nancay.fr/nrh/{t0:%Y/%m/%d}/{fname}",
            LAYOUT["FILE_SIZE"]: int(rng.integers(200_000_000, 400_000_000)),
            LAYOUT["FILE_FORMAT"]: "application/fits",
            LAYOUT["FREQUENCIES"]: freqs, LAYOUT["INTEGRATION"]: 0.25,
            LAYOUT["OBS_MODE"]: "2D images"}
        hits.append({"_index": "nrh", "_id": random_id(rng), "_source": src})
    bad = dict(hits[-1]["_source"])
    bad[LAYOUT["DATE_END"]] = "2012-01-13T07:00:00.000Z"
    bad[LAYOUT["DATE_OBS"]] = "2012-01-14T08:00:00.000Z"
    hits.append({"_index": "nrh", "_id": random_id(rng), "_source": bad})
    return hits


def build_sample(outdir: Path, seed: int) -> dict[str, Path]:
    """``nrh.ndjson``: the sample's dump."""
    return {"nrh": write_dump(nrh_hits(seed), Path(outdir) / "nrh.ndjson")}
