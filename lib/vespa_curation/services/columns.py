"""Computed columns several services use: named functions ``f(records, params)``.

Each builder returns a function a service puts in its ``computed`` table, e.g.
``"time_min": jd_of("DATE_OBS")`` or ``"spectral_range_min": number("FMIN_MHZ", "MHz",
"Hz")``. Units are converted with astropy units, never by hand.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..sources.values import MAX_INT
from ..times import jd
from .declare import Computed


def _named(f, name: str):
    f.__name__ = name
    return f


def number(field: str, unit: str | None = None, to: str | None = None) -> Computed:
    """Record ``field`` as float, converted from ``unit`` to ``to`` (astropy unit names,
    e.g. ``number("FMIN_MHZ", "MHz", "Hz")``); NaN where not a number."""
    factor = 1.0
    if unit and to:
        import astropy.units as u
        factor = float(u.Unit(unit).to(u.Unit(to)))
    return _named(lambda r, p: pd.to_numeric(r[field], errors="coerce")
                  .to_numpy(dtype=float) * factor, f"number_{field.lower()}")


def constant(value: float) -> Computed:
    """A numeric constant as a float column (e.g. c2min = -90)."""
    return _named(lambda r, p: np.full(len(r), value, dtype=float), f"const_{value}")


def text(value: str) -> Computed:
    """A text constant computed per row (a value a service may compute differently
    later, e.g. a granule group)."""
    return _named(lambda r, p: np.full(len(r), value, dtype=object), f"text_{value}")


def jd_of(field: str) -> Computed:
    """Julian Date (UTC) of the record's date-time ``field``."""
    return _named(lambda r, p: jd(r[field]), f"jd_{field.lower()}")


def jd_end(end_field: str, start_field: str) -> Computed:
    """Julian Date of ``end_field``, the start's where the end is missing (a snapshot);
    an end before the start is left for the validator to refuse."""
    def f(r, p):
        end, start = jd(r[end_field]), jd(r[start_field])
        return np.where(np.isnan(end), start, end)
    return _named(f, f"jd_{end_field.lower()}")


def access_format(format_field: str, url_field: str,
                  default: str = "application/fits") -> Computed:
    """Lower-case MIME type of the file at ``url_field`` (``default`` where the source
    gives none), NULL where there is no file."""
    def f(r, p):
        fmt = r[format_field].astype("string").str.strip().str.lower()
        fmt = fmt.where(fmt.notna() & (fmt != ""), default)
        return fmt.where(r[url_field].notna(), None).astype(object).to_numpy()
    return _named(f, f"access_format_{format_field.lower()}")


def size_kb(bytes_field: str) -> Computed:
    """``access_estsize`` in whole kB (rounded up) of a size in bytes."""
    def f(r, p):
        kb = np.ceil(pd.to_numeric(r[bytes_field], errors="coerce").to_numpy(dtype=float)
                     / 1024.0)
        return pd.array(np.where(np.isfinite(kb), kb, np.nan),
                        dtype="Float64").astype("Int64")
    return _named(f, f"size_kb_{bytes_field.lower()}")


def file_stem(name_field: str, fallback_field: str) -> Computed:
    """The file name without its FITS extension (``.fits``, ``.fts``, optionally
    ``.gz``), ``fallback_field`` where there is no file name."""
    def f(r, p):
        name = r[name_field].astype("string").str.replace(r"\.(fts|fits)(\.gz)?$", "",
                                                          regex=True)
        return name.fillna(r[fallback_field].astype(str)).astype(object).to_numpy()
    return _named(f, f"file_stem_{name_field.lower()}")


def datalink_url(schema: str) -> Computed:
    """``dlmeta`` URL of each granule on the service's DaCHS datalink service."""
    def f(r, p):
        from ..datalinks import datalink_urls
        from .rowmaker import UID
        return datalink_urls(p["server_url"], schema, r[UID])
    return _named(f, "datalink_url")


def length_unit(name):
    """The astropy unit of a wavelength unit's name (``nm``, ``Angstrom``/``A``/``Å``,
    ``um``, ``m``; blank = nm), or None when ``name`` names no unit of length."""
    import astropy.units as u
    text = str(name).strip()
    text = {"angstrom": "Angstrom", "a": "Angstrom", "å": "Angstrom"}.get(
        text.lower(), text or "nm")
    try:
        unit = u.Unit(text)
    except (ValueError, TypeError):
        return None
    return unit if unit.physical_type == "length" else None


def wavelength_to_hz(values, unit: str | Sequence[str] = "nm") -> np.ndarray:
    """Wavelengths in ``unit`` (nm, Angstrom, um, m; per value when a sequence) → Hz;
    NaN where the unit is no unit of length (a service refuses such records by name)."""
    import astropy.units as u
    v = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce"), dtype=float)
    if isinstance(unit, str):
        units = np.full(v.shape, unit, dtype=object)
    elif isinstance(unit, pd.Series):
        units = unit.to_numpy(dtype=object)     # not value by value
    else:
        units = np.asarray(list(unit), dtype=object)
    out = np.full(v.shape, np.nan)
    for un in pd.unique(units):
        m = units == un
        length = length_unit(un)
        if length is not None:
            out[m] = (v[m] * length).to_value(u.Hz, equivalencies=u.spectral())
    return out


def messenger_from_wavelength(nm) -> np.ndarray:
    """EPN-TAP ``messenger`` of a wavelength in nm (vectorized)."""
    w = np.asarray(nm, dtype=float)
    edges = [0.01, 10.0, 121.0, 400.0, 750.0, 1e6, 1e7]
    names = np.array(["Gamma-ray", "X-ray", "EUV", "UV", "Optical", "Infrared",
                      "Millimeter", "Radio"], dtype=object)
    idx = np.searchsorted(edges, w, side="right")
    out = names[np.clip(idx, 0, len(names) - 1)]
    out[~np.isfinite(w)] = None
    return out


def whole(values, rounded: bool = False) -> pd.Series:
    """Values as nullable integers (``Int64``), NA where not a number or beyond ±2**53
    (where ``astype("Int64")`` would raise); rounded first when ``rounded``."""
    v = pd.to_numeric(pd.Series(values), errors="coerce").astype(float)
    if rounded:
        v = v.round()
    ok = np.isfinite(v) & (v.abs() <= MAX_INT) & (v == np.floor(v))
    return v.where(ok).astype("Int64")


def as_float(records: pd.DataFrame, name: str) -> np.ndarray:
    """Record field ``name`` as a float array (NaN where not a number)."""
    return pd.to_numeric(records[name], errors="coerce").to_numpy(dtype=float)


__all__ = ["number", "constant", "text", "jd_of", "jd_end", "access_format", "size_kb",
           "file_stem", "datalink_url", "length_unit", "wavelength_to_hz",
           "messenger_from_wavelength", "whole", "as_float", "Any"]


def uid_from(field: str):
    """A ``uid`` function: the record's ``field`` as granule_uid (e.g. a document's
    ``_ID``, as the live NRH and ORFEES services publish)."""
    return _named(lambda r: r[field].astype(object), f"uid_{field.lower().strip('_')}")
