"""The QA report of a run: figures/*.png, report.html (offline), report.json.

:func:`build_report` reads the run folder (``rows.parquet``, ``records.parquet``,
``quarantine.csv``, ``harvest.json``; docs/architecture.md) and writes

``figures/``
    ``region_<n>_<granule_uid>.png`` — the side-by-side figure of each inspected region
    (:mod:`vespa_curation.qa.figures`), limb-crossing and repaired regions first; and the
    summary plots ``flags.png``, ``area_ratio.png``, ``residuals.png``, ``quarantine.png``;
``report.html``
    one self-contained page (images embedded as data URIs, no script, no CDN): counts,
    summary plots, the gallery, the quarantine table;
``report.json``
    counts per stage and per rule (with each rule's sentence, :mod:`vespa_curation.rules`),
    geometry flags, the quietly odd rows (``qa_flags``: published, flagged for a curator),
    centroid residual statistics and the list of figures.
"""
from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import logging
import re
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from .. import rules, runfolder as RF
from ..progress import Progress
from . import figures as F

log = logging.getLogger("vespa_curation.qa")

#: Flags that put a region at the front of the gallery, in this order.
PRIORITY = ("limb_clipped", "repaired", "seam", "simplified")
#: Rows of the quarantine table shown in report.html (all are in quarantine.csv).
MAX_QUARANTINE_ROWS = 500
#: Flagged rows listed in report.json and report.html (all are in rows.parquet).
MAX_FLAGGED_ROWS = 500


def odd_flags(rows: pd.DataFrame) -> pd.Series:
    """``qa_flags`` of each row as text ("" where the record is not odd)."""
    if "qa_flags" not in rows:
        return pd.Series("", index=rows.index, dtype=object)
    return rows["qa_flags"].where(rows["qa_flags"].notna(), "").astype(str)


def flagged(rows: pd.DataFrame) -> np.ndarray:
    """Rows a curator should look at: a geometry flag other than ``ok``, or a quietly
    odd record (``qa_flags``)."""
    geom = rows.get("qa_geom_flag", pd.Series("ok", index=rows.index)).fillna("ok")
    return ((geom.astype(str) != "ok") | (odd_flags(rows) != "")).to_numpy()


def flag_label(row) -> str:
    """A row's flags as the gallery and the curator show them."""
    geom = str(row.get("qa_geom_flag") or "ok")
    odd = row.get("qa_flags")
    return geom + (f"; odd: {odd}" if isinstance(odd, str) and odd else "")


def gallery_order(rows: pd.DataFrame) -> np.ndarray:
    """Row positions: quietly odd records first, then limb-crossing and repaired
    regions (stable otherwise)."""
    flags = rows.get("qa_geom_flag", pd.Series("ok", index=rows.index)).fillna("ok")
    flags = flags.astype(str)
    rank = np.full(len(rows), len(PRIORITY) + 1, int)
    for k, f in reversed(list(enumerate(PRIORITY))):
        rank[flags.str.contains(f, regex=False).to_numpy()] = k + 1
    rank[(odd_flags(rows) != "").to_numpy()] = 0
    return np.argsort(rank, kind="stable")


def _odd_rows(rows: pd.DataFrame) -> tuple[dict, list[dict]]:
    """Counts per ``qa_flags`` code and the first flagged rows with their notes."""
    odd = odd_flags(rows)
    has = (odd != "").to_numpy()
    if not has.any():
        return {}, []
    counts = {k: int(v) for k, v in F.joined_counts(odd[has]).items()}
    notes = rows["qa_flag_notes"] if "qa_flag_notes" in rows else \
        pd.Series(None, index=rows.index)
    listed = [{"granule_uid": u, "flags": f, "notes": n} for u, f, n in
              zip(rows.loc[has, "granule_uid"].head(MAX_FLAGGED_ROWS),
                  odd[has].head(MAX_FLAGGED_ROWS),
                  notes[has].head(MAX_FLAGGED_ROWS))]
    return counts, listed


