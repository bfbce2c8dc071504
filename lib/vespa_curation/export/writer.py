"""One run's rows added to a service's DaCHS import area, as one atomic new version.

:func:`write_run` is the entry point: it checks the rows, opens a new version of the
:class:`~vespa_curation.area.ImportArea` (which alone knows the layout and the swap) and
fills it: earlier immutable files hard-linked, this run's epn_core VOTables part by part,
its datalinks, the granule state, retraction lists, extra files (TFCat), the RD, and
the manifest with every file's checksum, written last.
"""
from __future__ import annotations

import collections
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from .. import area as A, epncore, limits, runfolder as RF
from ..workers import release_memory
from ..progress import Progress
from ..area import ImportArea, Staging
from ..incremental import REGION_HASH
from .coverage import CoverageBuilder, CoverageSpec, part_times
from .rd import render_rd
from .votable import (TABLEDATA_BLOCK, ExportError, epn_columns, write_epn_votable,
                      write_epn_votable_slices, write_table_votable)


@dataclass
class RunExport:
    """What one run adds to an import area.

    Attributes
    ----------
    run_id : str
        Names this run's files (``data/<run_id>.vot``, ...); unique per area.
    rows : DataFrame or iterable of DataFrame
        epn_core rows (``qa_*`` columns are dropped); may be empty. An iterable gives
        the rows in parts (bounded memory for a full re-export of a large table): each
        part is checked and written as its own ``data/<run_id>-<NNNN>.vot`` as it
        comes, and a bad part leaves the area as it was.
    links : DataFrame, optional
        Datalink rows (``links/<run_id>.vot``).
    retract : iterable of str
        granule_uids to delete from the service (``retract/<run_id>.txt``).
    mark : JSON-serialisable, optional
        The incremental mark after this run (kept in the manifest).
    granule_state : DataFrame, optional
        ``granule_uid`` + :data:`vespa_curation.area.STATE_COLUMNS` of the rows.
    extra_files : mapping, optional
        Area-relative path → content (bytes, text or a file to copy), e.g. TFCat files;
        replaced by each export that gives them, kept otherwise.
    """

    run_id: str
    rows: Any
    links: pd.DataFrame | None = None
    retract: Iterable[str] = ()
    mark: Any = None
    granule_state: pd.DataFrame | None = None
    extra_files: Mapping[str, Any] = field(default_factory=dict)


