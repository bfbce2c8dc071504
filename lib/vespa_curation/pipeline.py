"""The stages the notebooks call: harvest → qa → export, each reading and writing files
of the run folder (docs/architecture.md).

``harvest`` streams source records in bounded chunks, maps them to epn_core rows (with
hfc1ar's geometry) and validates them in worker processes — or on a Dask cluster when
``dask_scheduler`` is given — and writes ``rows.parquet``, ``quarantine.csv``,
``records.parquet`` (the source records QA draws) and ``harvest.json``.
"""
from __future__ import annotations

import collections
import json
import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from . import epncore, paths
from .incremental import changed_rows, merge_marks, next_mark, read_mark, \
    refuse_duplicates, retry_candidates, same_mark, stored_mark
from .services import QUARANTINE_COLUMNS, get_service, map_chunk
from .services.base import quarantine_frame
from .sources import open_source
from .validate import validate

log = logging.getLogger("vespa_curation.pipeline")

ROWS = "rows.parquet"
RECORDS = "records.parquet"
QUARANTINE = "quarantine.csv"
HARVEST = "harvest.json"
EXPORT = "export.json"


# -- worker side ------------------------------------------------------------------------

def map_validate(service_name: str, records: pd.DataFrame, params: Mapping[str, Any],
                 now: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Map and validate one chunk (runs in a worker process or on a Dask worker).

    Returns accepted rows, quarantine lines, and the source records QA keeps (the
    refused ones, the flagged ones and a few plain ones). When mapping raises on a
    chunk, the chunk is bisected until the records that raise are isolated: they are
    quarantined (rule ``internal.error``, the exception in the reason, for a developer
    to fix) and every other record goes through, so one record no mapping rule
    foresaw cannot stop a nightly run.
    """
    service = get_service(service_name)
    try:
        rows, q_map = map_chunk(service, records, params, now=now)
    except Exception as exc:  # noqa: BLE001 — isolated and reported, never swallowed
        if len(records) == 1:
            uid = str(service.uid(records).iloc[0])
            q = quarantine_frame(
                [uid], [records[service.source_id].iloc[0]], "map", ["internal.error"],
                [f"{service.source_id}={records[service.source_id].iloc[0]}: mapping "
                 f"raised {type(exc).__name__}: {exc} (a bug to report; the other "
                 "records of its chunk were mapped)"])
            log.error("record isolated after %s: %s", type(exc).__name__, exc)
            return pd.DataFrame(), q, records.reset_index(drop=True)
        half = len(records) // 2
        parts = [map_validate(service_name, records.iloc[a:b].reset_index(drop=True),
                              params, now)
                 for a, b in ((0, half), (half, len(records)))]
        acc = [p[0] for p in parts if len(p[0])]
        return (pd.concat(acc, ignore_index=True) if acc else pd.DataFrame(),
                pd.concat([p[1] for p in parts], ignore_index=True),
                pd.concat([p[2] for p in parts], ignore_index=True))
    accepted, q_val = validate(rows, service)
    q = pd.concat([q_map, q_val], ignore_index=True)
    keep = _records_for_qa(service, records, accepted, q, int(params.get("qa_gallery", 24)))
    return normalize(accepted), q, keep


def _records_for_qa(service, records, accepted, quarantine, n_plain):
    ids = set(quarantine["source_id"].astype(str))
    if "qa_geom_flag" in accepted:
        flagged = accepted["qa_geom_flag"].astype(str) != "ok"
        ids |= set(accepted.loc[flagged, "qa_source_id"].astype(str))
    ids |= set(accepted["qa_source_id"].astype(str).head(n_plain))
    rid = records[service.source_id].astype(str)
    return records[rid.isin(ids)].reset_index(drop=True)


def normalize(rows: pd.DataFrame) -> pd.DataFrame:
    """Cast epn_core columns to their epncore types (so every chunk has one schema);
    ``qa_*`` columns to float when numeric, else text."""
    out = {}
    for name in rows.columns:
        s = rows[name]
        if name in epncore.COLUMNS:
            t = epncore.COLUMNS[name].type
            if t == "Text":
                s = s.astype("string").astype(object).where(s.notna(), None)
            elif t == "Integer":
                s = pd.to_numeric(s, errors="coerce").round().astype("Int64")
            elif t in ("Float", "Double"):
                s = pd.to_numeric(s, errors="coerce").astype("float64")
            elif t == "Timestamp":
                s = pd.to_datetime(s, errors="coerce").astype("datetime64[ns]")
        elif s.dtype == object:
            num = pd.to_numeric(s, errors="coerce")
            if s.notna().any() and num.notna().sum() == s.notna().sum():
                s = num.astype("float64")
            else:
                s = s.astype("string").astype(object).where(s.notna(), None)
        out[name] = s
    return pd.DataFrame(out, index=rows.index)


# -- driver side ------------------------------------------------------------------------

class _ParquetStream:
    """Append DataFrames to one Parquet file; later chunks are cast to the first's
    schema (a column that is all NULL in one chunk takes the type it has elsewhere)."""

    def __init__(self, path: Path):
        self.path = path
        self.tmp = path.with_suffix(".parquet.part")
        self.writer = None
        self.schema = None
        self.rows = 0

    def write(self, df: pd.DataFrame) -> None:
        if df is None or not len(df.columns):
            return
        if self.schema is None:
            table = pa.Table.from_pandas(df, preserve_index=False)
            table = table.cast(pa.schema([
                pa.field(f.name, pa.string() if pa.types.is_null(f.type) else f.type)
                for f in table.schema]))
            self.schema = table.schema
            self.writer = pq.ParquetWriter(self.tmp, self.schema)
        else:
            df = df.reindex(columns=self.schema.names)
            arrays = []
            for f in self.schema:
                col = df[f.name]
                try:
                    arrays.append(pa.array(col, type=f.type, from_pandas=True))
                except (pa.ArrowInvalid, pa.ArrowTypeError):
                    arrays.append(pa.array(col.astype("string"), type=pa.string())
                                  .cast(f.type, safe=False)
                                  if pa.types.is_string(f.type) else
                                  pa.array(pd.to_numeric(col, errors="coerce"),
                                           type=f.type, from_pandas=True))
            table = pa.Table.from_arrays(arrays, schema=self.schema)
        self.writer.write_table(table)
        self.rows += len(df)

    def close(self, empty_columns: list[str]) -> None:
        if self.writer is None:
            pd.DataFrame(columns=empty_columns).to_parquet(self.tmp, index=False)
        else:
            self.writer.close()
        os.replace(self.tmp, self.path)


def _executor(params):
    """(submit, shutdown) for the configured executor: in process, local processes, or
    a Dask cluster."""
    if params.get("dask_scheduler"):
        from distributed import Client
        client = Client(params["dask_scheduler"])
        return client.submit, client.close, max(2, 2 * len(client.nthreads()))
    if int(params.get("workers", 1)) <= 1:
        class _Done:
            def __init__(self, v):
                self.v = v

            def result(self):
                return self.v
        return (lambda f, *a: _Done(f(*a))), (lambda: None), 1
    pool = ProcessPoolExecutor(max_workers=int(params["workers"]),
                               mp_context=get_context("fork"))
    return pool.submit, pool.shutdown, 2 * int(params["workers"])


def _progress(total=None, desc="harvest"):
    try:
        from tqdm.auto import tqdm
        return tqdm(total=total, desc=desc, unit="rec", mininterval=1.0)
    except ImportError:  # pragma: no cover
        return None


def harvest(params: Mapping[str, Any], run_dir: str | os.PathLike,
            mark: Mapping[str, Any] | None = None) -> dict:
    """Harvest, map and validate one service into ``run_dir``.

    Parameters
    ----------
    params : mapping
        Checked parameters (:func:`vespa_curation.params.load_params`).
    run_dir : path
        The service's run folder; created when missing.
    mark : mapping, optional
        The incremental mark to harvest from; by default read from the DaCHS database
        or the last export's manifest (:mod:`vespa_curation.incremental`), none when
        ``full`` is set.

    Returns
    -------
    dict
        The content of ``harvest.json``.
    """
    t0 = time.time()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    service = get_service(params["service"])
    source = open_source(params["source"])
    if hasattr(source, "require"):
        source.require(service.needs)
    if mark is None and not params.get("full"):
        mark = read_mark(service, params)
    log.info("harvest %s from %s (mark %s)", service.name, source.label, mark or "none")
    now = pd.Timestamp.now("UTC").tz_localize(None).floor("s")
    submit, shutdown, window = _executor(params)
    rows_out = _ParquetStream(run_dir / ROWS)
    rec_out = _ParquetStream(run_dir / RECORDS)
    qparts: list[pd.DataFrame] = []
    counts = collections.Counter()
    marks: dict[str, Any] = {}
    bar = _progress()
    pending: collections.deque = collections.deque()

    def drain(block_until: int):
        while len(pending) > block_until:
            fut, n_in = pending.popleft()
            acc, q, keep = fut.result()
            rows_out.write(acc)
            rec_out.write(keep)
            qparts.append(q)
            counts["accepted"] += len(acc)
            counts["quarantined"] += q["source_id"].nunique() if len(q) else 0
            if bar is not None:
                bar.update(n_in)
            _update_mark(marks, service, acc)

    try:
        for chunk in service.harvest(source, params, mark):
            counts["source_records"] += len(chunk)
            pending.append((submit(map_validate, service.name, chunk, params, now),
                            len(chunk)))
            drain(window)
            log.info("records read: %d, accepted: %d, quarantined: %d",
                     counts["source_records"], counts["accepted"], counts["quarantined"])
        drain(0)
    finally:
        shutdown()
        if bar is not None:
            bar.close()
        if hasattr(source, "close"):
            source.close()
    rows_out.close(service.columns)
    rec_out.close([service.source_id])
    quarantine = (pd.concat(qparts, ignore_index=True) if qparts
                  else pd.DataFrame(columns=QUARANTINE_COLUMNS))
    # ids unique within each chunk but not within the harvest (two images, two chunks)
    dups = refuse_duplicates(service, run_dir / ROWS, quarantine)
    if len(dups):
        quarantine = pd.concat([quarantine, dups], ignore_index=True)
        counts["accepted"] -= len(dups)
    quarantine.to_csv(run_dir / QUARANTINE, index=False)
    elapsed = time.time() - t0
    report = {
        "service": service.name,
        "source": source.label,
        "mark_in": _jsonable(mark),
        "mark": _jsonable(merge_marks(mark, marks)),
        "counts": {
            "source_records": counts["source_records"],
            "accepted": counts["accepted"],
            "quarantined_records": int(quarantine["source_id"].nunique()) if len(quarantine) else 0,
            "quarantine_lines": len(quarantine),
        },
        "by_stage": quarantine.groupby("stage").size().to_dict() if len(quarantine) else {},
        "by_rule": quarantine.groupby("rule").size().to_dict() if len(quarantine) else {},
        "seconds": round(elapsed, 3),
        "records_per_second": round(counts["source_records"] / elapsed, 1) if elapsed else None,
        "time": now.isoformat() + "Z",
    }
    _write_json(run_dir / HARVEST, report)
    log.info("harvest done: %s", report["counts"])
    return report


def _update_mark(marks: dict, service, rows: pd.DataFrame) -> None:
    """Highest values seen of the service's mark columns (on accepted rows)."""
    if not len(rows):
        return
    col = service.mark.time_column
    if col in rows:
        v = pd.to_numeric(rows[col], errors="coerce").max()
        if pd.notna(v):
            marks["time_jd"] = max(marks.get("time_jd", -np.inf), float(v))
    for key, field in (("run_date", service.mark.source_time), ("id", service.mark.source_id)):
        qcol = "qa_" + field.lower() if field else None
        if qcol and qcol in rows:
            s = rows[qcol].dropna()
            if key == "id" and len(s):   # ids compare as numbers when they are
                num = pd.to_numeric(s, errors="coerce")
                s = num.dropna().astype("int64") if num.notna().all() else s.astype(str)
            if len(s):
                v = s.max()
                v = v.item() if hasattr(v, "item") else v
                marks[key] = max(marks.get(key, v), v)


def _jsonable(obj):
    if obj is None:
        return None
    return json.loads(json.dumps(obj, default=str))


def _write_json(path: Path, obj) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


def read_rows(run_dir: str | os.PathLike) -> pd.DataFrame:
    """The accepted rows of a run folder."""
    return pd.read_parquet(Path(run_dir) / ROWS)


def read_quarantine(run_dir: str | os.PathLike) -> pd.DataFrame:
    p = Path(run_dir) / QUARANTINE
    if not p.is_file():
        return pd.DataFrame(columns=QUARANTINE_COLUMNS)
    return pd.read_csv(p, dtype=str, keep_default_na=False)


def qa(params: Mapping[str, Any], run_dir: str | os.PathLike) -> dict:
    """QA figures and the run report (``figures/``, ``report.html``, ``report.json``)."""
    from .qa.report import build_report
    return build_report(params, Path(run_dir))


def _row_batches(path: Path, batch: int):
    """DataFrames of whole row groups of a Parquet file, about ``batch`` rows each
    (more when one row group is larger).  Read group by group: pyarrow's
    ``iter_batches`` keeps what it has read (memory grows with the file)."""
    pf = pq.ParquetFile(path)
    groups, n = [], 0
    for g in range(pf.num_row_groups):
        k = pf.metadata.row_group(g).num_rows
        if groups and n + k > batch:
            yield pf.read_row_groups(groups).to_pandas()
            groups, n = [], 0
        groups.append(g)
        n += k
    if groups:
        yield pf.read_row_groups(groups).to_pandas()


def _published_if_needed(decisions_path: Path, area: Path):
    """The published granule_uids when some decision rejects a granule (what retracting
    needs), read once for all the parts of an export; else an empty set."""
    from .decisions import latest, load_decisions, published_uids
    dec = load_decisions(decisions_path)
    if dec.empty or not (latest(dec)["decision"] == "reject").any():
        return set()
    return published_uids(area)


def export(params: Mapping[str, Any], run_dir: str | os.PathLike) -> dict:
    """Apply curator decisions and write the DaCHS import area.

    The run's rows are read in parts of ``export_batch`` rows (decisions and content
    hashes part by part, the new and changed rows staged in ``export_rows.parquet``),
    so memory stays bounded for a full re-export of a large table; a run with more
    rows than that is written as several data files.
    """
    from .decisions import apply_decisions
    from .export import write_import_area
    run_dir = Path(run_dir)
    service = get_service(params["service"])
    batch = int(params.get("export_batch") or 100_000)
    inputs = paths.resolve(params["dachs_inputs"])
    area_dir = inputs / service.name
    dec_path = paths.resolve(params["decisions"])
    harvest_report = json.loads((run_dir / HARVEST).read_text())
    published = _published_if_needed(dec_path, area_dir)
    run_id = run_dir.parent.name
    links_in = None
    if (run_dir / "links.parquet").is_file():
        links_in = pd.read_parquet(run_dir / "links.parquet")

    rows_path = run_dir / ROWS
    n_in = pq.ParquetFile(rows_path).metadata.num_rows
    single = n_in <= batch
    staged = _ParquetStream(run_dir / "export_rows.parquet")
    kept, links_parts, states, rejected_parts, uids = [], [], [], [], []
    inc = {"new": 0, "changed": 0, "unchanged": 0}
    n_over, retract = 0, []
    # source ids to retry from the last mark: those this run read again are settled
    retry_in = retry_candidates(harvest_report)
    seen = set()
    # what outlives a part is kept as Arrow / fixed-width arrays, not Python objects
    # (millions of small long-lived strings pin the allocator's arenas)
    for rows in (_row_batches(rows_path, batch) if n_in else [read_rows(run_dir)]):
        if "qa_source_id" in rows and retry_in:
            seen.update(retry_in.intersection(rows["qa_source_id"].astype(str)))
        rows, rejected, retract, overrides = apply_decisions(
            rows, dec_path, service, import_area=area_dir, published=published)
        rejected_parts.append(rejected)
        n_over += len(overrides)
        # incremental: only new or changed content
        rows, state, part_inc = changed_rows(service, rows, area_dir,
                                             now=harvest_report.get("time"))
        for k in inc:
            inc[k] += part_inc[k]
        states.append(pa.Table.from_pandas(state, preserve_index=False))
        uids.append(np.asarray(rows["granule_uid"].astype(str).to_numpy(), dtype=str))
        if links_in is None and service.links is not None:   # datalinks follow the rows
            links_parts.append(service.links(rows, None, params))
        if single:
            kept.append(rows)
        elif len(rows):
            staged.write(rows)
        del rows
    rejected = pd.concat(rejected_parts, ignore_index=True) if rejected_parts else None
    if rejected is not None and len(rejected):
        q = read_quarantine(run_dir)
        q = pd.concat([q, rejected], ignore_index=True)
        q.to_csv(run_dir / QUARANTINE, index=False)
    # the mark (+ records to retry) after this run
    mark = next_mark(harvest_report, seen, read_quarantine(run_dir))
    new_uids = np.concatenate(uids) if uids else np.array([], dtype=str)
    n_out = len(new_uids)
    state = pa.concat_tables(states, promote_options="default").to_pandas() \
        if states else None
    del states
    links = links_in
    if links is None and links_parts:
        links = pd.concat(links_parts, ignore_index=True)
    if links is not None and "granule_uid" in links:
        links = links[links["granule_uid"].isin(new_uids)]
    if single:
        out_rows = kept[0] if len(kept) == 1 else pd.concat(kept, ignore_index=True)
    else:
        staged.close(list(pq.ParquetFile(rows_path).schema_arrow.names))
        out_rows = pd.read_parquet(staged.path) if n_out <= batch else \
            _row_batches(staged.path, batch)
    extra_files = None
    if service.files is not None:   # whole-table files (TFCat): from every exported row
        extra_files = service.files(out_rows if isinstance(out_rows, pd.DataFrame)
                                    else pd.read_parquet(staged.path), params)
    area = area_dir
    written = bool(n_out or len(retract)) or not same_mark(
        mark, stored_mark(service, params))
    try:
        if written:
            area = write_import_area(
                service, out_rows, dachs_inputs=inputs, run_id=run_id,
                server_url=params["server_url"], links=links, retract=retract,
                mark=mark, granule_state=state, extra_files=extra_files)
        else:
            log.info("%s: nothing new or changed since the last export: import area "
                     "left as it is", service.name)
    finally:
        if not single:
            staged.path.unlink(missing_ok=True)
    rejected_n = 0 if rejected is None else len(rejected)
    report = {"service": service.name, "run_id": run_id, "import_area": str(area),
              "written": written, "exported": n_out, "new": inc["new"],
              "changed": inc["changed"], "unchanged": inc["unchanged"],
              "rejected_by_curator": rejected_n,
              "retracted": len(retract), "overrides": n_over,
              "parts": max(1, -(-n_out // batch)),
              "retry_next": len(mark.get("retry", []))}
    _write_json(run_dir / EXPORT, report)
    return report