def _key(values) -> np.ndarray:
    """Comparable text keys of source ids (1, 1.0 and "1" agree)."""
    s = pd.Series(values)
    num = pd.to_numeric(s, errors="coerce")
    txt = s.astype(str).str.strip()
    whole = num.notna() & (num == num.round())
    txt[whole] = num[whole].astype("int64").astype(str)
    return txt.to_numpy()


def records_for_rows(rows: pd.DataFrame, records: pd.DataFrame, service: str) -> pd.DataFrame:
    """The source record of each row (same order; NaN rows where none was kept).

    Joined on the source id (``qa_source_id`` of the rows ↔ the service's
    ``source_id`` field), else on ``granule_uid``/``_UID`` of the records.
    """
    from ..services import get_service
    svc = get_service(service)
    if "qa_source_id" in rows and svc.source_id in records:
        left, right = _key(rows["qa_source_id"]), _key(records[svc.source_id])
    else:
        for c in ("granule_uid", "_UID"):
            if c in records:
                right = records[c].astype(str).to_numpy()
                break
        else:
            right = svc.uid(records).astype(str).to_numpy()
        left = rows["granule_uid"].astype(str).to_numpy()
    rec = records.assign(_key_=right).drop_duplicates("_key_").set_index("_key_")
    return rec.reindex(left).reset_index(drop=True)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name))[:80]


#: Record fields the region gallery draws from (HFC's chain code and its image's disk).
REGION_FIELDS = {"CC", "CC_X_PIX", "CC_Y_PIX", "R_SUN", "CENTER_X"}


def warm_up(service: str) -> None:
    """Import what the report draws with (figures, coverage, matplotlib, mocpy) and,
    for a service whose records carry chain codes, trace two small regions
    (:func:`.figures.warm_up`), so that the gallery's workers forked afterwards start
    warm. Not the service's whole geometry: the stage's kernel warms during the
    harvest, on the cores the harvest uses (0.49 instead of 0.93 s of CPU)."""
    import mocpy  # noqa: F401 — the coverage section reads the run's MOC
    from ..services import get_service
    from . import coverage, spectra  # noqa: F401 — imported for the forked workers
    if REGION_FIELDS <= set(getattr(get_service(service).source, "columns", None) or ()):
        F.warm_up()


def build_report(params: Mapping, run_dir) -> dict:
    """Write the QA figures, ``report.html`` and ``report.json`` of a run folder.

    Parameters
    ----------
    params : mapping
        The run's configuration (``service``; ``qa_gallery`` = regions drawn;
        ``qa_images`` = the observations' own images under the contours).
    run_dir : path
        The run folder (:mod:`vespa_curation.runfolder`).

    Returns
    -------
    dict
        The content of ``report.json``.
    """
    run_dir = Path(run_dir)
    service = params["service"]
    figdir = run_dir / "figures"
    figdir.mkdir(parents=True, exist_ok=True)
    schema = RF.row_columns(run_dir)
    n_gal = int(params.get("qa_gallery", 24) or 0)
    rec_path = run_dir / RF.RECORDS
    gallery = None
    if n_gal and "s_region" in schema and rec_path.is_file() and \
            REGION_FIELDS <= set(pq.read_schema(rec_path).names):
        # the workers draw the gallery while this process draws the summaries; forked
        # before anything is read, they carry none of it (the QA's peak RSS summed at
        # 184 000 regions: 2.02 → 1.78 GB)
        from ..workers import executor
        pool = executor({"workers": params.get("workers", 1)}, fork_now=True)
        try:
            records = pd.read_parquet(rec_path)
            flags = RF.read_row_columns(run_dir, GALLERY_COLUMNS)
            order = gallery_order(flags) if len(flags.columns) else \
                np.arange(RF.row_count(run_dir))
            sel = RF.read_rows_at(run_dir, order[:n_gal])
            del flags
        except BaseException:
            pool[1]()
            raise
        gallery = _gallery(sel, records, service, figdir, params.get("qa_images"), pool,
                           int(params.get("workers", 1) or 1))
        del records
    rows = RF.read_row_columns(run_dir, summary_columns(schema))
    q = RF.read_quarantine(run_dir)
    report = _counts(service, run_dir, rows, q)
    try:
        if params.get("live_diff"):
            report["live"] = live_section(params, run_dir)
        summary = _summary_figures(report, rows, q)
        summary.update(_coverage(params, run_dir, rows, report))
        for name, fig in summary.items():
            F.save(fig, figdir / f"{name}.png")
            report["figures"].append(f"figures/{name}.png")
    finally:
        if gallery is not None:       # waited for even when a summary failed
            report["gallery"] = gallery()
    if gallery is None and n_gal and len(rows) and "qa_path" in schema:
        order = np.argsort(rows.get("qa_attr_mismatch", pd.Series(index=rows.index))
                           .isna().to_numpy(), kind="stable")[:n_gal]
        report["gallery"] = _spectra_gallery(params, RF.read_rows_at(run_dir, order), figdir)
    (run_dir / "report.json").write_text(json.dumps(report, indent=2, default=str),
                                         encoding="utf-8")
    write_html(run_dir, report, q)
    log.info("%s: QA report %s (%d rows, %d quarantined, %d regions drawn)", service,
             run_dir / "report.html", len(rows), len(q), len(report["gallery"]))
    return report