def write_run(area: ImportArea, service, run: RunExport, *,
              server_url: str = "http://localhost:8080", fmt: str = "tabledata",
              region: str = "stcs", coverage: CoverageSpec | None = CoverageSpec(),
              writers=None) -> Path:
    """Add ``run`` to ``area`` (the import area of ``service``), atomically.

    Parameters
    ----------
    area : ImportArea
    service : Service
        Gives the spatial frame, the RD's metadata and fragments.
    run : RunExport
    server_url : str
        Public DaCHS URL, given to RD fragments (datalink, TFCat).
    fmt : {"tabledata", "binary2", "binary"}
        VOTable serialisation.
    region : {"stcs", "dali"}
        s_region as STC-S text (default) or a DALI polygon array.
    coverage : CoverageSpec, optional
        The MOC orders of the area's coverage (``coverage/``,
        :mod:`vespa_curation.export.coverage`); None writes none.
    writers : (submit, window, release), optional
        Worker processes writing the data files of a run given in parts
        (:func:`vespa_curation.workers.local_pool`'s ``submit``), at most ``window``
        parts in flight, ``release()`` called once every part is written (their memory
        is not needed for the rest); by default each part is written in this process.
        The files are the same either way.

    Returns
    -------
    pathlib.Path
        ``<dachs_inputs>/<schema>``.

    Raises
    ------
    ExportError
        Bad rows or arguments (nothing is written).
    vespa_curation.area.AreaError
        A concurrent export, or a bad run id.
    """
    run_id = A.check_run_id(run.run_id)
    retract = sorted({str(u).strip() for u in run.retract if str(u).strip()})
    single = isinstance(run.rows, pd.DataFrame)
    parts = (_checked_part(area.schema, run.rows, retract, run_id),) if single else \
        (_checked_part(area.schema, part, retract, run_id) for part in run.rows)
    extra = dict(run.extra_files or {})
    for rel in extra:
        p = Path(rel)
        if p.is_absolute() or ".." in p.parts or p.parts[0] in A.RESERVED:
            raise ExportError(f"extra file {rel!r}: must be a relative path outside "
                              f"{', '.join(A.RESERVED)}")
    with area.new_version(run_id) as stage:
        files = _carry_immutable(stage)
        cov = CoverageBuilder(coverage, service, stage.previous, stage.manifest) \
            if coverage is not None else None
        data_rels, new_uids, columns, sums = _write_data(
            stage, parts, single, run_id, service.spatial_frame_type, fmt, region,
            service.column_facts, cov, writers)
        n_links = _write_links(stage, run.links, run_id, fmt, files)
        granules, replaced, n_retracted = _write_state(stage, new_uids, retract,
                                                       run.granule_state, run_id)
        _write_retractions(stage, new_uids, retract, run_id, files)
        _write_extra(stage, extra, files)
        covered = _write_coverage(stage, cov, granules, retract, run_id, data_rels, files)
        all_columns = epncore.ordered(
            set(columns) | set((stage.manifest or {}).get("columns", [])),
            service.column_facts)
        creation = (stage.manifest or {}).get("creation_date") or _now_iso()
        rd = render_rd(service, all_columns, creation_date=creation,
                       temporal=(covered or {}).get("rd_temporal"))
        A.write_durable(stage.folder / A.RD, rd)
        for rel in [*data_rels, A.RD, A.GRANULES, *extra]:
            files[rel] = {"run_id": run_id, **sums.get(rel, {})}
        _checksums(stage.folder, files)
        summary = {"rows": len(new_uids), "new_rows": len(new_uids) - replaced,
                   "replaced_rows": replaced, "retracted": n_retracted,
                   "retract_listed": len(retract), "links_rows": n_links}
        _write_manifest(stage, service, run, files, data_rels, summary, all_columns,
                        creation, server_url, len(granules), covered)
    return area.path


def _checked_part(schema: str, rows, retract: list, run_id: str):
    """``rows`` without its ``qa_*`` columns, once its granule_uids are checked; a
    :class:`~vespa_curation.runfolder.RowGroups` part is checked on its granule_uid
    column and given back as it is (its writer reads it)."""
    if isinstance(rows, RF.RowGroups):
        _checked_part(schema, rows.read(["granule_uid"]) if "granule_uid" in rows.columns
                      else pd.DataFrame(index=range(len(rows))), retract, run_id)
        return rows
    rows = rows.drop(columns=[c for c in rows.columns if str(c).startswith("qa_")])
    if "granule_uid" not in rows:
        raise ExportError(f"{schema}: rows have no granule_uid column")
    uid = rows["granule_uid"]
    if uid.isna().any():
        i = uid.isna().to_numpy().nonzero()[0][0]
        raise ExportError(f"{schema}: row {i} has no granule_uid")
    _refuse_too_long(f"{schema}: epn_core", rows,
                     {"granule_uid": limits.GRANULE_UID_BYTES})
    dup = uid[uid.duplicated()]
    if len(dup):
        raise ExportError(f"{schema}: granule_uid {dup.iloc[0]!r} appears more than once "
                          "in the rows to export")
    if retract:
        clash = set(retract) & set(uid.astype(str))
        if clash:
            raise ExportError(f"{schema}: granule {sorted(clash)[0]!r} is both exported "
                              "and retracted in run " + run_id)
    return rows


def _refuse_too_long(where: str, rows: pd.DataFrame, limit_of) -> None:
    """ExportError for a value DaCHS's index on it cannot hold (the harvest refuses
    such rows, ``epn.too_long``/``link.too_long``: reaching this is a bug), so that no
    import area holds a file whose ``dachs imp`` would fail."""
    bad = limits.first_too_long(rows, limit_of)
    if bad is not None:
        i, name, n, limit = bad
        uid = rows["granule_uid"].iloc[i] if "granule_uid" in rows else i
        raise ExportError(f"{where} row of granule {str(uid)[:80]!r}: "
                          + limits.describe(name, n, limit))


