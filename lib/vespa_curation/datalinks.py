"""Datalinks: the links table of a service and the DaCHS datalink service serving it.

Each service's ``links(rows, records, params)`` function returns a *links table*, one row
per link of a granule::

    granule_uid     the epn_core row (the datalink ID)
    access_url      where the linked resource is
    semantics       IVOA datalink vocabulary term (#this, #preview, #thumbnail,
                    #progenitor, #documentation, #auxiliary, #coderived, ...)
    content_type    MIME type (lower case)
    description     a short text for humans
    content_length  bytes, when known (NULL otherwise)

The export writes it as ``links/<run-id>.vot`` beside the epn_core data; the RD
(:func:`vespa_curation.export.rd.datalink_fragment`) declares the links table (not
ADQL-queryable), imports those files, and serves them through a DaCHS datalink service
(``//datalink#fromtable`` descriptor generator on epn_core's granule_uid, plus a
metaMaker yielding one link per links row); ``_associatedDatalinkService`` ties the
service to epn_core, and the epn_core column ``datalink_url`` points at ``dlmeta`` for
each granule (:func:`datalink_urls`).

Data-access link forms:

- HAPI 3: ``<server>/data?dataset=ID&start=T1&stop=T2`` — ``stop`` is exclusive, so the
  granule's window is closed by giving the first whole second *after* time_max.
- das2: ``<server>?server=dataset&dataset=ID&start_time=T1&end_time=T2``.
"""
from __future__ import annotations

import re
from typing import Iterable
from urllib.parse import quote, urlencode

import numpy as np
import pandas as pd

from .parameter import Param
from .times import iso_seconds, jd_to_datetime

#: Columns of the links table, in order.
LINK_COLUMNS = ["granule_uid", "access_url", "semantics", "content_type", "description",
                "content_length"]
#: Datalink core vocabulary terms this project writes.
SEMANTICS = frozenset({"#this", "#preview", "#preview-image", "#preview-plot", "#thumbnail",
                       "#progenitor", "#documentation", "#auxiliary", "#coderived",
                       "#derivation", "#counterpart"})
HAPI_CSV = "text/csv"
DAS2_STREAM = "application/vnd.das2.das2stream"


def empty_links() -> pd.DataFrame:
    """A links table without rows (typed)."""
    return pd.DataFrame({c: pd.Series([], dtype="Int64" if c == "content_length"
                                      else object) for c in LINK_COLUMNS})


def link_rows(uids, urls, semantics, content_type, description,
              content_length=None) -> pd.DataFrame:
    """A links table from aligned values (scalars broadcast); rows whose URL is null
    or empty are left out (a link that does not exist is not a link)."""
    uids = pd.Series(np.asarray(uids, dtype=object))
    n = len(uids)

    def col(v):
        if v is None or np.isscalar(v):
            return pd.Series([v] * n, dtype=object)
        return pd.Series(np.asarray(v, dtype=object))
    df = pd.DataFrame({"granule_uid": uids, "access_url": col(urls),
                       "semantics": col(semantics), "content_type": col(content_type),
                       "description": col(description),
                       "content_length": pd.to_numeric(col(content_length),
                                                       errors="coerce").astype("Int64")})
    keep = df["access_url"].notna() & (df["access_url"].astype(str).str.strip() != "")
    return df[keep].reset_index(drop=True)


def file_link(rows: pd.DataFrame, description: str) -> pd.DataFrame:
    """The ``#this`` link of each granule: its file (``access_url``, ``access_format``,
    ``access_estsize`` in kB → content_length in bytes)."""
    size = pd.to_numeric(rows["access_estsize"], errors="coerce") * 1024
    return link_rows(rows["granule_uid"].to_numpy(dtype=object), rows["access_url"],
                     "#this", rows["access_format"], description, size)