#: What the gallery's order reads of every row (:func:`gallery_order`).
GALLERY_COLUMNS = ("qa_geom_flag", "qa_flags")
#: What the summaries read of every row (the gallery reads its few rows whole).
SUMMARY_COLUMNS = ("granule_uid", "granule_gid", "time_min", "time_max", "qa_geom_flag",
                   "qa_area_ratio", "qa_feat_carr_long_deg", "qa_feat_carr_lat_deg",
                   "qa_centroid_lon", "qa_centroid_lat", "qa_flags", "qa_flag_notes")


def summary_columns(schema) -> set[str]:
    """The columns the summaries need: :data:`SUMMARY_COLUMNS`, the findings, and
    s_region only for a run folder without the harvest's centroid columns."""
    cols = set(SUMMARY_COLUMNS) | set(FINDINGS)
    if "qa_centroid_lon" not in schema:
        cols.add("s_region")
    return cols


def _coverage(params: Mapping, run_dir: Path, rows: pd.DataFrame, report: dict) -> dict:
    """The coverage figures (:mod:`.coverage`; ``rows``: the summary columns, the
    polygons are read from ``run_dir``); their summary goes into ``report``."""
    if not len(rows) or "time_min" not in rows:
        return {}
    from .coverage import coverage_section
    try:
        report["coverage"], figs = coverage_section(params, rows, run_dir)
    except Exception as exc:  # noqa: BLE001 — a report without the figure says why
        log.warning("%s: no coverage figures: %s", params["service"], exc)
        report["coverage"] = {"error": str(exc)}
        return {}
    return figs


def live_section(params: Mapping, run_dir: Path) -> dict:
    """What publishing this run would change in the live service
    (:func:`vespa_curation.diff.diff` with the run's rows pending, read whole: their
    content hashes need every column), or ``error`` when the service does not answer
    (no diff is claimed)."""
    from ..diff import DiffError, diff
    rows = RF.read_rows(run_dir) if (run_dir / RF.ROWS).is_file() else pd.DataFrame()
    try:
        return diff(params, pending=rows if len(rows) else None, run_dir=run_dir).to_dict()
    except DiffError as exc:
        log.warning("%s: %s", params["service"], exc)
        return {"error": str(exc)}


def _live_html(live: Mapping) -> list[str]:
    """The report's live-service section."""
    e = html.escape
    out = ["<h2>What publishing would change in the live service</h2>"]
    if "error" in live:
        return out + [f"<p class='flag'>{e(live['error'])}</p>"]
    c = live["counts"]
    out.append(f"<p>{c['served']} rows served at <code>{e(live['tap_url'])}</code>; the "
               f"import area with this run's rows publishes {c['area']} granules.</p>")
    out.append(_table(["status", "granules", "examples"], [
        (s, c[s], " ".join(live["examples"].get(s, [])[:8])) for s in
        ("new", "changed", "unchanged", "retracted", "missing")]))
    if live.get("changed_columns"):
        out.append(_table(["changed column", "granules"],
                          sorted(live["changed_columns"].items(), key=lambda kv: -kv[1])))
    per = (live.get("rules") or {}).get("served but quarantined by the run, by rule")
    if per:
        texts = live["rules"].get("rule texts", {})
        out.append("<p>Served granules this run quarantined (they stay served as they "
                   "are):</p>" + _table(["rule", "granules", "what it means"],
                                        [(r, n, texts.get(r, "")) for r, n in per.items()]))
    out += [f"<p><i>{e(n)}</i></p>" for n in live.get("notes", [])]
    return out