def _carry_immutable(stage: Staging) -> dict[str, dict]:
    """Hard-link the previous version's data and links files; their manifest entries."""
    files: dict[str, dict] = {}
    for rel, info in ((stage.manifest or {}).get("files") or {}).items():
        if rel.split("/")[0] in A.IMMUTABLE:
            A.link_or_copy(stage.previous / rel, stage.folder / rel)
            files[rel] = dict(info)
    return files


def _write_data(stage: Staging, parts, single: bool, run_id: str, frame: str, fmt: str,
                region: str, facts, cov: CoverageBuilder | None = None, writers=None
                ) -> tuple[list[str], pd.Series, set, dict]:
    """This run's epn_core VOTables, part by part (each fed to the coverage ``cov``),
    on the ``writers`` when given; (files, granule_uids, columns, checksums).

    A part is a DataFrame or a :class:`~vespa_curation.runfolder.RowGroups`: a writer
    process reads the latter itself, this process only its granule_uids (and the
    s_region when ``cov`` needs the polygons). A writer also takes the checksum of the
    file it wrote (``checksums``: file → ``sha256``, ``bytes``), while the others are
    written, rather than this process reading every data file again at the end."""
    data_rels, uid_parts, column_set = [], [], set()
    sums: dict[str, dict] = {}
    bar = Progress("export (VOTables)", unit="rows")
    pending: collections.deque = collections.deque()

    def drain(limit: int) -> None:
        while len(pending) > limit:
            rel, fut = pending.popleft()
            times, sums[rel] = fut.result()   # a part's ExportError is raised here
            if cov is not None:
                cov.add_times(times)

    try:
        for k, part in enumerate(parts):
            bar.update(len(part))
            by_writer = writers is not None and not single
            if isinstance(part, RF.RowGroups) and not by_writer:
                part = part.read()
            names = part.columns if isinstance(part, RF.RowGroups) else list(part.columns)
            column_set.update(epn_columns(pd.DataFrame(columns=names), facts))
            uids = part.read(["granule_uid"]) if isinstance(part, RF.RowGroups) else part
            uid_parts.append(np.asarray(uids["granule_uid"].astype(str).to_numpy(),
                                        dtype=str))
            if len(part):  # DaCHS's voTableGrammar fails on a table without rows
                rel = A.data_file(run_id, None if single else k + 1)
                args = (part, stage.folder / rel, frame)
                kwargs = dict(fmt=fmt, region=region, columns=facts)
                if by_writer:
                    submit, window, _release = writers
                    drain(window - 1)
                    pending.append((rel, submit(_write_part, args, kwargs,
                                                cov is not None)))
                    if cov is not None and cov.needs_polygons and "s_region" in names:
                        cov.add_polygons(part.read(["s_region"])["s_region"]
                                         if isinstance(part, RF.RowGroups)
                                         else part["s_region"])
                else:
                    write_epn_votable(*args, **kwargs)
                    if cov is not None:
                        cov.add(part)
                data_rels.append(rel)
            del part
        drain(0)
    finally:
        for _, fut in pending:  # a part failed: the others finish before the stage goes
            fut.exception()
        if writers is not None:
            writers[2]()
        bar.close()
    uids = pd.Series(np.concatenate(uid_parts) if uid_parts else np.array([], dtype=str),
                     dtype=object)
    return data_rels, uids, column_set, sums


def _write_part(args, kwargs, times: bool):
    """One data file, in a writer process: the coverage's
    :func:`~.coverage.part_times` of its rows (when ``times``; else None) and the
    file's checksum (``sha256``, ``bytes``), as the manifest keeps them."""
    times = _write_part_file(args, kwargs, times)
    path = args[1]
    return times, {"sha256": A.sha256(path), "bytes": path.stat().st_size}


