"""The DaCHS import area of one service, written atomically.

Layout (DESIGN.md)::

    <dachs_inputs>/<schema>/            -> symlink to .<schema>.versions/<NNNNNN>-<run-id>
        q.rd
        data/<run-id>.vot               epn_core rows of each run (immutable once written)
        links/<run-id>.vot              datalink rows (optional)
        retract/<run-id>.txt            granule_uids to delete (optional)
        state/granules.parquet          granule_uid -> run holding its current row
        manifest.json                   runs, row counts, checksums, marks

Atomicity: each export builds a complete new version folder beside the current one
(earlier data files hard-linked, never rewritten), then swaps the ``<schema>`` symlink
with one ``rename(2)``. A failure — an exception or a killed process — at any point before
the swap leaves the previous import area exactly as it was; the half-built folder is
removed (or, after a kill, by the next export). DaCHS resolves RDs by path without
following links (``os.path.abspath``), so ``<schema>/q.rd`` keeps its RD id.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from .rd import render_rd
from .votable import ExportError, epn_columns, write_epn_votable, write_table_votable

MANIFEST = "manifest.json"
GRANULES = "state/granules.parquet"
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def area_path(dachs_inputs: str | os.PathLike, schema: str) -> Path:
    """``<dachs_inputs>/<schema>`` (the path DaCHS reads)."""
    return Path(dachs_inputs) / schema


def read_manifest(area: str | os.PathLike) -> dict | None:
    """The manifest of an import area, or None when there is none yet."""
    p = Path(area) / MANIFEST
    if not p.is_file():
        return None
    return json.loads(p.read_text(encoding="utf-8"))


def verify_area(area: str | os.PathLike) -> list[str]:
    """Files of the area whose checksum or presence disagrees with the manifest
    (empty when the area is consistent)."""
    area = Path(area)
    man = read_manifest(area)
    if man is None:
        return ["manifest.json missing"]
    bad = []
    for rel, info in man["files"].items():
        p = area / rel
        if not p.is_file():
            bad.append(f"{rel}: missing")
        elif sha256(p) != info["sha256"]:
            bad.append(f"{rel}: checksum differs")
    for sub in ("data", "links", "retract"):
        d = area / sub
        if d.is_dir():
            for p in d.iterdir():
                rel = f"{sub}/{p.name}"
                if rel not in man["files"]:
                    bad.append(f"{rel}: not in manifest")
    return bad


@contextmanager
def _lock(versions: Path, schema: str):
    versions.mkdir(parents=True, exist_ok=True)
    fh = open(versions / ".lock", "w")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ExportError(f"another export of {schema} is writing its import area "
                              f"({versions}); try again when it has finished") from None
        yield
    finally:
        fh.close()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
        shutil.copy2(src, dst)


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def _write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _json_default(o):
    if isinstance(o, (pd.Timestamp,)):
        return o.isoformat()
    if hasattr(o, "item"):
        return o.item()
    return str(o)


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _check_rows(schema: str, rows: pd.DataFrame) -> None:
    if "granule_uid" not in rows:
        raise ExportError(f"{schema}: rows have no granule_uid column")
    uid = rows["granule_uid"]
    if uid.isna().any():
        i = uid.isna().to_numpy().nonzero()[0][0]
        raise ExportError(f"{schema}: row {i} has no granule_uid")
    dup = uid[uid.duplicated()]
    if len(dup):
        raise ExportError(f"{schema}: granule_uid {dup.iloc[0]!r} appears more than once "
                          "in the rows to export")


def _prepare_previous(area: Path, versions: Path) -> Path | None:
    """The current version folder (migrating a plain folder into the versions)."""
    if area.is_symlink():
        target = Path(os.path.realpath(area))
        return target if target.is_dir() else None
    if area.is_dir():   # a plain folder (made by hand or by an older writer)
        dest = versions / f"000000-legacy-{int(time.time())}"
        os.rename(area, dest)
        os.symlink(os.path.relpath(dest, area.parent), area)
        return dest
    if area.exists():
        raise ExportError(f"{area} exists and is not a folder")
    return None


def _clean(versions: Path, keep: Iterable[Path]) -> None:
    """Remove version folders other than ``keep`` (the new and the previous one) and
    folders half-built by an export that was killed."""
    keep = {p.resolve() for p in keep if p is not None}
    for p in versions.iterdir():
        if p.is_dir() and p.resolve() not in keep:
            shutil.rmtree(p, ignore_errors=True)


def write_import_area(service, rows: pd.DataFrame, *, dachs_inputs, run_id: str,
                      server_url: str = "http://localhost:8080",
                      links: pd.DataFrame | None = None, retract: Iterable[str] = (),
                      mark: Any = None,
                      extra_files: Mapping[str, bytes | str | os.PathLike] | None = None,
                      fmt: str = "tabledata", region: str = "stcs",
                      params: Mapping[str, Any] | None = None,
                      granule_state: pd.DataFrame | None = None) -> Path:
    """Add one run's rows to the DaCHS import area of ``service``, atomically.

    Parameters
    ----------
    service : vespa_curation.services.Service
        The service (its name is the DaCHS schema and the area's folder name).
    rows : DataFrame or iterable of DataFrame
        epn_core rows (``qa_*`` columns are dropped); may be empty.  An iterable gives
        the rows in parts (bounded memory for a full re-export of a large table): each
        part is checked and written as its own ``data/<run_id>-<NNNN>.vot`` as it
        comes, and a bad part leaves the area as it was.
    dachs_inputs : path-like
        DaCHS's inputs folder (or the project's ``outputs/dachs``).
    run_id : str
        Names this run's files (``data/<run_id>.vot``, ...); unique per area.
    server_url : str
        Public DaCHS URL, given to RD fragments (datalink, TFCat).
    links : DataFrame, optional
        Datalink rows, written to ``links/<run_id>.vot``.
    retract : iterable of str
        granule_uids to delete from the service (``retract/<run_id>.txt``).
    mark : JSON-serialisable, optional
        The incremental mark after this run (kept in the manifest).
    extra_files : mapping, optional
        Area-relative path → content (bytes, text or a file to copy), e.g. TFCat files.
    fmt : str
        VOTable serialisation (see :data:`vespa_curation.export.votable.FORMATS`).
    region : {"stcs", "dali"}
        s_region as STC-S text (default) or a DALI polygon array.
    granule_state : DataFrame, optional
        ``granule_uid`` + more columns kept per granule in ``state/granules.parquet``
        beside ``run_id`` (the incremental content hash and first-publication dates,
        :mod:`vespa_curation.incremental`).

    Returns
    -------
    pathlib.Path
        ``<dachs_inputs>/<schema>``.

    Raises
    ------
    ExportError
        Bad rows or arguments (nothing is written), or a concurrent export.
    """
    schema = service.name
    if not _RUN_ID.fullmatch(str(run_id)):
        raise ExportError(f"run id {run_id!r} is not a plain file name")
    run_id = str(run_id)
    retract = sorted({str(u).strip() for u in retract if str(u).strip()})
    single = isinstance(rows, pd.DataFrame)
    parts = (_checked_part(schema, rows, retract, run_id),) if single else \
        (_checked_part(schema, part, retract, run_id) for part in rows)
    extra_files = dict(extra_files or {})
    for rel in extra_files:
        p = Path(rel)
        if p.is_absolute() or ".." in p.parts or p.parts[0] in (
                "data", "links", "retract", "state", MANIFEST, "q.rd"):
            raise ExportError(f"extra file {rel!r}: must be a relative path outside "
                              "data/, links/, retract/, state/")

    dachs_inputs = Path(dachs_inputs)
    dachs_inputs.mkdir(parents=True, exist_ok=True)
    area = area_path(dachs_inputs, schema)
    versions = dachs_inputs / f".{schema}.versions"
    with _lock(versions, schema):
        previous = _prepare_previous(area, versions)
        old_man = read_manifest(previous) if previous else None
        if old_man and any(r["run_id"] == run_id for r in old_man["runs"]):
            raise ExportError(f"{schema}: run {run_id} is already in the import area")
        seq = (len(old_man["runs"]) if old_man else 0) + 1
        tmp = versions / f".tmp-{seq:06d}-{run_id}-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        try:
            new = _build(service, parts, single, tmp, previous, old_man,
                         run_id=run_id, server_url=server_url, links=links,
                         retract=retract, mark=mark, extra_files=extra_files, fmt=fmt,
                         region=region,
                         granule_state=granule_state)
            final = versions / f"{seq:06d}-{run_id}"
            if final.exists():
                shutil.rmtree(final)
            os.rename(tmp, final)
            _fsync_dir(versions)
            _swap(area, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _clean(versions, [final, previous])
    return area


def _checked_part(schema: str, rows: pd.DataFrame, retract: list, run_id: str) -> pd.DataFrame:
    rows = rows.drop(columns=[c for c in rows.columns if str(c).startswith("qa_")])
    _check_rows(schema, rows)
    if retract:
        clash = set(retract) & set(rows["granule_uid"].astype(str))
        if clash:
            raise ExportError(f"{schema}: granule {sorted(clash)[0]!r} is both exported "
                              "and retracted in run " + run_id)
    return rows


def _swap(area: Path, target: Path) -> None:
    """Point ``area`` at ``target`` with one atomic rename."""
    link = area.parent / f".{area.name}.link-{os.getpid()}"
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink(os.path.relpath(target, area.parent), link)
    os.replace(link, area)
    _fsync_dir(area.parent)


def _build(service, parts, single: bool, tmp: Path, previous: Path | None,
           old_man: dict | None, *, run_id, server_url, links, retract, mark, extra_files,
           fmt, region="stcs", granule_state=None) -> dict:
    schema = service.name
    frame = service.spatial_frame_type
    files: dict[str, dict] = {}
    # 1. earlier immutable files, hard-linked
    old_files = dict(old_man["files"]) if old_man else {}
    for rel, info in old_files.items():
        if rel.split("/")[0] in ("data", "links"):
            _link_or_copy(previous / rel, tmp / rel)
            files[rel] = dict(info)
    # 2. this run's data, part by part
    data_rels, uid_parts, column_set = [], [], set()
    for k, rows in enumerate(parts):
        column_set.update(epn_columns(rows))
        uid_parts.append(np.asarray(rows["granule_uid"].astype(str).to_numpy(), dtype=str))
        if len(rows):  # DaCHS's voTableGrammar fails on a table without rows
            rel = f"data/{run_id}.vot" if single else f"data/{run_id}-{k + 1:04d}.vot"
            write_epn_votable(rows, tmp / rel, frame, fmt=fmt, region=region)
            data_rels.append(rel)
        del rows
    columns = sorted(column_set)
    new_uids = pd.Series(np.concatenate(uid_parts) if uid_parts else np.array([], dtype=str),
                         dtype=object)
    n_rows = len(new_uids)
    links_rel = None
    n_links = 0
    if links is not None:
        links_rel = f"links/{run_id}.vot"
        write_table_votable(links, tmp / links_rel, name="links", fmt=fmt)
        n_links = len(links)
    # 3. granule state: which run holds the current row of each granule
    if previous is not None and (previous / GRANULES).is_file():
        granules = pd.read_parquet(previous / GRANULES)
    else:
        granules = pd.DataFrame({"granule_uid": pd.Series([], dtype=object),
                                 "run_id": pd.Series([], dtype=object)})
    known = granules["granule_uid"].isin(new_uids)
    replaced = int(known.sum())
    gone = granules["granule_uid"].isin(retract)
    n_retracted = int(gone.sum())
    added = pd.DataFrame({"granule_uid": new_uids.to_numpy(), "run_id": run_id})
    if granule_state is not None and len(granule_state.columns) > 1:
        st = granule_state.drop_duplicates("granule_uid", keep="last") \
            .set_index("granule_uid").reindex(new_uids)
        for c in st.columns:
            added[c] = st[c].to_numpy(dtype=object)
    granules = pd.concat([granules[~known & ~gone], added], ignore_index=True)
    (tmp / "state").mkdir(exist_ok=True)
    granules.to_parquet(tmp / GRANULES, index=False)
    # 4. retractions: earlier lists lose granules exported again now
    readded = set(new_uids)
    for rel, info in old_files.items():
        if rel.startswith("retract/"):
            lines = (previous / rel).read_text(encoding="utf-8").splitlines()
            keep = [u for u in lines if u.strip() and u.strip() not in readded]
            if len(keep) == len([u for u in lines if u.strip()]):
                _link_or_copy(previous / rel, tmp / rel)
                files[rel] = dict(info)
            elif keep:
                _write_text(tmp / rel, "\n".join(keep) + "\n")
                files[rel] = {"run_id": info.get("run_id")}
    retract_rel = None
    if retract:
        retract_rel = f"retract/{run_id}.txt"
        _write_text(tmp / retract_rel, "\n".join(retract) + "\n")
    # 5. extra files (e.g. TFCat), replaced by each export that gives them
    for rel, content in extra_files.items():
        dst = tmp / rel
        if isinstance(content, bytes):
            _write_bytes(dst, content)
        elif isinstance(content, str):
            _write_text(dst, content)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(content, dst)
    if old_man:   # extra files of earlier exports stay unless replaced
        for rel, info in old_files.items():
            if rel.split("/")[0] not in ("data", "links", "retract", "q.rd", "state") \
                    and rel not in extra_files and rel != "q.rd":
                _link_or_copy(previous / rel, tmp / rel)
                files[rel] = dict(info)
    # 6. q.rd (columns: the union over every run, as the table must hold them all)
    all_columns = sorted(set(columns) | set(old_man.get("columns", []) if old_man else []))
    from .. import epncore
    all_columns = epncore.ordered(all_columns)
    creation = (old_man or {}).get("creation_date") or _now_iso()
    has_links = links is not None or any(r.startswith("links/") for r in files)
    rd = render_rd(service, all_columns, creation_date=creation, server_url=server_url,
                   has_links=has_links, has_retract=True,
                   extra_files=sorted(extra_files))
    _write_text(tmp / "q.rd", rd)
    # 7. checksums and manifest (written last)
    for rel in [*data_rels, links_rel, retract_rel, "q.rd", GRANULES, *extra_files]:
        if rel is not None:
            files[rel] = {"run_id": run_id}
    for rel, info in files.items():
        if "sha256" not in info:
            p = tmp / rel
            info["sha256"] = sha256(p)
            info["bytes"] = p.stat().st_size
    run = {
        "run_id": run_id, "time": _now_iso(), "rows": n_rows,
        "new_rows": n_rows - replaced, "replaced_rows": replaced,
        "retracted": n_retracted, "retract_listed": len(retract), "links_rows": n_links,
        "mark": mark,
        "files": {r: files[r]["sha256"] for r in (*data_rels, links_rel, retract_rel)
                  if r is not None},
    }
    man = {
        "schema": schema, "format": 1, "spatial_frame_type": frame,
        "creation_date": creation, "server_url": server_url,
        "columns": all_columns, "total_rows": int(len(granules)),
        "mark": mark if mark is not None else (old_man or {}).get("mark"),
        "runs": list((old_man or {}).get("runs", [])) + [run],
        "files": dict(sorted(files.items())),
    }
    _write_text(tmp / MANIFEST, json.dumps(man, indent=1, default=_json_default) + "\n")
    for sub in ("", "data", "links", "retract", "state"):
        if (tmp / sub).is_dir():
            _fsync_dir(tmp / sub)
    return man
