"""The embedded orfees sample: an NDJSON dump of an ``orfees`` index in the layout
:data:`vespa_curation.services.orfees.LAYOUT` declares; one document ends before it
starts (refused, ``source.time_order``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ...sources.documents import random_id, write_dump
from ...times import iso_ms
from .layout import LAYOUT

def orfees_hits(seed: int) -> list[dict]:
    """Documents of the sample's ``orfees`` index (layout of services.orfees.LAYOUT)."""
    rng = np.random.default_rng(seed + 40)
    hits = []
    for day in pd.date_range("2012-01-09", periods=4, freq="D"):
        t0 = day + pd.Timedelta(hours=7, minutes=59, seconds=59)
        t1 = day + pd.Timedelta(hours=15, minutes=int(rng.integers(30, 59)))
        fname = f"int_orf{t0:%Y%m%d_%H%M%S}_0.1.fts"
        hits.append({"_index": "orfees", "_id": random_id(rng), "_source": {
            LAYOUT["DATE_OBS"]: iso_ms([t0])[0] + "Z", LAYOUT["DATE_END"]: iso_ms([t1])[0] + "Z",
            LAYOUT["FILENAME"]: fname,
            LAYOUT["FILE_URL"]: f"https://rsdb.obs-nancay.fr/orfees/{t0:%Y/%m}/{fname}",
            LAYOUT["FILE_SIZE"]: int(rng.integers(300_000_000, 600_000_000)),
            LAYOUT["FILE_FORMAT"]: "application/fits",
            LAYOUT["FREQ_MIN"]: 144.0, LAYOUT["FREQ_MAX"]: 1004.0,
            LAYOUT["TIME_RES"]: 0.1,
            LAYOUT["QUICKLOOK_URL"]: f"https://rsdb.obs-nancay.fr/QL/Orfees/png/"
                                     f"orf{t0:%Y%m%d}.png"}})
    bad = dict(hits[0]["_source"])
    bad[LAYOUT["DATE_END"]] = "2012-01-01T00:00:00.000Z"
    hits.append({"_index": "orfees", "_id": random_id(rng), "_source": bad})
    return hits


def build_sample(outdir: Path, seed: int) -> dict[str, Path]:
    """``orfees.ndjson``: the sample's dump."""
    return {"orfees": write_dump(orfees_hits(seed), Path(outdir) / "orfees.ndjson")}