def _write_part_file(args, kwargs, times: bool):
    """:func:`_write_part`'s file. A RowGroups part is read here, as TABLEDATA in
    slices of :data:`~.votable.TABLEDATA_BLOCK` rows (a writer holds one slice, not
    its whole part)."""
    part, path, frame = args
    if not isinstance(part, RF.RowGroups):
        write_epn_votable(part, path, frame, **kwargs)
        return part_times(part) if times else None
    names = [c for c in part.columns if not str(c).startswith("qa_")]
    # the s_region hashes of the decisions, for the coverage
    read = names + [REGION_HASH] if times and REGION_HASH in part.columns else names
    if kwargs.get("fmt") != "tabledata":
        rows = part.read(read)
        write_epn_votable(rows, path, frame, **kwargs)
        return part_times(rows) if times else None
    kept = []

    def slices():
        for rows in part.slices(TABLEDATA_BLOCK, read):
            if times:
                kept.append(part_times(rows))
            yield rows
    write_epn_votable_slices(slices(), names, path, frame, region=kwargs.get("region",
                             "stcs"), columns=kwargs.get("columns"))
    release_memory()    # a writer writes several parts: no creep from part to part
    return pd.concat(kept, ignore_index=True) if kept else \
        (part_times(pd.DataFrame(columns=names)) if times else None)


def _write_coverage(stage: Staging, cov: CoverageBuilder | None, granules: pd.DataFrame,
                    retract: list, run_id: str, data_rels: list, files: dict) -> dict | None:
    """``coverage/`` of the new version (:mod:`.coverage`); its manifest section."""
    if cov is None:
        return None
    data_runs = {rel: str(info.get("run_id")) for rel, info in files.items()
                 if rel.startswith(A.DATA + "/")}
    data_runs.update({rel: run_id for rel in data_rels})
    section = cov.finish(stage.folder, granules, retract, run_id, data_runs)
    for rel in (A.TMOC, A.SMOC, A.COVERAGE_GRANULES):
        if (stage.folder / rel).is_file():
            files[rel] = {"run_id": run_id}
    return section


def _write_links(stage: Staging, links: pd.DataFrame | None, run_id: str, fmt: str,
                 files: dict) -> int:
    if links is None:
        return 0
    _refuse_too_long("links", links, limits.LINK_LIMITS)
    rel = A.links_file(run_id)
    write_table_votable(links, stage.folder / rel, name="links", fmt=fmt)
    files[rel] = {"run_id": run_id}
    return len(links)


def _write_state(stage: Staging, new_uids: pd.Series, retract: list,
                 granule_state: pd.DataFrame | None, run_id: str
                 ) -> tuple[pd.DataFrame, int, int]:
    """The granule state: which run holds the current row of each granule."""
    prev = stage.previous / A.GRANULES if stage.previous is not None else None
    if prev is not None and prev.is_file():
        granules = pd.read_parquet(prev)
    else:
        granules = pd.DataFrame({"granule_uid": pd.Series([], dtype=object),
                                 "run_id": pd.Series([], dtype=object)})
    if len(granules):
        known = granules["granule_uid"].isin(new_uids)
        gone = granules["granule_uid"].isin(retract)
    else:   # a first export: nothing to look up (isin would hash every new uid)
        known = gone = pd.Series(False, index=granules.index)
    added = pd.DataFrame({"granule_uid": new_uids.to_numpy(), "run_id": run_id})
    if granule_state is not None and len(granule_state.columns) > 1:
        for c, values in _state_columns(granule_state, new_uids).items():
            added[c] = values
    granules = pd.concat([granules[~known & ~gone], added], ignore_index=True)
    (stage.folder / A.STATE).mkdir(exist_ok=True)
    granules.to_parquet(stage.folder / A.GRANULES, index=False)
    return granules, int(known.sum()), int(gone.sum())


def _state_columns(state: pd.DataFrame, uids: pd.Series) -> dict:
    """The state columns (all of ``state``'s but granule_uid) of each granule of
    ``uids``, from its last row in ``state``. The decisions give the state of the rows
    to export, each granule once and in the order of the data files: then the columns
    are ``state``'s as they are (a million granules: 0.2 s instead of 1.5 s to look
    each one up)."""
    su = state["granule_uid"]
    if len(su) == len(uids) and _same_texts(su, uids) and pd.Index(su).is_unique:
        return {c: state[c].to_numpy(dtype=object) if state[c].dtype == object
                else state[c].array for c in state.columns if c != "granule_uid"}
    st = state.drop_duplicates("granule_uid", keep="last").set_index("granule_uid") \
        .reindex(uids)
    return {c: st[c].to_numpy(dtype=object) for c in st.columns}


