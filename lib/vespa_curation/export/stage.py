"""The export stage: curator decisions applied, then the run's new and changed rows
written to the DaCHS import area (:func:`vespa_curation.export.writer.write_run`).

The run's rows are read in parts of ``export_batch`` rows — decisions and content
hashes part by part, each part's new and changed rows staged in
``export_rows-<NNNN>.parquet`` — so memory stays bounded for a full re-export of a large
table; a run with more rows than that is written as several data files. With
``workers``, the parts are decided, and then written, by that many processes. Nothing
changed since the last export (no row, no retraction, the same mark) leaves the import
area as it is.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .. import runfolder as RF
from ..progress import Progress
from ..workers import local_pool, release_memory
from ..config import as_config
from ..decisions import apply_decisions, latest, load_decisions
from ..incremental import changed_rows, next_mark, retry_candidates, same_mark
from ..geometry import moc as M
from .coverage import CoverageSpec
from .votable import TABLEDATA_BLOCK
from .writer import RunExport, write_run

log = logging.getLogger("vespa_curation.export")


def warm_up(service: str) -> None:
    """Import what the export would import on its own time: the service's declaration
    (its rowmaker's modules, which the writers use too: forked after this, they do not
    import it again) and the coverage's mocpy (≈ 0.2 s: it imports astropy's frames and
    matplotlib)."""
    import mocpy  # noqa: F401 — imported for the stage (the coverage)
    from ..services import get_service
    get_service(service)


@dataclass
class _Parts:
    """What the export keeps of the parts of a run's rows (as Arrow or fixed-width
    arrays, not Python objects: millions of small long-lived strings pin the
    allocator's arenas)."""

    kept: list = field(default_factory=list)
    links: list = field(default_factory=list)
    states: list = field(default_factory=list)
    rejected: list = field(default_factory=list)
    uids: list = field(default_factory=list)
    counts: dict = field(default_factory=lambda: {"new": 0, "changed": 0, "unchanged": 0})
    overrides: int = 0
    retract: list = field(default_factory=list)
    seen: set = field(default_factory=set)

    def merge(self, other: "_Parts") -> None:
        """Add what ``other`` (the next part) holds."""
        for name in ("kept", "links", "states", "rejected", "uids"):
            getattr(self, name).extend(getattr(other, name))
        for k in self.counts:
            self.counts[k] += other.counts[k]
        self.overrides += other.overrides
        self.retract = other.retract
        self.seen |= other.seen


