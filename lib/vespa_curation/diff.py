"""What publishing the import area would change in the live service: the curator's diff.

:func:`diff` asks the live EPN-TAP service (pyvo's TAP client, ``tap_url`` or
``<server_url>/tap``) for its ``<schema>.epn_core`` and compares it with what the
import area is about to publish — its granule state (``state/granules.parquet``: per
granule the content hash of :func:`vespa_curation.incremental.content_hash` and the
dates), plus, for the QA report, the rows of a run not exported yet. Each granule is

``new``
    in the area, not served yet;
``changed``
    served with another content (the columns that differ are named);
``unchanged``
    served as the area holds it;
``retracted``
    served and listed in the area's ``retract/*.txt``: the publish deletes it;
``missing``
    served, but the area neither holds nor retracts it (it stays as it is; the last
    run's quarantine says why when a rule refused it).

How, at a million rows, in bounded memory and without a query per row:

1. the live table is read in pages of ``page`` rows ordered by granule_uid (keyset:
   ``WHERE granule_uid > last``), two columns: ``granule_uid, modification_date``.
   A served granule whose modification_date equals the one the area's state keeps was
   published from this very export: unchanged. The others are candidates.
2. the candidates' content is fetched — by lists of granule_uids (``IN (...)``, a few
   hundred per query), or, when they are many (a service published by another
   pipeline), by a second paged scan of every column — and hashed exactly as the
   export hashed its rows (s_region rewritten in the export's STC-S form first: DaCHS
   serves pgSphere's polygon with its own number format). Same hash: unchanged.
3. for changed granules (up to ``detail`` of them) each column is compared with the
   area's own row (read from its data file), so the diff names the columns; a granule
   whose values agree after all (a polygon written with other digits) is unchanged.

``content=True`` hashes every served row (step 2 for all), for a service whose dates
cannot be trusted. A service that does not answer, or fails during the scan, raises
:class:`DiffError`: no diff is claimed.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from . import area as A, epncore, rules, runfolder as RF, stcs
from .incremental import DATE_COLUMNS, _quantize, content_hash

log = logging.getLogger("vespa_curation.diff")

#: Rows per page of the live table; granule_uids per ``IN (...)`` query.
PAGE, IN_LIST = 50000, 300
#: Changed granules whose columns are compared one by one (the rest are counted).
DETAIL = 2000
#: Granule_uids listed per status in the report (all go to the CSV).
EXAMPLES = 50
STATUSES = ("new", "changed", "unchanged", "retracted", "missing")


class DiffError(RuntimeError):
    """No diff was made: the live service does not answer, or the area is missing."""


# -- the live service ---------------------------------------------------------------------

def tap_url(cfg, url: str | None = None) -> str:
    """The live service's TAP endpoint: ``url``, else the ``tap_url`` parameter, else
    ``<server_url>/tap``."""
    url = url or cfg.get("tap_url") or str(cfg["server_url"]).rstrip("/") + "/tap"
    return str(url).rstrip("/")


class LiveService:
    """The live EPN-TAP table of one schema, read through pyvo with a timeout."""

    def __init__(self, url: str, schema: str, timeout: float = 60.0):
        import pyvo
        import requests

        class _Session(requests.Session):
            def request(self, *args, **kw):
                kw.setdefault("timeout", timeout)
                return super().request(*args, **kw)

        self.url, self.schema, self.table = url, schema, f"{schema}.epn_core"
        self.tap = pyvo.dal.TAPService(url, session=_Session())
        self.queries = 0

    def query(self, adql: str, maxrec: int | None = None) -> pd.DataFrame:
        """Rows of an ADQL query (DiffError naming the service and the reason)."""
        self.queries += 1
        try:
            res = self.tap.run_sync(adql, maxrec=maxrec)
            tab = res.to_table()
        except Exception as exc:  # noqa: BLE001 — pyvo, requests and parse errors differ
            raise DiffError(f"the TAP service at {self.url} does not answer ({_short(exc)})"
                            ": no diff was made") from None
        return tab.to_pandas() if len(tab) else pd.DataFrame(
            {c: pd.Series([], dtype=object) for c in tab.colnames})

    def columns(self) -> set[str]:
        """The columns of ``<schema>.epn_core`` in TAP_SCHEMA (empty: not served)."""
        df = self.query("SELECT column_name FROM TAP_SCHEMA.columns WHERE table_name = "
                        f"'{self.table}'")
        return {str(c) for c in df.get("column_name", [])}

    def pages(self, columns: list[str], page: int = PAGE):
        """The table in pages ordered by granule_uid (keyset pagination)."""
        last = None
        cols = ", ".join(["granule_uid", *[c for c in columns if c != "granule_uid"]])
        while True:
            where = "" if last is None else f" WHERE granule_uid > {_literal(last)}"
            df = self.query(f"SELECT TOP {page} {cols} FROM {self.table}{where} "
                            "ORDER BY granule_uid", maxrec=page)
            if not len(df):
                return
            df["granule_uid"] = df["granule_uid"].astype(str)
            yield df
            last = df["granule_uid"].iloc[-1]

    def rows_of(self, uids, columns: list[str], chunk: int = IN_LIST):
        """The rows of ``uids`` (``IN`` lists of ``chunk`` granule_uids per query)."""
        cols = ", ".join(["granule_uid", *[c for c in columns if c != "granule_uid"]])
        uids = list(uids)
        for k in range(0, len(uids), chunk):
            lits = ", ".join(_literal(u) for u in uids[k:k + chunk])
            df = self.query(f"SELECT {cols} FROM {self.table} WHERE granule_uid IN "
                            f"({lits})", maxrec=chunk + 1)
            if len(df):
                df["granule_uid"] = df["granule_uid"].astype(str)
                yield df


def _literal(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _short(exc: Exception) -> str:
    msg = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {msg[:300]}" if msg else type(exc).__name__


def check_answers(url: str, timeout: float = 20.0) -> None:
    """DiffError unless ``<url>/capabilities`` answers (before any other work)."""
    import urllib.request
    try:
        with urllib.request.urlopen(url + "/capabilities", timeout=timeout) as r:
            r.read(1)
    except Exception as exc:  # noqa: BLE001
        raise DiffError(f"the TAP service at {url} does not answer ({_short(exc)}): no "
                        "diff was made") from None


# -- what the area is about to publish ----------------------------------------------------

@dataclass
class Expected:
    """Per granule the area will publish: its content hash (uint64) and the
    modification_date kept for it (NaT for pending rows, whose dates the export sets)."""

    uids: pd.Index
    hashes: np.ndarray
    dates: np.ndarray
    runs: np.ndarray
    retracted: set
    pending: pd.DataFrame | None = None


def _hash64(hexes) -> np.ndarray:
    s = pd.Series(hexes, dtype=object).fillna("0").astype(str)
    return np.array([int(h, 16) for h in s], dtype=np.uint64)


def expected(area: A.ImportArea, service, pending: pd.DataFrame | None = None) -> Expected:
    """The area's granules (and ``pending`` rows of a run not exported yet, which win)."""
    st = area.state()
    uids = st["granule_uid"].astype(str).to_numpy(dtype=object)
    hashes = _hash64(st["content_hash"])
    dates = _seconds(st["modification_date"])
    runs = st["run_id"].astype(str).to_numpy(dtype=object)
    if pending is not None and len(pending):
        p_uid = pending["granule_uid"].astype(str).to_numpy(dtype=object)
        p_hash = _hash64(content_hash(pending, service.columns, service.column_facts))
        keep = ~pd.Index(uids).isin(p_uid)
        uids = np.concatenate([uids[keep], p_uid])
        hashes = np.concatenate([hashes[keep], p_hash])
        dates = np.concatenate([dates[keep], np.full(len(p_uid), np.datetime64("NaT"),
                                                     dtype="datetime64[s]")])
        runs = np.concatenate([runs[keep], np.full(len(p_uid), None, dtype=object)])
    retracted = area.retracted_uids() - set(uids)
    return Expected(pd.Index(uids), hashes, dates, runs, retracted, pending)


