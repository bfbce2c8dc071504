"""Embedded samples of collections declared in YAML: synthetic files written from the
declaration's ``sample`` section, deterministically (seeded), and named as synthetic.

``sample:`` holds

``cdf``
    a list of CDFs prepared for VESPA: ``name``, ``folder`` (optional), ``start``,
    ``stop``, ``records`` (time steps), ``frequency`` {``variable``, ``min``, ``max``,
    ``count``, ``unit``}, ``data`` {``name``, ``unit``} (a random spectrogram), and
    ``attributes`` (the global attributes, ``VESPA_*`` among them);
``tfcat``
    a list of TFCat catalogues: ``name``, ``title``, ``time_coords_id``, ``spectral``
    {``type``, ``unit``} and ``features``: ``[start, stop, low, high]`` boxes (times ISO
    8601, written in the catalogue's time coordinates unless ``raw`` gives them as
    numbers); ``unclosed: true`` writes rings of three positions, which the TFCat
    validator refuses;
``files``
    other files written as they are (name → text), e.g. a README;
``png``
    names of small grey PNG quicklooks to write.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..formats import tfcat
from ..formats.cdf import write_cdf
from ..formats.png import write_grey_png

#: TFCat time coordinates written: origin and unit per time_coords_id (``jd``: Julian
#: Dates).
_ORIGINS = {"unix": ("1970-01-01", 1.0), "mjd": ("1858-11-17", 86400.0),
            "mjd_cnes": ("1950-01-01", 86400.0)}


def build(outdir: Path, seed: int, name: str, spec: Mapping[str, Any],
          reader: str | None = None) -> dict[str, Path]:
    """Write the collection's sample under ``<outdir>/<name>/``."""
    rng = np.random.default_rng(seed + sum(map(ord, name)))
    root = Path(outdir) / name
    root.mkdir(parents=True, exist_ok=True)
    for f in spec.get("cdf") or ():
        _cdf(root, rng, f)
    for f in spec.get("tfcat") or ():
        _catalogue(root, f)
    for rel, text in (spec.get("files") or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(str(text), encoding="utf-8")
    for rel in spec.get("png") or ():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        write_grey_png(root / rel, rng.integers(0, 255, (24, 48)))
    return {name: root}


def _cdf(root: Path, rng, f: Mapping[str, Any]) -> Path:
    folder = root / f.get("folder", "")
    folder.mkdir(parents=True, exist_ok=True)
    times = pd.date_range(pd.Timestamp(f["start"]), pd.Timestamp(f["stop"]),
                          periods=int(f["records"])).to_numpy()
    fr = f["frequency"]
    freq = np.linspace(float(fr["min"]), float(fr["max"]), int(fr["count"]))
    data = f.get("data") or {"name": "DATA", "unit": "dB"}
    values = (rng.normal(0, 1, (len(times), len(freq))) +
              np.linspace(0, 3, len(freq))[None, :]).astype(np.float32)
    attrs = {"Generated_by": "vespa_curation (synthetic sample of a YAML collection)",
             **{k: (float(v) if isinstance(v, (int, float)) and not isinstance(v, bool)
                    else str(v)) for k, v in (f.get("attributes") or {}).items()}}
    variables = [("Epoch", times, "CDF_TIME_TT2000", {"UNITS": "ns"}, True),
                 (fr.get("variable", "Frequency"), freq.astype(np.float32), "CDF_FLOAT",
                  {"UNITS": fr["unit"]} if fr.get("unit") else {}, False),
                 (data["name"], values, "CDF_FLOAT", {"UNITS": data.get("unit", "")}, True)]
    return write_cdf(folder / f["name"], attrs, variables)


def _catalogue(root: Path, f: Mapping[str, Any]) -> Path:
    tc = f.get("time_coords_id", "unix")
    spectral = f.get("spectral") or {"type": "frequency", "unit": "kHz"}
    feats = []
    for k, (t0, t1, lo, hi) in enumerate(f["features"]):
        if f.get("raw"):
            a, b = float(t0), float(t1)
        elif tc == "jd":
            a, b = (pd.Timestamp(t).to_julian_date() for t in (t0, t1))
        else:
            origin, unit_s = _ORIGINS[tc]
            a, b = ((pd.Timestamp(t) - pd.Timestamp(origin)).total_seconds() / unit_s
                    for t in (t0, t1))
        ring = np.array([[a, lo], [b, lo], [b, hi], [a, hi], [a, lo]], dtype=float)
        geometry = tfcat.polygon(ring, time_decimals=6 if tc == "unix" else 10)
        if f.get("unclosed"):
            geometry["coordinates"] = [geometry["coordinates"][0][:3]]
        feats.append(tfcat.feature(k, geometry, {"label": f"feature {k}"}))
    crs = {"type": "local", "properties": {
        "name": "Time-Frequency", "time_coords_id": tc, "spectral_coords": dict(spectral),
        "ref_position_id": f.get("ref_position_id", "GEOCENTER")}}
    doc = tfcat.feature_collection(
        feats, fields={"label": {"info": "Feature label", "datatype": "str",
                                 "ucd": "meta.id"}},
        properties={"title": f.get("title", f["name"]), "synthetic": "yes"}, crs=crs)
    path = root / f.get("folder", "") / f["name"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return path
