"""The harvest stage: source records → validated epn_core rows in the run folder.

:func:`run` reads the service's source with its declared harvester, from the incremental
mark, in bounded chunks; maps (:mod:`vespa_curation.services.rowmaker`) and validates
(:mod:`vespa_curation.validate`) each chunk in worker processes — or on a Dask cluster
when ``dask_scheduler`` is given — and writes ``rows.parquet``, ``records.parquet``
(the source records QA draws), ``quarantine.csv``, ``harvest.json`` and, when the run
keeps coverage, ``smoc.fits``: the MOC of the accepted rows' s_region, one union
extended chunk after chunk beside the map (:class:`_RunMoc`, in a process of its own),
so that the QA and the export read it instead of computing it again
(:mod:`vespa_curation.runfolder`).
"""
from __future__ import annotations

import atexit
import collections
import logging
import os
import time
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from . import epncore, incremental, quarantine as Q, runfolder as RF
from .config import as_config
from .progress import Progress
from .workers import executor, in_process, local_pool
from .services import get_service, map_chunk
from .sources import open_source
from .sources.values import text_of
from .geometry import moc as M
from .times import utc_now
from .validate import validate, validate_links

log = logging.getLogger("vespa_curation.harvest")


def preflight(params: Mapping[str, Any]) -> None:
    """Check, before any run folder is written, what is cheap to check: a file
    collection's folder exists and its patterns match files (SourceError naming the
    source and the patterns). Database and search-engine sources are checked when the
    harvest opens them, so that an unreachable server fails that service's stage (with
    its log) and not the whole night's run."""
    cfg = as_config(params)
    service = get_service(cfg.service)
    if service.source.reads != "files":
        return
    source = open_source(cfg["source"])
    try:
        service.source.accept(source, service.name)
        service.source.check(source)
    finally:
        source.close()


# -- worker side ------------------------------------------------------------------------

def warm_up(service_name: str) -> None:
    """The service's declared warm-up (:attr:`..services.declare.Service.warm_up`), if
    any: what its first chunk would load, loaded before the workers fork."""
    svc = get_service(service_name)
    if svc.warm_up is not None:
        svc.warm_up()
    # what a chunk's coverage MOC loads (PolygonUnion's KD-tree and mocpy)
    import mocpy  # noqa: F401
    import scipy.spatial  # noqa: F401