def _seconds(values) -> np.ndarray:
    """Date-times floored to the second (a VOTable keeps milliseconds, a TAP service
    may serve fewer)."""
    t = pd.to_datetime(pd.Series(values, dtype=object), errors="coerce", utc=True)
    return t.dt.tz_localize(None).to_numpy().astype("datetime64[s]")


# -- hashing served rows as the export hashed its own --------------------------------------

def canonical_sregion(values) -> np.ndarray:
    """STC-S polygons in the export's form (``Polygon UNKNOWNFrame`` + each vertex as
    ``%.6f``, longitudes in 0–360, :func:`vespa_curation.stcs.format_polygon`); None
    where there is no polygon. DaCHS serves pgSphere's vertices with ten decimals."""
    texts = list(values)
    poly = stcs.parse(texts)
    vals = np.empty(2 * len(poly.lon))
    vals[0::2] = np.mod(poly.lon, 360.0)
    vals[1::2] = poly.lat
    words = np.char.mod("%.6f", vals).astype(object) if len(vals) else np.array([], object)
    out = np.empty(len(poly), dtype=object)
    off = 2 * poly.offsets
    for i in range(len(poly)):
        if not poly.parse_error[i] and off[i + 1] > off[i]:
            out[i] = "Polygon UNKNOWNFrame " + " ".join(words[off[i]:off[i + 1]])
    return out