def _coverage_html(cov: Mapping) -> list[str]:
    """The report's coverage lines (the figures are among the summary plots)."""
    e = html.escape
    out = ["<h2>Coverage once this run is published</h2>"]
    if "error" in cov:
        return out + [f"<p class='flag'>{e(cov['error'])}</p>"]
    sp, t = cov.get("spatial"), cov.get("time") or {}
    if sp:
        out.append(f"<p>Spatial MOC (order {sp['order']}): "
                   f"{100 * sp['sphere_fraction']:.2f} % of the sphere of "
                   f"{e(sp['frame'])} — a MOC of that sphere, not of the sky; this run "
                   f"adds {100 * sp['added_fraction']:.3f} % "
                   "(<code>coverage_map.png</code>).</p>")
    if t.get("ranges"):
        out.append(f"<p>Time coverage (T-MOC order {t['order']}): {e(t['first'])} to "
                   f"{e(t['last'])}, {t['ranges']} ranges, {t['covered_days']:.3f} days "
                   "covered. Largest gaps:</p>")
        out.append(_table(["from", "to", "days"], [(g["from"], g["to"], g["days"])
                                                   for g in t.get("gaps", [])]))
    return out


def _counts(service: str, run_dir: Path, rows: pd.DataFrame, q: pd.DataFrame) -> dict:
    """The report's counts: rows, quarantine per stage and rule (with each rule's
    sentence from :mod:`vespa_curation.rules`), geometry flags, the harvest's counts."""
    harvest = RF.read_json(run_dir, RF.HARVEST)
    per_rule: dict[str, dict[str, int]] = {}
    for (stage, rule), n in q.groupby(["stage", "rule"]).size().items():
        per_rule.setdefault(stage, {})[rule] = int(n)
    flags = _flags(rows)
    flag_counts = {k: int(v) for k, v in F.joined_counts(flags).items()} \
        if len(flags) else {}
    odd_counts, odd_listed = _odd_rows(rows)
    report = {
        "service": service, "run_dir": str(run_dir),
        "generated": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "counts": {"rows": int(len(rows)), "quarantined": int(len(q)),
                   "quarantined_per_stage": {k: int(v) for k, v in
                                             q.groupby("stage").size().items()}},
        "rules": per_rule,
        "rule_texts": {r: rules.text(r) for d in per_rule.values() for r in d}
        | {f: rules.text(f) for f in (*flag_counts, *odd_counts)},
        "geom_flags": flag_counts,
        "odd_flags": odd_counts,
        "odd_rows": odd_listed,
        "odd_rows_total": int((odd_flags(rows) != "").sum()),
        "attribute_findings": _attribute_findings(rows),
        "harvest": harvest,
        "figures": [], "gallery": [],
    }
    if "counts" in harvest and isinstance(harvest["counts"], Mapping):
        report["counts"]["harvest"] = harvest["counts"]
    return report


#: Findings of file collections on published rows: QA column → what it says.
FINDINGS = {"qa_attr_mismatch": "attribute ≠ data (the data were published)",
            "qa_unknown_attributes": "VESPA_* attributes naming no epn_core column",
            "qa_tfcat_report": "TFCat validator"}


def _attribute_findings(rows: pd.DataFrame) -> list[dict]:
    """The rows whose files say something the published row does not show: attributes
    disagreeing with the data, attributes no column takes, the TFCat validator's
    remarks (or that it could not run)."""
    out = []
    for col, what in FINDINGS.items():
        if col not in rows:
            continue
        m = rows[col].notna().to_numpy()
        out += [{"granule_uid": u, "finding": f"{what}: {t}"} for u, t in
                zip(rows.loc[m, "granule_uid"], rows.loc[m, col])]
    return out