def concat_links(parts: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """One links table from several, sorted by granule then semantics, duplicates
    (same granule, URL and semantics) dropped; one URL may serve two semantics (NRH's
    highest-frequency quicklook is a #preview and the #thumbnail)."""
    parts = [p for p in parts if p is not None and len(p)]
    if not parts:
        return empty_links()
    df = pd.concat(parts, ignore_index=True)[LINK_COLUMNS]
    df = df.drop_duplicates(["granule_uid", "access_url", "semantics"], keep="first")
    df["content_length"] = df["content_length"].astype("Int64")
    return df.sort_values(["granule_uid", "semantics", "access_url"],
                          kind="stable").reset_index(drop=True)


def check_links(links: pd.DataFrame) -> list[str]:
    """Problems of a links table (empty list when it is fine)."""
    out = []
    missing = [c for c in LINK_COLUMNS if c not in links]
    if missing:
        return [f"links table lacks column(s) {', '.join(missing)}"]
    for i, r in links.iterrows():
        where = f"link {r['access_url']!r} of granule {r['granule_uid']!r}"
        if r["semantics"] not in SEMANTICS:
            out.append(f"{where}: semantics {r['semantics']!r} is not a datalink term")
        if not str(r["access_url"]).startswith(("http://", "https://", "ftp://")):
            out.append(f"{where}: not an http(s)/ftp URL")
        ct = r["content_type"]
        if ct is None or ct != str(ct).lower() or "/" not in str(ct):
            out.append(f"{where}: content_type {ct!r} is not a lower-case MIME type")
    dup = links.duplicated(["granule_uid", "access_url", "semantics"])
    if dup.any():
        out.append(f"{int(dup.sum())} duplicate (granule_uid, access_url, semantics) rows")
    return out


# -- URL forms --------------------------------------------------------------------------

def hapi_window(time_min_jd, time_max_jd) -> tuple[pd.Series, pd.Series]:
    """HAPI ``start``/``stop`` text of granule windows: start = time_min floored to the
    second, stop = the first whole second after time_max (HAPI's stop is exclusive)."""
    t0 = jd_to_datetime(time_min_jd).dt.floor("s")
    t1 = jd_to_datetime(time_max_jd).dt.floor("s") + pd.Timedelta(seconds=1)
    return iso_seconds(t0), iso_seconds(t1)


def hapi_urls(server: str, dataset: str, time_min_jd, time_max_jd,
              parameters: str | None = None) -> pd.Series:
    """HAPI 3 data URLs (CSV) of each granule's time window."""
    start, stop = hapi_window(time_min_jd, time_max_jd)
    base = server.rstrip("/") + "/data?"
    out = []
    for a, b, ds in zip(start, stop, _each(dataset, len(start))):
        if not isinstance(a, str) or not isinstance(b, str):
            out.append(None)
            continue
        q = {"dataset": ds, "start": a, "stop": b}
        if parameters:
            q["parameters"] = parameters
        out.append(base + urlencode(q, safe=":,"))
    return pd.Series(out, dtype=object)


def das2_urls(server: str, dataset: str, time_min_jd, time_max_jd,
              resolution: float | None = None) -> pd.Series:
    """das2 server URLs (``server=dataset``) of each granule's time window
    (start floored, end ceiled to the second: das2's end_time is exclusive too)."""
    start, stop = hapi_window(time_min_jd, time_max_jd)
    out = []
    for a, b, ds in zip(start, stop, _each(dataset, len(start))):
        if not isinstance(a, str) or not isinstance(b, str):
            out.append(None)
            continue
        q = {"server": "dataset", "dataset": ds, "start_time": a, "end_time": b}
        if resolution:
            q["resolution"] = f"{resolution:g}"
        out.append(server + "?" + urlencode(q, safe=":/"))
    return pd.Series(out, dtype=object)


def _each(value, n: int):
    """A scalar repeated ``n`` times, or the sequence itself."""
    return [value] * n if isinstance(value, str) else list(value)


def datalink_urls(server_url: str, schema: str, uids) -> np.ndarray:
    """``dlmeta`` URL of each granule on the service's DaCHS datalink service."""
    base = f"{server_url.rstrip('/')}/{schema}/q/dl/dlmeta?ID="
    return np.array([base + quote(str(u), safe="") for u in uids], dtype=object)


def static_url(server_url: str, schema: str, relpath: str) -> str:
    """URL of a file of the import area's folder the datalink service serves
    (``Service.served_files``, e.g. hfc1t3's TFCat files)."""
    return f"{server_url.rstrip('/')}/{schema}/q/dl/static/{relpath}"


# -- data-access links (HAPI 3, das2) and documentation --------------------------------

def access_params(hapi_dataset: str, das2_dataset: str,
                  documentation: str = "https://rsdb.obs-nancay.fr/") -> tuple[Param, ...]:
    """Parameters of a service's data-access links (HAPI 3, das2) and documentation
    link (:func:`access_links`), with the service's dataset ids as defaults."""
    return (
        Param("hapi_server", str, None, "HAPI 3 server base URL (…/hapi); none = no HAPI "
              "links"),
        Param("hapi_dataset", str, hapi_dataset, "HAPI dataset id of the time series"),
        Param("das2_server", str, None, "das2 server URL (the das2 server script); "
              "none = no das2 links"),
        Param("das2_dataset", str, das2_dataset, "das2 dataset id"),
        Param("documentation_url", str, documentation,
              "documentation page linked from every granule (#documentation)"),
    )


def per_row(template: str, rows: pd.DataFrame):
    """``template`` itself, or — when it names fields (``"{logical_source}"``) — one text
    per row filled from the rows' columns (``qa_<name>`` or ``<name>``)."""
    names = re.findall(r"{(\w+)}", template)
    if not names:
        return template
    cols = {n: rows[f"qa_{n}"] if f"qa_{n}" in rows else rows[n] for n in names}
    return [template.format(**{n: cols[n].iat[i] for n in names}) for i in range(len(rows))]


def access_links(rows: pd.DataFrame, params, what: str) -> list[pd.DataFrame]:
    """HAPI 3 and das2 links over each granule's time window (#coderived, when their
    servers are configured) and the documentation link (see :func:`access_params`;
    dataset ids may name row fields, e.g. ``{logical_source}``)."""
    uid = rows["granule_uid"].to_numpy(dtype=object)
    parts = []
    if params.get("hapi_server"):
        parts.append(link_rows(
            uid, hapi_urls(params["hapi_server"], per_row(params["hapi_dataset"], rows),
                           rows["time_min"], rows["time_max"]),
            "#coderived", HAPI_CSV, f"{what} over the granule's time range (HAPI 3, CSV)"))
    if params.get("das2_server"):
        parts.append(link_rows(
            uid, das2_urls(params["das2_server"], per_row(params["das2_dataset"], rows),
                           rows["time_min"], rows["time_max"]),
            "#coderived", DAS2_STREAM, f"{what} over the granule's time range "
            "(das2 stream)"))
    parts.append(link_rows(uid, params.get("documentation_url"), "#documentation",
                           "text/html", "Instrument and archive documentation"))
    return parts


# -- the RD fragment --------------------------------------------------------------------

def semantics_of(links: pd.DataFrame, uid: str) -> list[str]:
    """The semantics of one granule's links, sorted (for tests and QA)."""
    return sorted(links.loc[links["granule_uid"] == uid, "semantics"])


__all__ = ["LINK_COLUMNS", "SEMANTICS", "empty_links", "link_rows", "concat_links",
           "check_links", "hapi_urls", "das2_urls", "hapi_window", "datalink_urls",
           "static_url", "access_params", "access_links"]