def _same_texts(a: pd.Series, b: pd.Series) -> bool:
    """Whether two columns hold the same texts in the same order (no NULL)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    try:
        eq = pc.equal(*(pa.array(s, type=pa.large_string(), from_pandas=True)
                        for s in (a, b)))
    except (pa.ArrowInvalid, pa.ArrowTypeError):    # a value that is no text
        return False
    return eq.null_count == 0 and bool(pc.all(eq).as_py())


def _write_retractions(stage: Staging, new_uids: pd.Series, retract: list, run_id: str,
                       files: dict) -> None:
    """Earlier retraction lists lose the granules exported again now; this run's list."""
    readded = None      # a set of a million uids costs 0.2 s: only when there are lists
    for rel, info in ((stage.manifest or {}).get("files") or {}).items():
        if not rel.startswith(A.RETRACT + "/"):
            continue
        if readded is None:
            readded = set(new_uids)
        lines = A.read_uid_list(stage.previous / rel)
        keep = [u for u in lines if u not in readded]
        if len(keep) == len(lines):
            A.link_or_copy(stage.previous / rel, stage.folder / rel)
            files[rel] = dict(info)
        elif keep:
            A.write_durable(stage.folder / rel, "\n".join(keep) + "\n")
            files[rel] = {"run_id": info.get("run_id")}
    if retract:
        rel = A.retract_file(run_id)
        A.write_durable(stage.folder / rel, "\n".join(retract) + "\n")
        files[rel] = {"run_id": run_id}


def _write_extra(stage: Staging, extra: Mapping[str, Any], files: dict) -> None:
    """Extra files of this run; those of earlier runs not given again are kept."""
    for rel, content in extra.items():
        dst = stage.folder / rel
        if isinstance(content, (bytes, str)):
            A.write_durable(dst, content)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(content, dst)
    for rel, info in ((stage.manifest or {}).get("files") or {}).items():
        if rel.split("/")[0] not in A.RESERVED and rel not in extra:
            A.link_or_copy(stage.previous / rel, stage.folder / rel)
            files[rel] = dict(info)


def _checksums(folder: Path, files: dict) -> None:
    for rel, info in files.items():
        if "sha256" not in info:
            p = folder / rel
            info["sha256"] = A.sha256(p)
            info["bytes"] = p.stat().st_size


def _write_manifest(stage: Staging, service, run: RunExport, files: dict, data_rels,
                    summary: dict, columns, creation: str, server_url: str,
                    total_rows: int, coverage: dict | None = None) -> None:
    old = stage.manifest or {}
    own = [r for r in (*data_rels, A.links_file(run.run_id), A.retract_file(run.run_id))
           if r in files and files[r].get("run_id") == run.run_id]
    entry = {"run_id": run.run_id, "time": _now_iso(), **summary, "mark": run.mark,
             "files": {r: files[r]["sha256"] for r in own}}
    man = {
        "schema": service.name, "format": 1, "spatial_frame_type": service.spatial_frame_type,
        "creation_date": creation, "server_url": server_url, "columns": list(columns),
        "total_rows": int(total_rows),
        "mark": run.mark if run.mark is not None else old.get("mark"),
        "runs": list(old.get("runs", [])) + [entry],
        "files": dict(sorted(files.items())),
    }
    if coverage is not None:
        man["coverage"] = coverage
    A.write_durable(stage.folder / A.MANIFEST,
                    json.dumps(man, indent=1, default=_json_default) + "\n")
    for sub in ("", A.DATA, A.LINKS, A.RETRACT, A.STATE, A.COVERAGE):
        if (stage.folder / sub).is_dir():
            A.fsync_dir(stage.folder / sub)


def _json_default(o):
    if isinstance(o, pd.Timestamp):
        return o.isoformat()
    if hasattr(o, "item"):
        return o.item()
    return str(o)


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
