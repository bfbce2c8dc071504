"""The embedded bass2000 sample: table IMAGES of a BASS2000-like database, in the layout
:data:`vespa_curation.services.bass2000.LAYOUT` declares — Meudon spectroheliograph
images in three filters on three days, and one row without a readable DATE_OBS (refused,
``source.bad_date``)."""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd

from ...times import iso_ms
from .layout import LAYOUT, TABLE

BASS_FILTERS = (("Halpha", "H-alpha", 656.28, 0.025), ("K3", "CaII K3", 393.37, 0.015),
                ("K1v", "CaII K1v", 393.23, 0.015))


def bass2000_rows(seed: int) -> list[dict]:
    """Rows of the sample's IMAGES table, keyed by the logical names of the layout."""
    rng = np.random.default_rng(seed + 20)
    rows = []
    n = 0
    for day in ("2005-04-19", "2005-04-20", "2005-04-21"):
        for code, name, wl, bw in BASS_FILTERS:
            n += 1
            t = pd.Timestamp(day) + pd.Timedelta(hours=8, minutes=int(rng.integers(0, 50)),
                                                 seconds=int(rng.integers(0, 60)))
            fname = f"mh{t:%y%m%d}.{t:%H%M%S}.{code.lower()}.fits"
            rows.append(dict(
                ID=n, FILENAME=fname, DATE_OBS=_iso(t),
                DATE_END=_iso(t + pd.Timedelta(seconds=int(rng.integers(40, 90)))),
                OBSERVATORY="Meudon", INSTRUMENT="Spectroheliograph", FILTER=name,
                WAVELENGTH_NM=wl, BANDWIDTH_NM=bw, EXPTIME=None, NAXIS1=1024, NAXIS2=1024,
                CDELT1=2.2, FILE_URL=f"ftp://ftpbass2000.obspm.fr/pub/meudon/{code}/"
                                     f"{t:%Y}/{fname}",
                FILE_SIZE=int(rng.integers(1_900_000, 2_200_000)), FILE_FORMAT="application/fits",
                THUMBNAIL_URL=f"https://bass2000.obspm.fr/thumbnails/{code}/{fname[:-5]}.jpg",
                MODIFIED="2026-01-01T00:00:00.000"))
    rows.append(dict(ID=n + 1, FILENAME="mh050422.bad.halpha.fits", DATE_OBS="2005-04-22 ??",
                     OBSERVATORY="Meudon", INSTRUMENT="Spectroheliograph", FILTER="H-alpha",
                     WAVELENGTH_NM=656.28, BANDWIDTH_NM=0.025,
                     FILE_URL="ftp://ftpbass2000.obspm.fr/pub/meudon/Halpha/2005/bad.fits",
                     FILE_SIZE=2_000_000, MODIFIED="2026-01-01T00:00:00.000"))
    return rows


def build_sample(outdir: Path, seed: int) -> dict[str, Path]:
    """``bass2000.sqlite``: table IMAGES in the declared layout (atomic replace)."""
    path = Path(outdir) / "bass2000.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        tmp.unlink()
    types = {"ID": "INTEGER PRIMARY KEY", "NAXIS1": "INT", "NAXIS2": "INT",
             "FILE_SIZE": "BIGINT", "WAVELENGTH_NM": "DOUBLE", "BANDWIDTH_NM": "DOUBLE",
             "EXPTIME": "DOUBLE", "CDELT1": "DOUBLE", "DATE_OBS": "DATETIME",
             "DATE_END": "DATETIME", "MODIFIED": "DATETIME"}
    con = sqlite3.connect(tmp)
    try:
        cols = ", ".join(f"{src} {types.get(name, 'VARCHAR(255)')}"
                         for name, src in LAYOUT.items())
        con.execute(f"CREATE TABLE {TABLE} ({cols})")
        con.execute(f"CREATE INDEX IX_IMAGES_DATE ON {TABLE} ({LAYOUT['DATE_OBS']})")
        names = list(LAYOUT)
        con.executemany(
            f"INSERT INTO {TABLE} ({', '.join(LAYOUT.values())}) "
            f"VALUES ({', '.join('?' * len(names))})",
            [tuple(r.get(n) for n in names) for r in bass2000_rows(seed)])
        con.commit()
    finally:
        con.close()
    os.replace(tmp, path)
    return {"bass2000": path}


def _iso(ts: pd.Timestamp) -> str:
    return iso_ms([ts])[0]