def _spectra_gallery(params, sel: pd.DataFrame, figdir: Path) -> list[dict]:
    """For a file collection declaring ``spectrum``: each drawn granule (``sel``,
    granules with attribute findings first) its sampled data beside its published box."""
    from ..services import get_service
    from ..sources import open_source
    from . import spectra
    svc = get_service(params["service"])
    if svc.spectrum is None:
        return []
    root = open_source(params["source"]).root
    out = []
    for i in range(len(sel)):
        row = sel.iloc[i].to_dict()
        try:
            t, f, v = svc.spectrum(root / row["qa_path"])
        except Exception as exc:  # noqa: BLE001 — a figure that cannot be drawn says so
            log.warning("%s: no spectrum of %s: %s", svc.name, row["qa_path"], exc)
            continue
        name = f"spectrum_{len(out):03d}_{_safe(row['granule_uid'])}.png"
        F.save(spectra.spectrum_figure(t, f, v, row), figdir / name)
        out.append({"granule_uid": row["granule_uid"],
                    "flag": "attribute ≠ data" if isinstance(row.get("qa_attr_mismatch"),
                                                             str) else "ok",
                    "png": f"figures/{name}"})
    return out


def _flags(rows: pd.DataFrame) -> pd.Series:
    return (rows["qa_geom_flag"].fillna("none").astype(str)
            if "qa_geom_flag" in rows else pd.Series([], dtype=str))


def _summary_figures(report: dict, rows: pd.DataFrame, q: pd.DataFrame) -> dict:
    """The summary plots (flags, area ratios, centroid residuals, quarantine); the
    residual statistics go into ``report``."""
    res = F.centroid_residuals(rows) if len(rows) and (
        "s_region" in rows or "qa_centroid_lon" in rows) else \
        pd.DataFrame(columns=["granule_uid", "dlon", "dlat", "flag"])
    r_ok = res.dropna(subset=["dlon", "dlat"])
    if len(r_ok):
        report["residuals"] = {
            "n": int(len(r_ok)),
            "median_abs_dlon_deg": float(r_ok["dlon"].abs().median()),
            "median_abs_dlat_deg": float(r_ok["dlat"].abs().median()),
            "max_abs_dlon_deg": float(r_ok["dlon"].abs().max()),
            "max_abs_dlat_deg": float(r_ok["dlat"].abs().max())}
    summary = {}
    flags = _flags(rows)
    if len(flags):
        summary["flags"] = F.flag_counts_figure(flags)
    if "qa_area_ratio" in rows:
        summary["area_ratio"] = F.area_ratio_figure(rows["qa_area_ratio"])
    if len(r_ok):
        summary["residuals"] = F.residuals_figure(res)
    if len(rows) and {"time_min", "time_max"} <= set(rows.columns):
        from .spectra import coverage_figure
        summary["coverage"] = coverage_figure(rows)
    summary["quarantine"] = F.quarantine_figure(q)
    return summary


