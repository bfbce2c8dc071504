"""Quietly odd HFC active-region records: published, but flagged for a curator.

Nothing here refuses a record — each of these rows is a valid EPN-TAP row with a polygon
pgSphere accepts — but each says the catalogue holds something that cannot be right,
and the published row inherits it. :func:`flags` gives every record its flags (codes of
:mod:`vespa_curation.rules`, stage ``qa``, joined by ``+``; None when none) and a note
with the values that raised them; hfc1ar publishes them as ``qa_flags`` and
``qa_flag_notes``, the QA report lists them, the gallery draws them first and the
curator notebook browses them.

``empty_chain``
    The chain code holds no digit but FEAT_AREA_PIX counts more than one pixel: the
    published polygon is the chain's start pixel alone (area ratio 1/FEAT_AREA_PIX).
``odd_rsun``
    The apparent solar radius R_SUN × CDELT1 is outside :data:`RSUN_ARCSEC`: every
    imager HFC catalogues looks from the Earth or L1 (0.98–1.02 AU: 944″–986″), so the
    disk in pixels, or the pixel scale, is wrong — and with it the observer distance the
    Carrington polygon was computed for.
``before_instrument``
    DATE_OBS is before the spacecraft carrying the instrument was launched
    (:data:`SINCE`), or before any photograph of the Sun (:data:`FIRST_SOLAR_IMAGE`).
``negative_area``
    FEAT_AREA_PIX or FEAT_AREA_DEG2 is negative.
``uid_from_null``
    FEAT_X_PIX or FEAT_Y_PIX is NULL (or no number), so the granule_uid holds ``na``
    in its place (``ar_<date>_na_396``): two such regions of one image collide.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

#: Plausible apparent solar radius (arcsec) of an image HFC catalogues: an observer
#: between 0.96 and 1.03 AU (Earth: 944″–976″ over the year, SoHO at L1 up to 986″),
#: with a margin of a few pixels of any imager.
RSUN_ARCSEC = (930.0, 1000.0)

#: Launch date of the spacecraft (or of the spacecraft carrying the instrument), by the
#: upper-case name OBSERVAT, TELESCOP or INSTRUME hold: no image of it is older.
SINCE = {
    **dict.fromkeys(("SOHO", "MDI", "EIT", "LASCO", "CDS", "SUMER", "UVCS"),
                    ("1995-12-02", "SoHO's launch")),
    **dict.fromkeys(("SDO", "HMI", "AIA"), ("2010-02-11", "SDO's launch")),
    **dict.fromkeys(("STEREO", "STEREO_A", "STEREO_B", "STEREO-A", "STEREO-B", "SECCHI",
                     "EUVI"), ("2006-10-26", "STEREO's launch")),
    **dict.fromkeys(("TRACE",), ("1998-04-02", "TRACE's launch")),
    **dict.fromkeys(("YOHKOH", "SXT"), ("1991-08-30", "Yohkoh's launch")),
    **dict.fromkeys(("HINODE", "XRT", "SOT", "EIS"), ("2006-09-22", "Hinode's launch")),
    **dict.fromkeys(("PROBA2", "PROBA-2", "SWAP"), ("2009-11-02", "PROBA2's launch")),
}
#: The first photograph of the Sun (Fizeau and Foucault): no image of any instrument
#: is older.
FIRST_SOLAR_IMAGE = ("1845-04-02", "the first photograph of the Sun")


def _num(records: pd.DataFrame, name: str) -> np.ndarray:
    if name not in records:
        return np.full(len(records), np.nan)
    return pd.to_numeric(records[name], errors="coerce").to_numpy(dtype=float)


def _empty_chain(records: pd.DataFrame):
    chain = records["CC"].astype("string") if "CC" in records else \
        pd.Series(pd.NA, index=records.index, dtype="string")
    # a search that stops at the first direction, not a count of them all
    moves = chain.str.contains(r"[0-7]", regex=True).fillna(False).to_numpy(dtype=bool)
    area = _num(records, "FEAT_AREA_PIX")
    bad = ~moves & (area > 1)
    return bad, lambda i: (f"empty chain code with FEAT_AREA_PIX {area[i]:g}: the polygon "
                           f"is its start pixel (area ratio about {1 / area[i]:.3g})")


def _odd_rsun(records: pd.DataFrame):
    rsun = _num(records, "R_SUN") * _num(records, "CDELT1")
    lo, hi = RSUN_ARCSEC
    bad = np.isfinite(rsun) & (rsun > 0) & ((rsun < lo) | (rsun > hi))
    return bad, lambda i: (f"R_SUN x CDELT1 = {rsun[i]:.1f}\u2033, not {lo:g}-{hi:g}\u2033 "
                           "(an observer near 1 AU)")


def _since(records: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per record: the date no image of its instrument precedes, and why."""
    n = len(records)
    start = np.full(n, np.datetime64(FIRST_SOLAR_IMAGE[0], "ns"))
    why = np.full(n, FIRST_SOLAR_IMAGE[1], dtype=object)
    dates = {k: np.datetime64(d, "ns") for k, (d, _) in SINCE.items()}
    for col in ("OBSERVAT", "TELESCOP", "INSTRUME"):
        if col not in records:
            continue
        names = records[col].astype("string").str.strip().str.upper().astype(object)
        known = names.map(dates).to_numpy(dtype="datetime64[ns]")   # NaT: not listed
        later = ~np.isnat(known) & (known > start)
        start[later] = known[later]
        why[later] = [SINCE[k][1] for k in names.to_numpy()[later]]
    return start, why


