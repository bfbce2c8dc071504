"""Collections declared in YAML alone: ``parameters/collections/<schema>.yaml``.

A curator publishes a folder of files prepared for VESPA (CDFs with ``VESPA_*`` global
attributes, TFCat catalogues, FITS files) without writing Python: the declaration names
the files, the reader, the constants and overrides, the article and the dataset DOI,
and the links found by naming; :func:`load_collection` turns it into a
:class:`~.declare.Service` like any other, discovered beside the Python ones. Every key
is checked: an unknown key, a required EPN-TAP column no attribute, constant or
override can fill, or a bad value is refused by name before anything runs.

The generic VESPA mapping (:func:`attribute_column`): each column of ``columns`` is
filled from the file's ``VESPA_<column>`` attribute — converted from
``VESPA_<column>_unit`` to the column's EPN-TAP unit with astropy units, the short form
of ``SHORT>Long`` values where EPN-TAP wants a name, the long form where the column is
descriptive, ``#`` lists kept — else from ``constants``; ``overrides`` always win. Times
and spectral ranges come from the data (the ``Epoch`` and frequency variables, or the
catalogue's features); where an attribute disagrees, the data win and the row carries
the finding. ``VESPA_*`` attributes that name no declared column are reported per row
(``qa_unknown_attributes``), never silently dropped.
"""
from __future__ import annotations

import re
from functools import partial
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
import yaml

from .. import datalinks, epncore
from ..formats.cdf import long_form, read_vespa_cdf, short_form
from ..formats.fits import read_fits_header
from ..formats.tfcat import read_catalogue
from ..parameter import ParameterError
from ..sources import Files
from ..times import to_datetime
from . import collection_sample
from .collections import AXIS_COLUMNS, AXIS_KINDS, FILE_COLUMNS, archive_param, attribute_value, \
    check_file, file_url
from .columns import datalink_url
from .declare import Service

#: Keys of a declaration: key → what it holds.
KEYS = {
    "title": "the service's title (RD)", "description": "what the collection is (RD)",
    "creator": "who made the data (RD)", "subjects": "subject keywords (RD)",
    "doi": "the dataset's DOI (RD metadata, and a #documentation link)",
    "bib_reference": "the article (DOI or bibcode): bib_reference where a file gives none",
    "files": "patterns, reader (vespa-cdf, tfcat, fits), frequency, time, "
             "retract_missing, spectrum_variable",
    "columns": "epn_core columns filled from the files' VESPA_<column> attributes",
    "constants": "column → value where the files give none",
    "overrides": "column → value, always (over the files' attributes)",
    "links": "datalinks: {semantics, file | url, content_type, description}",
    "archive_url": "public URL of the collection's folder (a file's access_url prefix)",
    "source": "default source (files:DIR)", "spatial_frame_type": "EPN-TAP frame (none)",
    "sample": "the embedded sample: files to synthesise (see docs/services.md)",
}
FILE_KEYS = {"patterns", "reader", "frequency", "time", "retract_missing",
             "spectrum_variable"}
LINK_KEYS = {"semantics", "file", "url", "content_type", "description"}
#: Kinds of the fields the readers compute (the VESPA_* attributes are the files'
#: own: a number, a text or a list, checked where a column takes them).
READER_KINDS = {**AXIS_KINDS, "N_FEATURES": "int", "TFCAT_VALID": "bool",
                "TFCAT_OUTSIDE": "text", "TFCAT_REPORT": "text"}
#: Columns whose value is a name: the short form of ``SHORT>Long``.
NAME_COLUMNS = frozenset({"instrument_host_name", "instrument_name", "target_name",
                          "target_class", "dataproduct_type", "alt_target_name",
                          "messenger", "time_scale", "publisher", "spatial_frame_type",
                          "measurement_type"})
#: Required columns a declaration must be able to fill (the others are given).
MUST_FILL = ("dataproduct_type", "target_class")


class DeclarationError(ParameterError):
    """A collection's declaration is refused; the message names the file and the key."""


def folder() -> Path:
    from ..paths import PARAMETERS
    return PARAMETERS / "collections"