def _gallery(sel, records, service, figdir, images_dir, pool, parts: int):
    """Start drawing the side-by-side figure of each selected row (``sel``, in gallery
    order) in ``parts`` on ``pool`` (the run's ``workers`` processes, from
    :func:`~vespa_curation.workers.executor`; a figure costs ~0.1 s), which it shuts
    down; returns the function that waits for them and gives the gallery's entries."""
    submit, shutdown, _ = pool
    try:
        rec = records_for_rows(sel, records, service)
        have = rec["CC"].notna().to_numpy()
        sel, rec = sel[have].reset_index(drop=True), rec[have].reset_index(drop=True)
        if not len(sel):
            shutdown()
            return list
        if images_dir:
            from ..paths import resolve
            images_dir = resolve(images_dir)
        n_parts = max(1, min(parts, len(sel)))
        bounds = np.linspace(0, len(sel), n_parts + 1).astype(int)
        bar = Progress(f"{service} QA gallery", total=len(sel), unit="figures")
        futures = [submit(draw_regions, sel.iloc[a:b].reset_index(drop=True),
                          rec.iloc[a:b].reset_index(drop=True), a, figdir, images_dir)
                   for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    except BaseException:
        shutdown()
        raise

    def collect() -> list[dict]:
        out = []
        try:
            for f in futures:
                part = f.result()
                bar.update(len(part))
                out += part
        finally:
            shutdown()
        bar.close()
        return out
    return collect


def draw_regions(sel: pd.DataFrame, rec: pd.DataFrame, first: int, figdir: Path,
                 images_dir) -> list[dict]:
    """Draw and save the figures of ``sel`` (gallery positions ``first``, ...)."""
    traced = F.trace(rec)
    canvas = F.RegionCanvas()     # one figure, region after region
    out = []
    for i in range(len(sel)):
        row = sel.iloc[i].to_dict()
        fig = canvas.draw(rec.iloc[i].to_dict(), row, traced, i, images_dir=images_dir)
        name = f"region_{first + i:03d}_{_safe(row['granule_uid'])}.png"
        F.save(fig, figdir / name)
        out.append({"granule_uid": row["granule_uid"], "flag": flag_label(row),
                    "png": f"figures/{name}"})
    return out


# -- HTML -------------------------------------------------------------------------------

_CSS = """body{font-family:sans-serif;margin:1.5em;max-width:1400px;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:1.6em}
table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ccc;padding:2px 6px;
text-align:left;vertical-align:top}th{background:#eee}.grid img{max-width:49%}
.region{margin:1em 0}.flag{font-weight:bold;color:#a33}img{border:1px solid #ddd}"""


def _img(run_dir: Path, rel: str, alt: str) -> str:
    data = base64.b64encode((run_dir / rel).read_bytes()).decode("ascii")
    return (f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}" '
            f'title="{html.escape(rel)}">')


def _table(headers, rows) -> str:
    h = "".join(f"<th>{html.escape(str(x))}</th>" for x in headers)
    b = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r) + "</tr>"
                for r in rows)
    return f"<table><tr>{h}</tr>{b}</table>"


def write_html(run_dir: Path, report: Mapping, q: pd.DataFrame) -> Path:
    """``report.html``: one self-contained page (embedded PNGs, no script, no CDN)."""
    e = html.escape
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>QA {e(report['service'])} — {e(run_dir.parent.name)}</title>"
             f"<style>{_CSS}</style></head><body>",
             f"<h1>QA report: {e(report['service'])}, run {e(run_dir.parent.name)}</h1>",
             f"<p>Generated {e(report['generated'])} in <code>{e(str(run_dir))}</code>. "
             "All figures are embedded: this page opens offline.</p>",
             "<h2>Counts</h2>"]
    c = report["counts"]
    crow = [("rows accepted", c["rows"]), ("rows quarantined", c["quarantined"])]
    crow += [(f"quarantined at {k}", v) for k, v in c["quarantined_per_stage"].items()]
    h = report.get("harvest", {}).get("counts")
    if isinstance(h, Mapping):
        crow += [(f"harvest: {k}", v) for k, v in h.items()]
    parts.append(_table(["", "count"], crow))
    texts = report.get("rule_texts", {})
    if report["rules"]:
        parts.append("<h2>Quarantine per stage and rule</h2>")
        parts.append(_table(["stage", "rule", "rows", "what it means"],
                            [(s, r, n, texts.get(r, "")) for s, d in report["rules"].items()
                             for r, n in d.items()]))
    if report["geom_flags"]:
        parts.append("<h2>Geometry flags</h2>")
        parts.append(_table(["flag", "regions", "what it means"],
                            [(f, n, texts.get(f, "")) for f, n in
                             report["geom_flags"].items()]))
    if report.get("odd_flags"):
        parts += _odd_html(report, texts)
    if report.get("attribute_findings"):
        parts.append("<h2>File attributes that disagree with the data (the data were "
                     "published)</h2>")
        parts.append(_table(["granule_uid", "finding"],
                            [(a["granule_uid"], a["finding"])
                             for a in report["attribute_findings"]]))
    for key, title in (("superseded", "Older versions not published"),
                       ("missing", "Published products whose file is gone")):
        if report.get("harvest", {}).get(key):
            parts.append(f"<h2>{title}</h2>")
            parts.append(_table(["file or product"],
                                [(p,) for p in report["harvest"][key]]))
    if report.get("live"):
        parts += _live_html(report["live"])
    if report.get("coverage"):
        parts += _coverage_html(report["coverage"])
    if "residuals" in report:
        parts.append("<h2>Centroid residuals (s_region − catalogue)</h2>")
        parts.append(_table(["statistic", "deg"], [(k, f"{v:.4f}" if isinstance(v, float)
                                                    else v)
                                                   for k, v in report["residuals"].items()]))
    parts.append("<h2>Summary plots</h2><div class='grid'>")
    parts += [_img(run_dir, f, f) for f in report["figures"]]
    parts.append("</div>")
    spectra = any(str(g["png"]).startswith("figures/spectrum_") for g in report["gallery"])
    parts.append(f"<h2>Gallery ({len(report['gallery'])} " + (
        "files: the data beside the published box; attribute findings first"
        if spectra else "regions; limb-crossing and repaired first") + ")</h2>")
    if not report["gallery"]:
        parts.append("<p>Nothing drawn (no chain codes or spectra in this service, or "
                     "qa_gallery=0).</p>")
    for g in report["gallery"]:
        parts.append(f"<div class='region'><p><b>{e(g['granule_uid'])}</b> "
                     f"<span class='flag'>{e(g['flag'])}</span></p>"
                     f"{_img(run_dir, g['png'], g['granule_uid'])}</div>")
    parts.append(f"<h2>Quarantine ({len(q)} rows)</h2>")
    if len(q):
        shown = q.head(MAX_QUARANTINE_ROWS)
        parts.append(_table(list(shown.columns), shown.itertuples(index=False)))
        if len(q) > len(shown):
            parts.append(f"<p>… {len(q) - len(shown)} more in quarantine.csv</p>")
    else:
        parts.append("<p>Nothing quarantined.</p>")
    parts.append("</body></html>")
    out = run_dir / "report.html"
    out.write_text("\n".join(parts), encoding="utf-8")
    return out