def _before_instrument(records: pd.DataFrame, dates: pd.Series):
    start, why = _since(records)
    t = pd.to_datetime(dates, errors="coerce").to_numpy(dtype="datetime64[ns]")
    bad = ~np.isnat(t) & (t < start)
    return bad, lambda i: (f"DATE_OBS {str(t[i])[:19]} is before {why[i]} "
                           f"({str(start[i])[:10]})")


def _negative_area(records: pd.DataFrame):
    pix, deg2 = _num(records, "FEAT_AREA_PIX"), _num(records, "FEAT_AREA_DEG2")
    bad = (pix < 0) | (deg2 < 0)
    return bad, lambda i: f"FEAT_AREA_PIX {pix[i]:g}, FEAT_AREA_DEG2 {deg2[i]:g}"


def _uid_from_null(records: pd.DataFrame):
    x, y = _num(records, "FEAT_X_PIX"), _num(records, "FEAT_Y_PIX")
    bad = ~np.isfinite(x) | ~np.isfinite(y)

    def shown(name, v, i):
        return f"{v[i]:g}" if np.isfinite(v[i]) else (
            "NULL" if name not in records or pd.isna(records[name].iat[i])
            else f"{records[name].iat[i]!r} (no number)")
    return bad, lambda i: (f"FEAT_X_PIX {shown('FEAT_X_PIX', x, i)}, FEAT_Y_PIX "
                           f"{shown('FEAT_Y_PIX', y, i)}: the granule_uid holds 'na'")


def flags(records: pd.DataFrame, dates: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``(flags, notes)`` of each record (object arrays, None where nothing is odd):
    flag codes joined by ``+`` in the order of the module docstring, and their notes
    joined by ``; ``. ``dates`` are the records' DATE_OBS as read."""
    n = len(records)
    out: dict[int, list] = {}       # only the odd records: most are not
    notes: dict[int, list] = {}
    checks = (("empty_chain", _empty_chain(records)), ("odd_rsun", _odd_rsun(records)),
              ("before_instrument", _before_instrument(records, dates)),
              ("negative_area", _negative_area(records)),
              ("uid_from_null", _uid_from_null(records)))
    for code, (bad, note) in checks:
        for i in np.flatnonzero(bad):
            out.setdefault(i, []).append(code)
            notes.setdefault(i, []).append(note(i))
    flag = np.full(n, None, dtype=object)
    text = np.full(n, None, dtype=object)
    for i, f in out.items():
        flag[i] = "+".join(f)
        text[i] = "; ".join(notes[i])
    return flag, text