def names() -> list[str]:
    """The schemas declared in ``parameters/collections/*.yaml``."""
    d = folder()
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def load_collection(path: str | Path) -> Service:
    """The service a YAML declaration describes (see the module docstring)."""
    path = Path(path)
    decl = _read(path)
    name = path.stem
    where = f"{path.name}"
    files = dict(decl.get("files") or {})
    harvester = _harvester(files, decl.get("links") or (), where)
    constants, overrides = dict(decl.get("constants") or {}), dict(decl.get("overrides")
                                                                    or {})
    overrides.setdefault("time_scale", "UTC")     # the readers convert times to UTC
    if decl.get("bib_reference") and "bib_reference" not in overrides:
        constants.setdefault("bib_reference", decl["bib_reference"])
    columns = list(decl.get("columns") or [])
    catalogue = files.get("reader") == "tfcat"
    if catalogue:
        constants.setdefault("dataproduct_type", "ca")
    _check_columns(where, columns, constants, overrides)
    computed = {**AXIS_COLUMNS, **FILE_COLUMNS, "datalink_url": datalink_url(name)}
    for col in sorted(set(columns) | set(constants) | set(overrides)):
        computed[col] = attribute_column(col, constants.get(col), overrides.get(col))
    extra = ()
    if catalogue:
        extra = (epncore.extra_column("feature_count", "Integer", "Number of features "
                                      "(time-frequency regions) in the TFCat catalogue",
                                      ucd="meta.number"),)
        computed["feature_count"] = lambda r, p: pd.to_numeric(r["N_FEATURES"]).to_numpy()
    return Service(
        name=name, title=_need(decl, "title", where), spatial_frame_type=decl.get(
            "spatial_frame_type", "none"),
        description=" ".join(str(_need(decl, "description", where)).split()),
        creator=_need(decl, "creator", where), subjects=tuple(_need(decl, "subjects", where)),
        source=harvester, fields={"obs_id": "PRODUCT"},
        constants={"granule_gid": name}, computed=computed,
        uid=lambda r: r["PRODUCT"].astype(object),
        prepare=partial(prepare, columns=tuple(columns), catalogue=catalogue),
        links=partial(links, declared=tuple(decl.get("links") or ()), doi=decl.get("doi")),
        qa_fields=("PATH", "VERSION", "ATTR_MISMATCH", "UNKNOWN_ATTRIBUTES",
                   *(("TFCAT_REPORT",) if catalogue else ()),
                   *[f"LINK_{k}" for k in range(len(decl.get("links") or ()))]),
        params=(archive_param(decl.get("archive_url", "https://example.org/" + name)),),
        defaults={"source": decl.get("source", f"files:outputs/samples/{name}")},
        sample=partial(collection_sample.build, name=name, spec=decl.get("sample") or {},
                       reader=files.get("reader")) if decl.get("sample") else None,
        spectrum=_spectrum(files),
        meta={k: v for k, v in (("doi", decl.get("doi")),
                                ("source", decl.get("bib_reference"))) if v},
        extra_columns=extra)


def _read(path: Path) -> dict:
    try:
        decl = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise DeclarationError(f"{path}: not a YAML declaration ({exc})") from None
    if not isinstance(decl, dict):
        raise DeclarationError(f"{path}: a declaration is a mapping of key: value")
    unknown = sorted(set(decl) - set(KEYS))
    if unknown:
        raise DeclarationError(f"{path.name}: unknown key {unknown[0]!r}; accepted: "
                               + ", ".join(KEYS))
    if not re.fullmatch(r"[a-z][a-z0-9_]*", path.stem):
        raise DeclarationError(f"{path.name}: the file name is the schema: lower-case "
                               "letters, digits and _")
    return decl


def _need(decl: Mapping, key: str, where: str):
    if not decl.get(key):
        raise DeclarationError(f"{where}: key {key!r} is required ({KEYS[key]})")
    return decl[key]