def _odd_html(report: Mapping, texts: Mapping) -> list[str]:
    """The quietly odd rows: counts per flag with its meaning, then the rows."""
    total = report.get("odd_rows_total", len(report["odd_rows"]))
    out = [f"<h2>Quietly odd rows ({total}: published, flagged for a curator)</h2>",
           _table(["flag", "rows", "what it means"],
                  [(f, n, texts.get(f, "")) for f, n in report["odd_flags"].items()]),
           _table(["granule_uid", "flags", "why"],
                  [(r["granule_uid"], r["flags"], r["notes"] or "")
                   for r in report["odd_rows"]])]
    if total > len(report["odd_rows"]):
        out.append(f"<p>… {total - len(report['odd_rows'])} more: rows.parquet, qa_flags"
                   "</p>")
    return out


# -- notebook display -------------------------------------------------------------------

def show(run_dir, gallery: int | None = 8) -> None:
    """Display a run's summary plots and the first ``gallery`` regions in a notebook."""
    from IPython.display import HTML, Image, display
    run_dir = Path(run_dir)
    rep = RF.read_json(run_dir, "report.json")
    if not rep:
        display(HTML(f"<p>No report.json in {html.escape(str(run_dir))}: "
                     "run the QA stage first.</p>"))
        return
    display(HTML(f"<p>{rep['counts']['rows']} rows, {rep['counts']['quarantined']} "
                 f"quarantined; full report: <code>{html.escape(str(run_dir))}/report.html"
                 "</code></p>"))
    for f in rep.get("figures", []):
        display(Image(filename=str(run_dir / f)))
    if rep.get("odd_flags"):
        display(HTML("\n".join(_odd_html(rep, rep.get("rule_texts", {})))))
    if rep.get("attribute_findings"):
        display(HTML("<p><b>File attributes that disagree with the data</b> (the data "
                     "were published):</p>" + _table(
                         ["granule_uid", "finding"],
                         [(a["granule_uid"], a["finding"])
                          for a in rep["attribute_findings"]])))
    for g in rep.get("gallery", [])[:gallery]:
        display(HTML(f"<b>{html.escape(g['granule_uid'])}</b> — {html.escape(g['flag'])}"))
        display(Image(filename=str(run_dir / g["png"])))