def map_validate(service_name: str, records: pd.DataFrame, params: Mapping[str, Any],
                 now: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Map and validate one chunk (runs in a worker process or on a Dask worker).

    Returns accepted rows, quarantine lines, and the source records QA keeps (the
    refused ones, the flagged ones and a few plain ones). When mapping or validating
    raises on a chunk, the chunk is bisected until the records that raise are isolated:
    they are quarantined (rule ``internal.error``, the exception in the reason, for a
    developer to fix) and every other record goes through, so one record no rule
    foresaw cannot stop a nightly run.
    """
    service = get_service(service_name)
    records = service.source.expand(records)
    try:
        rows, q_map = map_chunk(service, records, params, now=now)
        accepted, q_val = validate(rows, service)
        accepted = normalize(accepted, service.column_facts)
        if service.links is not None and len(accepted):
            # the links the export will build for these rows: one it cannot write
            # (too long for the links table's key) refuses its row now
            accepted, q_links = validate_links(accepted, service.links(accepted, params))
            if len(q_links):
                q_val = pd.concat([q_val, q_links], ignore_index=True)
    except Exception as exc:  # noqa: BLE001 — isolated and reported, never swallowed
        if len(records) == 1:
            return _isolated(service, records, exc)
        half = len(records) // 2
        parts = [map_validate(service_name, records.iloc[a:b].reset_index(drop=True),
                              params, now)
                 for a, b in ((0, half), (half, len(records)))]
        acc = [p[0] for p in parts if len(p[0])]
        return (pd.concat(acc, ignore_index=True) if acc else pd.DataFrame(),
                pd.concat([p[1] for p in parts], ignore_index=True),
                pd.concat([p[2] for p in parts], ignore_index=True))
    q = pd.concat([q_map, q_val], ignore_index=True)
    keep = records_for_qa(service, records, accepted, q, int(params.get("qa_gallery", 24)))
    return accepted, q, keep


#: The union of the run's polygons in the process that computes it: (run key, union).
_UNION: list = [None, None]


@atexit.register
def _forget_union() -> None:
    """Free the union before the interpreter tears mocpy down (its MOCs' __del__ then
    fails, noisily)."""
    _UNION[:] = [None, None]


def moc_add(run_key, order: int, s_region: list, ranges: bool = False):
    """Add polygons to the union of the run ``run_key`` this process holds (a new one
    for another run); its depth-29 ranges when ``ranges`` (the run's MOC)."""
    if _UNION[0] != (run_key, order):
        _UNION[:] = [(run_key, order), M.PolygonUnion(order)]
    union = _UNION[1]
    if s_region:
        union.add(s_region)
    return union.moc.to_depth29_ranges if ranges else None


class _RunMoc:
    """The MOC of the run's accepted polygons, computed beside the map: chunk after
    chunk, in the order the chunks come back, into one union — in a process of its own
    when the map runs on local worker processes, else in the driver.

    One union, not one per map worker: a polygon inside what any earlier chunk covered
    costs a cap look-up (each worker building its own union covered the first chunks'
    polygons once per worker, ≈ 10 s of CPU on 184 000 regions), and the map workers
    do not wait on it. At most :attr:`LAG` chunks wait for it (their s_region
    pickled), so a slow union does not hold a run's polygons in memory."""

    LAG = 6

    def __init__(self, cfg, run_key):
        self.on = bool(cfg["coverage"])
        self.order = int(cfg["moc_order"])
        self.key = run_key
        self.any = False
        self.pending: collections.deque = collections.deque()
        local = int(cfg.get("workers", 1)) > 1 and not cfg.get("dask_scheduler")
        self.submit, self.shutdown = local_pool(1, fork_now=True) if self.on and local \
            else in_process()

    def add(self, rows: pd.DataFrame) -> None:
        if not self.on or "s_region" not in rows or not len(rows):
            return
        s_region = rows["s_region"].dropna().tolist()
        if not s_region:
            return
        self.any = True
        self.pending.append(self.submit(moc_add, self.key, self.order, s_region))
        while len(self.pending) > self.LAG:
            self.pending.popleft().result()

    def result(self):
        """The union (None when the run keeps no coverage or had no polygon)."""
        try:
            if not (self.on and self.any):
                return None
            while self.pending:
                self.pending.popleft().result()
            from mocpy import MOC
            ranges = self.submit(moc_add, self.key, self.order, [], True).result()
            return MOC.from_depth29_ranges(self.order, ranges)
        finally:
            self.close()

    def close(self) -> None:
        self.pending.clear()
        self.shutdown()
        _forget_union()           # when computed in the driver


def _isolated(service, records: pd.DataFrame, exc: Exception):
    """The quarantine line of the one record whose mapping raised."""
    sid = text_of(records[service.source_id].iloc[0])
    try:
        uid = str(service.uid(records).iloc[0])
    except Exception:  # noqa: BLE001 — the uid itself may be what raised
        uid = ""
    q = Q.quarantine_frame(
        [uid], [sid], "map", ["internal.error"],
        [f"{service.source_id}={sid}: mapping raised {type(exc).__name__}: {exc} (a bug "
         "to report; the other records of its chunk were mapped)"])
    log.error("record isolated after %s: %s", type(exc).__name__, exc)
    return pd.DataFrame(), q, records.reset_index(drop=True)


def records_for_qa(service, records: pd.DataFrame, accepted: pd.DataFrame,
                   quarantine: pd.DataFrame, n_plain: int) -> pd.DataFrame:
    """The source records QA draws: refused, flagged (a geometry flag, a quietly odd
    record), and the first ``n_plain``."""
    ids = set(quarantine["source_id"].astype(str))
    if "qa_geom_flag" in accepted:
        flagged = accepted["qa_geom_flag"].astype(str) != "ok"
        ids |= set(accepted.loc[flagged, "qa_source_id"].astype(str))
    if "qa_flags" in accepted:
        ids |= set(accepted.loc[accepted["qa_flags"].notna(), "qa_source_id"].astype(str))
    ids |= set(accepted["qa_source_id"].astype(str).head(n_plain))
    rid = records[service.source_id].map(text_of)
    return records[rid.isin(ids)].reset_index(drop=True)


def normalize(rows: pd.DataFrame, columns=None) -> pd.DataFrame:
    """epn_core columns (``columns``: a service's column facts, EPN-TAP's by default)
    cast to their type (:meth:`vespa_curation.epncore.EpnType.cast`, so every chunk has
    one schema); ``qa_*`` columns to float when numeric, else text."""
    columns = epncore.COLUMNS if columns is None else columns
    out = {}
    for name in rows.columns:
        s = rows[name]
        if name in columns:
            s = columns[name].cast(s)
        elif s.dtype == object:
            num = pd.to_numeric(s, errors="coerce")
            if s.notna().any() and num.notna().sum() == s.notna().sum():
                s = num.astype("float64")
            else:
                s = s.astype("string").astype(object).where(s.notna(), None)
        out[name] = s
    return pd.DataFrame(out, index=rows.index)


# -- driver side ------------------------------------------------------------------------

class _Collector:
    """What the driver keeps of the chunks' results: rows and records streamed to
    Parquet, quarantine lines, counts and the running mark."""

    def __init__(self, run_dir: Path, service, now: pd.Timestamp, run_moc: _RunMoc):
        self.service = service
        self.now = now
        self.run_moc = run_moc
        self.rows = RF.ParquetStream(run_dir / RF.ROWS)
        self.records = RF.ParquetStream(run_dir / RF.RECORDS)
        self.quarantine: list[pd.DataFrame] = []
        self.counts = collections.Counter()
        self.marks: dict[str, Any] = {}

    def add(self, result) -> None:
        acc, q, keep = result
        self.run_moc.add(acc)
        self.rows.write(acc)
        self.records.write(keep)
        self.quarantine.append(q)
        self.counts["accepted"] += len(acc)
        self.counts["quarantined"] += q["source_id"].nunique() if len(q) else 0
        self.service.source.mark.observe(self.marks, acc, self.now)

    def close(self) -> pd.DataFrame:
        self.rows.close(self.service.columns)
        self.records.close([self.service.source_id])
        return (pd.concat(self.quarantine, ignore_index=True) if self.quarantine
                else Q.empty())


def run(params: Mapping[str, Any], run_dir: str | os.PathLike,
        mark: Mapping[str, Any] | None = None) -> dict:
    """Harvest, map and validate one service into ``run_dir``.

    Parameters
    ----------
    params : RunConfig or mapping
        The run's configuration (:func:`vespa_curation.config.load_config`).
    run_dir : path
        The service's run folder; created when missing.
    mark : mapping, optional
        The incremental mark to harvest from; by default the one the import area (or
        DaCHS's database) holds (:func:`vespa_curation.incremental.read_mark`), none
        when ``full`` is set.

    Returns
    -------
    dict
        The content of ``harvest.json``.
    """
    t0 = time.time()
    cfg = as_config(params)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    service = get_service(cfg.service)
    source = open_source(cfg["source"])
    harvester = service.source
    harvester.accept(source, service.name)
    harvester.check(source)
    if mark is None and not cfg["full"]:
        mark = incremental.read_mark(cfg)
    log.info("harvest %s from %s (mark %s)", service.name, source.label, mark or "none")
    now = utc_now()
    found: dict[str, Any] = {}
    (run_dir / RF.SMOC).unlink(missing_ok=True)
    run_moc = _RunMoc(cfg, (service.name, str(now)))
    out = _Collector(run_dir, service, now, run_moc)
    try:
        total = harvester.count(source, cfg, mark)
        chunks = harvester.records(source, cfg, mark, published=cfg.area.published_uids,
                                   report=found)
        _map_all(cfg, service, chunks, out, now, total, found)
        moc = run_moc.result()
    finally:
        source.close()
        run_moc.close()
    quarantine = out.close()
    # ids unique within each chunk but not within the harvest (two images, two chunks)
    dups = incremental.refuse_duplicates(service, run_dir / RF.ROWS, quarantine)
    if len(dups):
        quarantine = pd.concat([quarantine, dups], ignore_index=True)
        out.counts["accepted"] -= len(dups)
    _write_moc(service, moc if not len(dups) else None, run_dir)
    quarantine.to_csv(run_dir / RF.QUARANTINE, index=False)
    report = _summary(service, source, mark, out, quarantine, found, now, time.time() - t0)
    RF.write_json(run_dir / RF.HARVEST, report)
    log.info("harvest done: %s", report["counts"])
    return report


def _write_moc(service, moc, run_dir: Path) -> None:
    """``smoc.fits``: the accepted rows' MOC (none when duplicates were refused after
    the chunks' MOCs were made: the QA and the export then compute it from the rows)."""
    if moc is None:
        return
    consts = dict(getattr(service, "constants", None) or {})
    M.write_moc(moc, run_dir / RF.SMOC, M.body_keywords(
        getattr(service, "spatial_frame_type", None), consts.get("spatial_coordinate_description"),
        consts.get("spatial_origin")))


def _map_all(cfg, service, chunks, out: _Collector, now, total=None, found=None) -> None:
    """Map every chunk on the executor, at most a window of chunks in flight; progress
    against ``total`` (or the ``to_read`` count a harvester reports once it starts)."""
    submit, shutdown, window = executor(cfg)
    bar = Progress(f"{service.name} harvest", total=total)
    pending: collections.deque = collections.deque()

    def drain(block_until: int):
        while len(pending) > block_until:
            fut, n_in = pending.popleft()
            out.add(fut.result())
            if bar.total is None and found:
                bar.total = found.get("to_read")
            bar.update(n_in)

    try:
        for chunk in chunks:
            out.counts["source_records"] += len(chunk)
            pending.append((submit(map_validate, service.name, chunk, cfg, now),
                            len(chunk)))
            drain(window)
            log.debug("records read: %d, accepted: %d, quarantined: %d",
                      out.counts["source_records"], out.counts["accepted"],
                      out.counts["quarantined"])
        drain(0)
    finally:
        shutdown()
        bar.close()


def _summary(service, source, mark, out: _Collector, quarantine: pd.DataFrame,
             found: Mapping[str, Any], now, elapsed: float) -> dict:
    """The content of ``harvest.json``."""
    counts = out.counts
    return {
        "service": service.name,
        "source": source.label,
        "mark_in": RF.jsonable(mark),
        "mark": RF.jsonable(incremental.merge_marks(mark, out.marks, now)),
        "counts": {
            "source_records": counts["source_records"],
            "accepted": counts["accepted"],
            "quarantined_records": int(quarantine["source_id"].nunique())
            if len(quarantine) else 0,
            "quarantine_lines": len(quarantine),
        },
        "by_stage": quarantine.groupby("stage").size().to_dict() if len(quarantine) else {},
        "by_rule": quarantine.groupby("rule").size().to_dict() if len(quarantine) else {},
        **{k: (v if isinstance(v, int) else list(v)) for k, v in found.items()},
        "seconds": round(elapsed, 3),
        "records_per_second": round(counts["source_records"] / elapsed, 1)
        if elapsed else None,
        "time": now.isoformat() + "Z",
    }