def hashed_columns(service) -> list[str]:
    """The columns the export's content hash covers."""
    return sorted(c for c in set(service.columns)
                  if c not in DATE_COLUMNS and not str(c).startswith("qa_"))


def live_hash(rows: pd.DataFrame, service) -> np.ndarray:
    """The content hash of served rows, as :func:`changed_rows` hashed the exported
    ones (uint64; a column the service does not serve counts as NULL)."""
    rows = rows.copy()
    if "s_region" in rows:
        rows["s_region"] = canonical_sregion(rows["s_region"])
    for c in rows.columns:
        if rows[c].dtype == object:
            rows[c] = rows[c].where(rows[c].notna(), None)
    return _hash64(content_hash(rows, service.columns, service.column_facts))


# -- comparing column by column -------------------------------------------------------------

def _same_polygons(a, b) -> np.ndarray:
    """Whether two lists of STC-S polygons hold the same vertices (within 1e-6°, after
    pgSphere's normalisation: longitudes mod 360, consecutive duplicates dropped)."""
    pa, pb = stcs.parse(list(a)), stcs.parse(list(b))
    out = np.zeros(len(pa), bool)
    for i in range(len(pa)):
        va, vb = _vertices(pa, i), _vertices(pb, i)
        out[i] = (va is None and vb is None) or (
            va is not None and vb is not None and va.shape == vb.shape
            and bool(np.all(np.abs(((va - vb) + 180.0) % 360.0 - 180.0)[:, 0] < 1e-6))
            and bool(np.all(np.abs(va - vb)[:, 1] < 1e-6)))
    return out


def _vertices(poly, i: int) -> np.ndarray | None:
    if poly.parse_error[i] or poly.counts[i] == 0:
        return None
    lon, lat = poly.polygon(i)
    v = np.column_stack([np.mod(lon, 360.0), lat])
    keep = np.ones(len(v), bool)
    keep[1:] = np.any(np.abs(np.diff(v, axis=0)) > 1e-9, axis=1)
    v = v[keep]
    if len(v) > 1 and np.all(np.abs(v[0] - v[-1]) <= 1e-9):
        v = v[:-1]
    return v


def column_differs(name: str, ours: pd.Series, served: pd.Series, facts) -> np.ndarray:
    """Per row, whether the served value of column ``name`` differs from ours (floats
    within the content hash's 32-bit mantissa, polygons within 1e-6°)."""
    if name == "s_region":
        return ~_same_polygons(ours, served)
    col = facts.get(name) if hasattr(facts, "get") else None
    cast = (col.cast if col is not None else epncore.TYPES["Text"].cast)
    a, b = cast(ours.reset_index(drop=True)), cast(served.reset_index(drop=True))
    na, nb = a.isna().to_numpy(), b.isna().to_numpy()
    if a.dtype.kind == "f" or str(a.dtype) == "Int64":
        fa = _quantize(a.to_numpy(dtype=float, na_value=np.nan))
        fb = _quantize(b.to_numpy(dtype=float, na_value=np.nan))
        same = (na & nb) | (~na & ~nb & (fa == fb))
    elif a.dtype.kind == "M":
        same = (na & nb) | (~na & ~nb & (a.to_numpy() == b.to_numpy()))
    else:
        same = (na & nb) | (~na & ~nb & (a.astype(str).to_numpy()
                                         == b.astype(str).to_numpy()))
    return ~same


# -- the diff -------------------------------------------------------------------------------