def _harvester(files: Mapping, links_decl, where: str) -> Files:
    unknown = sorted(set(files) - FILE_KEYS)
    if unknown:
        raise DeclarationError(f"{where}: files: unknown key {unknown[0]!r}; accepted: "
                               + ", ".join(sorted(FILE_KEYS)))
    readers = {"vespa-cdf": partial(read_vespa_cdf, frequency=files.get("frequency",
                                                                          "Frequency"),
                                    time=files.get("time")),
               "tfcat": read_catalogue, "fits": read_fits_header}
    if files.get("reader") not in readers:
        raise DeclarationError(f"{where}: files: reader {files.get('reader')!r} is not one "
                               "of " + ", ".join(readers))
    if not files.get("patterns"):
        raise DeclarationError(f"{where}: files: at least one file-name pattern is needed")
    reader = readers[files["reader"]]
    if isinstance(reader, partial):
        reader.__name__ = files["reader"]   # what `vespa-curate list` shows
    for k, link in enumerate(links_decl):
        bad = sorted(set(link) - LINK_KEYS)
        if bad or "semantics" not in link or ("file" in link) == ("url" in link):
            raise DeclarationError(f"{where}: links[{k}]: a link has semantics and either "
                                   "file (a name template) or url; keys: "
                                   + ", ".join(sorted(LINK_KEYS)))
        if link["semantics"] not in datalinks.SEMANTICS:
            raise DeclarationError(f"{where}: links[{k}]: semantics {link['semantics']!r} "
                                   "is not a datalink term")
    return Files(patterns=tuple(files["patterns"]), reader=reader, kinds=READER_KINDS,
                 retract_missing=bool(files.get("retract_missing", False)),
                 companions={f"LINK_{k}": link["file"] for k, link in enumerate(links_decl)
                             if "file" in link})


def _check_columns(where: str, columns, constants, overrides) -> None:
    for col in (*columns, *constants, *overrides):
        if col not in epncore.COLUMNS:
            raise DeclarationError(f"{where}: {col!r} is not an EPN-TAP 2.0 column")
    for col in MUST_FILL:
        if col not in columns and col not in constants and col not in overrides:
            raise DeclarationError(
                f"{where}: the required column {col!r} has no value: list it under "
                "columns (filled from VESPA_" + col + ") or give it under constants")


def attribute_column(col: str, default=None, override=None):
    """Computed column ``col`` from ``VESPA_<col>`` (see the module docstring)."""
    numeric = epncore.COLUMNS[col].type in ("Integer", "Float", "Double")

    def f(r, p):
        if override is not None:
            return np.full(len(r), override, dtype=object)
        if numeric:
            v = pd.Series(attribute_value(r, col), index=r.index)
            return v.where(v.notna(), default).to_numpy()
        key = f"VESPA_{col.upper()}"
        v = r[key] if key in r else pd.Series([None] * len(r), index=r.index)
        v = v.map(short_form if col in NAME_COLUMNS else long_form)
        if col == "dataproduct_type":
            v = v.str.lower()
        return v.astype(object).where(v.notna(), default).to_numpy()
    f.__name__ = f"vespa_{col}"
    return f


def prepare(records: pd.DataFrame, params, columns=(), catalogue: bool = False
            ) -> pd.DataFrame:
    """Refuse unreadable files, broken axes and bad attribute values (a unit astropy
    cannot read, time or frequency ranges in reverse), invalid catalogues; list the
    VESPA attributes no declared column takes."""
    r, f = check_file(records, ("N_FEATURES", "TFCAT_OUTSIDE", "TFCAT_VALID",
                                "TFCAT_REPORT"))
    _refuse_bad_attributes(r)
    if catalogue:
        r.refuse(f["TFCAT_OUTSIDE"].notna().to_numpy(), "tfcat.invalid",
                 lambda i: f"positions outside the declared CRS: {f['TFCAT_OUTSIDE'].iat[i]}")
        valid = f["TFCAT_VALID"].astype(object).to_numpy()
        r.refuse(np.array([v is False or v == 0 for v in valid]), "tfcat.invalid",
                 lambda i: f"the TFCat validator says: {f['TFCAT_REPORT'].iat[i]}")
    known = {f"VESPA_{c.upper()}" for c in (*columns, "spectral_range_min",
                                             "spectral_range_max", "time_sampling_step",
                                             "time_min", "time_max")}
    known |= {k + "_UNIT" for k in known}
    attrs = [c for c in f.columns if c.startswith("VESPA_")]
    f["UNKNOWN_ATTRIBUTES"] = [", ".join(c for c in attrs if c not in known
                                         and pd.notna(row[c])) or None
                               for _, row in f[attrs].iterrows()] if attrs else None
    return f