def run(params: Mapping[str, Any], run_dir: str | os.PathLike) -> dict:
    """Apply curator decisions and write the DaCHS import area of ``run_dir``'s rows.

    Returns
    -------
    dict
        The content of ``export.json``.
    """
    cfg = as_config(params)
    run_dir = Path(run_dir)
    service = cfg.definition
    batch = int(cfg["export_batch"])
    harvest_report = RF.read_json(run_dir, RF.HARVEST)
    rows_path = run_dir / RF.ROWS
    n_in = pq.ParquetFile(rows_path).metadata.num_rows
    single = n_in <= batch
    # the data files of a run in parts are written by worker processes forked now,
    # while this process holds little (a forked worker's RSS counts its parent's pages)
    n_writers = min(int(cfg["workers"]), -(-n_in // batch)) if not single else 1
    pool = local_pool(n_writers, fork_now=True) if n_writers > 1 else None
    try:
        return _export(cfg, service, run_dir, harvest_report, rows_path, n_in, batch,
                       single, (pool[0], n_writers, pool[1]) if pool else None)
    finally:
        if pool:
            pool[1]()


def _export(cfg, service, run_dir: Path, harvest_report: dict, rows_path: Path,
            n_in: int, batch: int, single: bool, writers) -> dict:
    """:func:`run` once its writer processes are forked."""
    staged: list[Path] = []     # the staged parts' files (removed at the end)
    try:
        parts = _read_parts(cfg, service, rows_path, n_in, batch, single, staged,
                            retry_candidates(harvest_report), harvest_report.get("time"),
                            writers)
    except BaseException:
        _remove(staged)
        raise
    release_memory()    # the decisions' transient buffers, before the data files
    if getattr(service.source, "retract_missing", False):
        # products whose file is gone, when the service declares that it retracts them
        gone = set(harvest_report.get("missing") or []) - set(
            np.concatenate(parts.uids) if parts.uids else [])
        parts.retract = sorted(set(parts.retract) | gone)
    rejected = pd.concat(parts.rejected, ignore_index=True) if parts.rejected else None
    if rejected is not None and len(rejected):
        q = pd.concat([RF.read_quarantine(run_dir), rejected], ignore_index=True)
        q.to_csv(run_dir / RF.QUARANTINE, index=False)
    # the mark (+ records to retry) after this run
    mark = next_mark(harvest_report, parts.seen, RF.read_quarantine(run_dir))
    new_uids = np.concatenate(parts.uids) if parts.uids else np.array([], dtype=str)
    written = bool(len(new_uids) or len(parts.retract)) or not same_mark(
        mark, cfg.area.stored_mark())
    data_files: list[str] = []
    try:
        if written:
            out_rows = _rows_out(parts, single, staged, len(new_uids), batch)
            write_run(cfg.area, service, RunExport(
                run_id=run_dir.parent.name, rows=out_rows,
                links=_links_of(parts, run_dir, new_uids), retract=parts.retract,
                mark=mark, granule_state=_state_of(parts),
                extra_files=_extra_files(service, cfg, out_rows)),
                server_url=cfg["server_url"],
                coverage=_coverage_spec(cfg, run_dir, exact_rows=not (
                    parts.overrides or (rejected is not None and len(rejected)))),
                writers=writers)
            data_files = _data_files_written(cfg.area, run_dir.parent.name)
        else:
            log.info("%s: nothing new or changed since the last export: import area "
                     "left as it is", service.name)
    finally:
        _remove(staged)
    report = {"service": service.name, "run_id": run_dir.parent.name,
              "import_area": str(cfg.area.path), "written": written,
              "exported": len(new_uids), **parts.counts,
              "rejected_by_curator": 0 if rejected is None else len(rejected),
              "retracted": len(parts.retract), "overrides": parts.overrides,
              "parts": len(data_files), "data_files": data_files,
              "retry_next": len(mark.get("retry", []))}
    RF.write_json(run_dir / RF.EXPORT, report)
    return report


def _data_files_written(area, run_id: str) -> list[str]:
    """The epn_core data files this run's export wrote (its manifest entry), in order:
    one per part of ``export_batch`` rows; none when it only retracts."""
    runs = (area.manifest() or {}).get("runs") or []
    files = runs[-1].get("files", {}) if runs and runs[-1].get("run_id") == run_id else {}
    return sorted(f for f in files if f.startswith("data/"))


def _coverage_spec(cfg, run_dir: Path, exact_rows: bool) -> CoverageSpec | None:
    """The coverage the export keeps (parameters ``coverage``, ``moc_order``,
    ``tmoc_order``), with the MOC of the run's polygons the harvest computed when the
    export writes the run's rows as they are (``exact_rows``: no curator rejection or
    override; rows left out as unchanged are in the area's coverage already)."""
    if not cfg["coverage"]:
        return None
    polygons = M.read_moc_at(run_dir / RF.SMOC, int(cfg["moc_order"])) \
        if exact_rows else None
    return CoverageSpec(order=int(cfg["moc_order"]), time_order=int(cfg["tmoc_order"]),
                        polygons=polygons)


def _read_parts(cfg, service, rows_path: Path, n_in: int, batch: int, single: bool,
                staged: list, retry_in: set, now, writers=None) -> _Parts:
    """Decisions, content hashes and datalinks of the run's rows, part by part (parts
    of ``batch`` rows, as the data files are written), on the ``writers`` when given:
    each stages its part's new and changed rows in ``export_rows-<NNNN>.parquet``,
    whose path is added to ``staged``. A run of one part keeps its rows in memory."""
    published = _published_if_needed(cfg)
    parts = RF.row_group_parts(rows_path, batch) if n_in else []
    bar = Progress(f"{service.name} export (decisions, changes, links)", total=n_in,
                   unit="rows")
    out = _Parts()
    try:
        if single or not parts:
            out = _decide_part(cfg, parts[0] if parts else rows_path, None, published,
                               retry_in, now, bar)
        else:
            staged.extend(rows_path.parent / RF.export_rows_part(k + 1)
                          for k in range(len(parts)))
            args = [(cfg, part, path, published, retry_in, now)
                    for part, path in zip(parts, staged)]
            if writers is None:
                done = [_decide_part(*a, bar=bar) for a in args]
            else:   # each part on a writer process; the bar moves as parts are done
                futures = [writers[0](_decide_part, *a) for a in args]
                done = []
                try:
                    for fut, part in zip(futures, parts):
                        done.append(fut.result())
                        bar.update(len(part))
                finally:
                    for fut in futures:   # a part failed: the others end first
                        fut.cancel() or fut.exception()
            for p in done:
                out.merge(p)
    finally:
        bar.close()
    return out


def _decide_part(cfg, part, stage_to: Path | None, published: set, retry_in: set, now,
                 bar: Progress | None = None) -> _Parts:
    """:func:`_read_parts` of one part (a RowGroups of the run's rows, or the path of
    a run without rows), in slices of a TABLEDATA block: their transient memory (a copy
    of the rows, the hashed columns) stays small. The new and changed rows are kept,
    or written to ``stage_to`` (row groups of a TABLEDATA block: a writer decodes one
    at a time)."""
    service = cfg.definition
    out = _Parts()
    stream = RF.ParquetStream(stage_to, row_group_size=TABLEDATA_BLOCK,
                              compression="none") \
        if stage_to is not None else None
    slices = part.slices(TABLEDATA_BLOCK) if isinstance(part, RF.RowGroups) else \
        [RF.read_rows(Path(part).parent)]
    try:
        for rows in slices:
            rows = rows.reset_index(drop=True)
            if bar is not None:
                bar.update(len(rows))
            # source ids to retry from the last mark: those this run read again are settled
            if "qa_source_id" in rows and retry_in:
                out.seen.update(retry_in.intersection(rows["qa_source_id"].astype(str)))
            rows, rejected, retract, overrides = apply_decisions(
                rows, cfg.decisions_path, service, import_area=cfg.area,
                published=published)
            out.rejected.append(rejected)
            out.retract = retract
            out.overrides += len(overrides)
            rows, state, part_counts = changed_rows(service, rows, cfg.area, now=now)
            for k in out.counts:
                out.counts[k] += part_counts[k]
            out.states.append(pa.Table.from_pandas(state, preserve_index=False))
            out.uids.append(np.asarray(rows["granule_uid"].astype(str).to_numpy(),
                                       dtype=str))
            if service.links is not None and len(rows):   # datalinks follow the rows
                out.links.append(service.links(rows, cfg))
            if stream is None:
                out.kept.append(rows)
            elif len(rows):
                stream.write(rows)
            del rows
        if stream is not None:
            stream.close(list(pq.ParquetFile(part.path).schema_arrow.names))
    except BaseException:
        if stream is not None:
            stream.discard()
        raise
    return out


def _published_if_needed(cfg) -> set:
    """The published granule_uids when some decision rejects a granule (what retracting
    needs), read once for all the parts of an export; else an empty set."""
    dec = load_decisions(cfg.decisions_path)
    if dec.empty or not (latest(dec)["decision"] == "reject").any():
        return set()
    return cfg.area.published_uids()


def _rows_out(parts: _Parts, single: bool, staged: list, n_out: int, batch: int):
    """The rows to write: one frame, or the staged parts that hold rows (each read by
    the process that writes it)."""
    if single:
        return parts.kept[0] if len(parts.kept) == 1 else pd.concat(parts.kept,
                                                                     ignore_index=True)
    files = [RF.RowGroups(p, list(range(m.num_row_groups)), m.num_rows) for p in staged
             for m in [pq.ParquetFile(p).metadata] if m.num_rows]
    if n_out <= batch:   # what changed fits one data file
        return pd.concat([f.read() for f in files], ignore_index=True) if files else \
            pd.read_parquet(staged[0])
    return files


def _remove(paths) -> None:
    for p in paths:
        Path(p).unlink(missing_ok=True)


def _links_of(parts: _Parts, run_dir: Path, new_uids: np.ndarray) -> pd.DataFrame | None:
    if not parts.links:
        return None
    links = pd.concat(parts.links, ignore_index=True)
    return links[links["granule_uid"].isin(new_uids)] if "granule_uid" in links else links


def _state_of(parts: _Parts) -> pd.DataFrame | None:
    if not parts.states:
        return None
    return pa.concat_tables(parts.states, promote_options="default").to_pandas()


def _extra_files(service, cfg, out_rows) -> dict:
    """Whole-table files of the import area (TFCat), from every exported row."""
    if service.files is None:
        return {}
    rows = out_rows if isinstance(out_rows, pd.DataFrame) else \
        pd.concat([part.read() for part in out_rows], ignore_index=True)
    return service.files(rows, cfg)