@dataclass
class Diff:
    """The result: counts per status, examples, the changed columns, the rules."""

    service: str
    url: str
    area: str
    counts: dict = field(default_factory=dict)
    uids: dict = field(default_factory=dict, repr=False)   # status → granule_uids
    changed_columns: dict = field(default_factory=dict)
    changed: dict = field(default_factory=dict, repr=False)  # uid → [columns]
    rules: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    queries: int = 0

    def to_dict(self) -> dict:
        """JSON-able summary (the first :data:`EXAMPLES` granule_uids per status)."""
        ex = {s: [str(u) for u in list(self.uids.get(s, []))[:EXAMPLES]]
              for s in STATUSES if s != "unchanged"}
        return {"service": self.service, "tap_url": self.url, "import_area": self.area,
                "counts": self.counts, "changed_columns": self.changed_columns,
                "changed_examples": [{"granule_uid": u, "columns": c} for u, c in
                                     list(self.changed.items())[:EXAMPLES]],
                "examples": ex, "rules": self.rules, "notes": self.notes,
                "timings": self.timings, "queries": self.queries}

    def lines(self) -> list[str]:
        """A few lines for the terminal."""
        c = self.counts
        out = [f"{self.service}: live {c['served']} rows at {self.url}; the import area "
               f"publishes {c['area']} granules",
               "  " + ", ".join(f"{s} {c[s]}" for s in STATUSES)]
        if self.changed_columns:
            out.append("  changed columns: " + ", ".join(
                f"{k} {v}" for k, v in sorted(self.changed_columns.items(),
                                              key=lambda kv: -kv[1])))
        for what, per in self.rules.items():
            if per and what != "rule texts":
                out.append(f"  {what}: " + ", ".join(f"{r} {n}" for r, n in per.items()))
        out += [f"  note: {n}" for n in self.notes]
        return out

    def write_csv(self, path) -> Path:
        """Every granule that differs: ``granule_uid,status,columns``."""
        path = Path(path)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("granule_uid,status,columns\n")
            for s in ("new", "changed", "retracted", "missing"):
                for u in self.uids.get(s, []):
                    cols = " ".join(self.changed.get(str(u), [])) if s == "changed" else ""
                    fh.write(f"{_csv(u)},{s},{cols}\n")
        return path


def _csv(text) -> str:
    t = str(text)
    return '"' + t.replace('"', '""') + '"' if any(ch in t for ch in ',"\n') else t


@dataclass
class _Scan:
    """What the scan of the live table collects (arrays, not Python objects per row)."""

    seen: np.ndarray
    served: int = 0
    unchanged: int = 0
    candidates: list = field(default_factory=list)
    changed: list = field(default_factory=list)
    changed_rows: list = field(default_factory=list)
    retracted: list = field(default_factory=list)
    missing: list = field(default_factory=list)
    quarantined: list = field(default_factory=list)
    refused: pd.Index = field(default_factory=lambda: pd.Index([], dtype=object))
    kept: int = 0

    def keep_changed(self, rows: pd.DataFrame, detail: int) -> None:
        self.changed.append(rows["granule_uid"].to_numpy(dtype=object))
        room = detail - self.kept
        if room > 0:
            self.changed_rows.append(rows.iloc[:room])
            self.kept += min(room, len(rows))


def _classify_page(df: pd.DataFrame, exp: Expected, scan: _Scan, service, content: bool,
                   detail: int) -> None:
    """One page of the live table: unknown granules (retracted or missing), and the
    known ones unchanged (same date, or same hash with ``content``) or candidates."""
    uid = df["granule_uid"].to_numpy(dtype=object)
    idx = exp.uids.get_indexer(uid)
    known = idx >= 0
    scan.served += len(df)
    scan.seen[idx[known]] = True
    if len(scan.refused):
        scan.quarantined.append(uid[pd.Index(uid).isin(scan.refused)])
    other = uid[~known]
    gone = np.array([u in exp.retracted for u in other], dtype=bool)
    scan.retracted.append(other[gone])
    scan.missing.append(other[~gone])
    rows, where = df[known], idx[known]
    if content:
        same = live_hash(rows, service) == exp.hashes[where]
        scan.unchanged += int(same.sum())
        if (~same).any():
            scan.keep_changed(rows[~same], detail)
        return
    served = _seconds(rows["modification_date"]) if "modification_date" in rows else \
        np.full(len(rows), np.datetime64("NaT"), dtype="datetime64[s]")
    ours = exp.dates[where]
    same = ~np.isnat(ours) & (served == ours)
    scan.unchanged += int(same.sum())
    scan.candidates.append(uid[known][~same])