def _refuse_bad_attributes(r) -> None:
    """``source.bad_unit``: a ``VESPA_*_unit`` astropy cannot read;
    ``source.time_order``/``source.frequency_order``: an attribute range in reverse."""
    import astropy.units as u
    f = r.records
    for key in [c for c in f.columns if c.startswith("VESPA_") and c.endswith("_UNIT")]:
        def bad_unit(v):
            try:
                u.Unit(str(v).strip())
                return False
            except ValueError:
                return True
        bad = np.array([pd.notna(v) and bad_unit(v) for v in f[key]])
        r.refuse(bad, "source.bad_unit",
                 lambda i, key=key: f"{key.lower()} {f[key].iat[i]!r} is not a unit")
    t0, t1 = (to_datetime(f.get(f"VESPA_TIME_{x}", pd.Series([None] * len(f))))
              for x in ("MIN", "MAX"))
    r.refuse((t0 > t1).to_numpy(), "source.time_order",
             lambda i: f"VESPA_time_min {t0.iat[i]} is after VESPA_time_max {t1.iat[i]}")
    f0, f1 = (attribute_value(f, f"spectral_range_{x}") for x in ("min", "max"))
    r.refuse(np.nan_to_num(f0, nan=-np.inf) > np.nan_to_num(f1, nan=np.inf),
             "source.frequency_order",
             lambda i: f"VESPA_spectral_range_min {f0[i]:g} Hz is above "
                       f"VESPA_spectral_range_max {f1[i]:g} Hz")


def links(rows: pd.DataFrame, params, declared=(), doi: str | None = None) -> pd.DataFrame:
    """The file (#this), the declared links (a file found by name, ``LINK_<k>``, or a
    URL template), the dataset's DOI (#documentation)."""
    uid = rows["granule_uid"].to_numpy(dtype=object)
    parts = [datalinks.file_link(rows, "The collection's data file")]
    for k, link in enumerate(declared):
        if "file" in link:
            urls = file_url(params["archive_url"], rows.get(f"qa_link_{k}",
                                                             pd.Series([None] * len(rows))))
        else:
            urls = datalinks.per_row(str(link["url"]), rows)
        parts.append(datalinks.link_rows(uid, urls, link["semantics"],
                                         link.get("content_type", "text/html"),
                                         link.get("description", "")))
    if doi:
        parts.append(datalinks.link_rows(uid, f"https://doi.org/{doi}", "#documentation",
                                         "text/html", f"Dataset DOI {doi}"))
    return datalinks.concat_links(parts)


def _spectrum(files: Mapping):
    """QA: the sampled ``spectrum_variable`` of a CDF, or a catalogue's features (None
    when there is nothing to draw)."""
    if files.get("reader") == "tfcat":
        return _features
    var = files.get("spectrum_variable")
    if not var or files.get("reader") != "vespa-cdf":
        return None
    freq_var, time_var = files.get("frequency", "Frequency"), files.get("time")

    def spectrum(path: Path, n: int = 200):
        from ..formats import cdf as C
        from .collections import to_hz
        c = C.open_cdf(path)
        idx, values = C.sampled_records(c, var, n)
        freq, unit = C.axis(c, freq_var)
        return C.time_axis(c, time_var)[idx], to_hz(freq, [unit] * len(freq)), values
    return spectrum


def _features(path: Path):
    """A TFCat catalogue's features as rings (UTC times, Hz), for the QA gallery."""
    from ..formats import tfcat as T
    from .collections import to_hz
    rings, crs = T.rings(path)
    unit = T.spectral_unit(crs)
    out = [(T.to_utc(r[:, 0], crs), to_hz(r[:, 1], [unit] * len(r))) for r in rings]
    t = np.concatenate([a for a, _ in out]) if out else np.array([], "datetime64[ns]")
    f = np.concatenate([b for _, b in out]) if out else np.array([])
    return t, f, out