def _check_candidates(live: LiveService, exp: Expected, scan: _Scan, service,
                      served_cols: list[str], page: int, detail: int) -> str:
    """Hash the candidates' served content (IN lists, or a second paged scan when they
    are many); how they were fetched."""
    cand = np.concatenate(scan.candidates) if scan.candidates else np.array([], object)
    scan.candidates = []
    if not len(cand):
        return "none"
    many = len(cand) > max(20 * IN_LIST, scan.served // 10)
    wanted = pd.Index(cand)
    source = live.pages(served_cols, page) if many else live.rows_of(cand, served_cols)
    for df in source:
        if many:
            df = df[df["granule_uid"].isin(wanted).to_numpy()]
            if not len(df):
                continue
        same = live_hash(df, service) == exp.hashes[exp.uids.get_indexer(df["granule_uid"])]
        scan.unchanged += int(same.sum())
        if (~same).any():
            scan.keep_changed(df[~same], detail)
    return "second paged scan" if many else f"{-(-len(cand) // IN_LIST)} IN-list queries"


def area_rows(area: A.ImportArea, exp: Expected, uids) -> pd.DataFrame:
    """The area's current rows of ``uids`` (pending rows first, else the data files of
    the run that holds each), read file by file."""
    from .export.votable import read_votable
    uids = pd.Index([str(u) for u in uids])
    parts = []
    if exp.pending is not None and len(exp.pending):
        p = exp.pending[exp.pending["granule_uid"].astype(str).isin(uids)]
        parts.append(p)
        uids = uids[~uids.isin(p["granule_uid"].astype(str))]
    runs = pd.Series(exp.runs[exp.uids.get_indexer(uids)], index=uids)
    files = (area.manifest() or {}).get("files", {})
    for run in sorted(set(runs.dropna().astype(str))):
        want = set(runs.index[runs == run])
        for rel, info in sorted(files.items()):
            if rel.startswith(A.DATA + "/") and str(info.get("run_id")) == run:
                df = read_votable(area.path / rel)
                df["granule_uid"] = df["granule_uid"].astype(str)
                parts.append(df[df["granule_uid"].isin(want)])
    if not parts:
        return pd.DataFrame({"granule_uid": pd.Series([], dtype=object)})
    return pd.concat(parts, ignore_index=True).drop_duplicates("granule_uid", keep="first")


def name_columns(served: pd.DataFrame, ours: pd.DataFrame, service) -> dict[str, list]:
    """granule_uid → the columns whose served value differs from the area's."""
    ours = ours.set_index(ours["granule_uid"].astype(str))
    served = served.set_index(served["granule_uid"].astype(str))
    both = served.index[served.index.isin(ours.index)]
    out = {u: [] for u in both}
    facts = service.column_facts
    for c in hashed_columns(service):
        a = ours[c].reindex(both) if c in ours else pd.Series([None] * len(both), index=both)
        b = served[c].reindex(both) if c in served else pd.Series([None] * len(both),
                                                                  index=both)
        for u in both[column_differs(c, a, b, facts)]:
            out[u].append(c)
    return out


def run_quarantine(cfg, run_dir=None) -> pd.DataFrame | None:
    """The quarantine of ``run_dir`` (default: the run folder of the area's last
    export), or None when there is none."""
    if run_dir is None:
        runs = (cfg.area.manifest() or {}).get("runs") or []
        run_dir = cfg.run_dir(runs[-1]["run_id"]) if runs else None
    if run_dir is None or not (Path(run_dir) / RF.QUARANTINE).is_file():
        return None
    return RF.read_quarantine(run_dir)


def _rules(q: pd.DataFrame | None, served_quarantined: np.ndarray) -> dict:
    """Quarantine counts by rule of the run, and of the served granules it refused."""
    if q is None:
        return {}
    out = {"quarantined in the run": {str(r): int(n) for r, n in
                                      q["rule"].value_counts().items()}}
    hit = q[q["granule_uid"].astype(str).isin(set(map(str, served_quarantined)))]
    out["served but quarantined by the run, by rule"] = {
        str(r): int(n) for r, n in hit.drop_duplicates("granule_uid")["rule"]
        .value_counts().items()}
    out["rule texts"] = {str(r): rules.text(str(r)) for r in q["rule"].unique()}
    return out


def diff(params: Mapping[str, Any], *, url: str | None = None,
         pending: pd.DataFrame | None = None, run_dir=None, content: bool = False,
         page: int = PAGE, detail: int = DETAIL, timeout: float = 60.0) -> Diff:
    """Compare the live service with what the import area is about to publish.

    Parameters
    ----------
    params : RunConfig or mapping
        The service's configuration (``tap_url``/``server_url``, ``dachs_inputs``).
    url : str, optional
        The TAP endpoint (default :func:`tap_url`).
    pending : DataFrame, optional
        Rows of a run not exported yet (the QA report's): they replace the area's.
    run_dir : path, optional
        Whose quarantine gives the counts by rule (default: the last export's run).
    content : bool
        Hash every served row instead of trusting equal modification dates.
    page, detail, timeout
        Rows per page, changed granules compared column by column, seconds per request.

    Raises
    ------
    DiffError
        No import area, or the service does not answer (before or during the scan).
    """
    import time
    from .config import as_config
    cfg = as_config(params)
    service, area = cfg.definition, cfg.area
    if not area.exists() and pending is None:
        raise DiffError(f"no export of {service.name} in {area.path}: run `vespa-curate "
                        f"run {service.name}` first; no diff was made")
    url = tap_url(cfg, url)
    t0 = time.perf_counter()
    check_answers(url, min(timeout, 20.0))
    live = LiveService(url, service.name, timeout)
    exp = expected(area, service, pending)
    out = Diff(service.name, url, str(area.path))
    served_cols = live.columns()
    quarantine = run_quarantine(cfg, run_dir)
    scan = _Scan(np.zeros(len(exp.uids), bool))
    if quarantine is not None:
        scan.refused = pd.Index(quarantine["granule_uid"].dropna().astype(str).unique())
    if not served_cols:
        out.notes.append(f"{live.table} is not served by {url}: every granule is new")
    else:
        _scan_live(live, exp, scan, service, served_cols, content, page, detail, out)
    out.timings["scan"] = round(time.perf_counter() - t0, 3)
    _finish(out, exp, scan, area, service)
    out.rules = _rules(quarantine, np.concatenate(scan.quarantined)
                       if scan.quarantined else np.array([], object))
    out.timings["total"] = round(time.perf_counter() - t0, 3)
    out.queries = live.queries
    return out


def _scan_live(live, exp, scan, service, served_cols, content, page, detail, out) -> None:
    content_cols = [c for c in hashed_columns(service) if c in served_cols]
    missing_cols = sorted(set(hashed_columns(service)) - served_cols)
    if missing_cols:
        out.notes.append("columns the live table lacks (NULL there): "
                         + ", ".join(missing_cols))
    first = content_cols if content else [c for c in ("modification_date",)
                                          if c in served_cols]
    for df in live.pages(first, page):
        _classify_page(df, exp, scan, service, content, detail)
    if not content:
        how = _check_candidates(live, exp, scan, service, content_cols, page, detail)
        out.notes.append(f"served rows whose modification_date differs from the area's "
                         f"were hashed ({how})")
    else:
        out.notes.append("every served row was hashed (content=True)")


def _finish(out: Diff, exp: Expected, scan: _Scan, area, service) -> None:
    """Counts and the changed columns (up to ``detail`` granules)."""
    cat = lambda parts: np.concatenate(parts) if parts else np.array([], object)  # noqa
    changed = cat(scan.changed)
    named: dict[str, list] = {}
    if scan.changed_rows:
        served = pd.concat(scan.changed_rows, ignore_index=True)
        named = name_columns(served, area_rows(area, exp, served["granule_uid"]),
                             service)
    equal = {u for u, cols in named.items() if not cols}
    if equal:
        out.notes.append(f"{len(equal)} served granule(s) hash differently but hold the "
                         "same values (e.g. polygons written with other digits): "
                         "counted unchanged")
        changed = np.array([u for u in changed if u not in equal], dtype=object)
    out.changed = {u: cols for u, cols in named.items() if cols}
    for cols in out.changed.values():
        for c in cols:
            out.changed_columns[c] = out.changed_columns.get(c, 0) + 1
    out.uids = {"new": exp.uids[~scan.seen].to_numpy(dtype=object), "changed": changed,
                "retracted": cat(scan.retracted), "missing": cat(scan.missing)}
    out.counts = {"served": scan.served, "area": int(len(exp.uids)),
                  **{s: int(len(out.uids[s])) for s in ("new", "changed", "retracted",
                                                        "missing")},
                  "unchanged": scan.unchanged + len(equal),
                  "changed_compared": len(named)}
