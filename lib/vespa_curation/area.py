"""The DaCHS import area of one service: its layout, what it holds, and its atomic versions.

:class:`ImportArea` is the one place that knows the area's layout::

    <dachs_inputs>/<schema>/            -> symlink to .<schema>.versions/<NNNNNN>-<run-id>
        q.rd                            the resource descriptor
        data/<run-id>[-<NNNN>].vot      epn_core rows of each run (immutable once written)
        links/<run-id>.vot              datalink rows of each run (immutable)
        retract/<run-id>.txt            granule_uids to delete
        state/granules.parquet          per granule: the run holding its current row, its
                                        content hash and first-publication dates
        coverage/                       smoc.fits, tmoc.fits: where and when the granules
                                        lie (MOCs; vespa_curation.export.coverage)
        manifest.json                   runs, row counts, checksums, the incremental mark

and how it changes: :meth:`ImportArea.new_version` builds a complete new version folder
beside the current one and swaps the ``<schema>`` symlink with one ``rename(2)``. A
failure — an exception or a killed process — at any point before the swap leaves the
previous version exactly as it was; the half-built folder is removed (or, after a kill,
by the next export). DaCHS resolves RDs by path without following links
(``os.path.abspath``), so ``<schema>/q.rd`` keeps its RD id.

What goes into a version (VOTables, the RD) is written by :mod:`vespa_curation.export`;
the incremental mark, the published granules and the per-granule state are read here
by the stages that need them.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pandas as pd

RD = "q.rd"
MANIFEST = "manifest.json"
DATA, LINKS, RETRACT, STATE = "data", "links", "retract", "state"
GRANULES = f"{STATE}/granules.parquet"
#: The coverage (written by every export: vespa_curation.export.coverage).
COVERAGE = "coverage"
SMOC, TMOC = f"{COVERAGE}/smoc.fits", f"{COVERAGE}/tmoc.fits"
COVERAGE_GRANULES = f"{COVERAGE}/granules.parquet"
#: Folders whose files are written once and carried into later versions unchanged.
IMMUTABLE = (DATA, LINKS)
#: Area-relative names that only the export writer itself may write.
RESERVED = (DATA, LINKS, RETRACT, STATE, MANIFEST, RD, COVERAGE)
#: Columns kept per granule beside ``granule_uid`` and ``run_id``
#: (:mod:`vespa_curation.incremental`).
STATE_COLUMNS = ("content_hash", "creation_date", "release_date", "modification_date")
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class AreaError(RuntimeError):
    """The import area cannot be written (bad run id, concurrent export, not a folder)."""


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_run_id(run_id: str) -> str:
    """``run_id`` when it is a plain file name (it names the run's files), else
    :class:`AreaError`."""
    if not _RUN_ID.fullmatch(str(run_id)):
        raise AreaError(f"run id {run_id!r} is not a plain file name")
    return str(run_id)


def data_file(run_id: str, part: int | None = None) -> str:
    """Area-relative name of a run's epn_core rows (``part`` for runs written in parts)."""
    return f"{DATA}/{run_id}.vot" if part is None else f"{DATA}/{run_id}-{part:04d}.vot"


def links_file(run_id: str) -> str:
    return f"{LINKS}/{run_id}.vot"


def retract_file(run_id: str) -> str:
    return f"{RETRACT}/{run_id}.txt"


def read_uid_list(path: Path) -> list[str]:
    """The granule_uids of a ``retract/*.txt`` file, in order (blank and ``#`` lines
    skipped)."""
    return [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()
            if ln.strip() and not ln.startswith("#")]


@dataclass
class Staging:
    """A version being built: ``folder`` to write into, and the ``previous`` version
    (None for the first export) with its ``manifest``."""

    folder: Path
    previous: Path | None
    manifest: dict | None
    seq: int


class ImportArea:
    """``<dachs_inputs>/<schema>``: see the module docstring.

    Parameters
    ----------
    dachs_inputs : path-like
        DaCHS's inputs folder (or the project's ``outputs/dachs``).
    schema : str
        The service (= DaCHS schema) name.
    """

    def __init__(self, dachs_inputs: str | os.PathLike, schema: str):
        self.inputs = Path(dachs_inputs)
        self.schema = schema
        self.path = self.inputs / schema
        self.versions = self.inputs / f".{schema}.versions"

    @classmethod
    def at(cls, path: str | os.PathLike) -> "ImportArea":
        """The import area whose folder is ``path`` (``<dachs_inputs>/<schema>``)."""
        path = Path(path)
        return cls(path.parent, path.name)

    def __repr__(self) -> str:
        return f"ImportArea({str(self.inputs)!r}, {self.schema!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    # -- reading ----------------------------------------------------------------------
    def exists(self) -> bool:
        return (self.path / MANIFEST).is_file()

    def manifest(self) -> dict | None:
        """The manifest of the current version, or None before the first export."""
        p = self.path / MANIFEST
        if not p.is_file():
            return None
        return json.loads(p.read_text(encoding="utf-8"))

    def stored_mark(self) -> dict | None:
        """The incremental mark the last successful export kept (``time_jd``, ...)."""
        man = self.manifest()
        if man is None:
            return None
        mark = man.get("mark")
        if mark is None:
            runs = man.get("runs") or []
            mark = runs[-1].get("mark") if runs else None
        return dict(mark) if mark else None

    def coverage(self) -> dict | None:
        """The coverage the last export kept (the manifest's ``coverage`` section:
        ``spatial`` and ``time`` summaries, their files under ``coverage/``, the RD's
        ``rd_temporal`` intervals), or None."""
        man = self.manifest()
        return man.get("coverage") if man else None

    def total_rows(self) -> int:
        man = self.manifest()
        return int(man["total_rows"]) if man else 0

    def state(self, uids: Iterable[str] | None = None) -> pd.DataFrame:
        """What the area keeps per exported granule: ``granule_uid``, ``run_id`` and
        :data:`STATE_COLUMNS` (absent ones NULL) — of every granule, or of ``uids``
        only (filtered in Arrow before any Python object is made: a night's few hundred
        among a million)."""
        p = self.path / GRANULES
        cols = ["granule_uid", "run_id", *STATE_COLUMNS]
        if not p.is_file():
            return pd.DataFrame({c: pd.Series([], dtype=object) for c in cols})
        if uids is None:
            st = pd.read_parquet(p)
        else:
            import pyarrow as pa
            import pyarrow.compute as pc
            import pyarrow.parquet as pq
            table = pq.read_table(p)
            keep = pc.is_in(table["granule_uid"].cast(pa.string()),
                            value_set=pa.array([str(u) for u in uids], type=pa.string()))
            st = table.filter(keep).to_pandas()
        for c in cols:
            if c not in st:
                st[c] = None
        return st[cols]

    def published_uids(self) -> set[str]:
        """granule_uids the area holds a row of (exported and not retracted since).

        From the granule state when present; otherwise (an area made by hand or by an
        older writer) the ``granule_uid`` column of ``data/*.vot`` in run order, minus
        what a later ``retract/*.txt`` lists. An absent area publishes nothing.
        """
        state = self.path / GRANULES
        if state.is_file():
            return set(pd.read_parquet(state, columns=["granule_uid"])["granule_uid"]
                       .astype(str))
        events = [(p.stem, 0, p) for p in (self.path / DATA).glob("*.vot")]
        events += [(p.stem, 1, p) for p in (self.path / RETRACT).glob("*.txt")]
        out: set[str] = set()
        for _, kind, p in sorted(events):
            if kind == 0:
                out |= _vot_uids(p)
            else:
                out -= set(read_uid_list(p))
        return out

    def retracted_uids(self) -> set[str]:
        """granule_uids listed by any ``retract/*.txt`` of the area."""
        out: set[str] = set()
        for p in (self.path / RETRACT).glob("*.txt"):
            out |= set(read_uid_list(p))
        return out

    def verify(self) -> list[str]:
        """Files whose checksum or presence disagrees with the manifest (empty when the
        area is consistent)."""
        man = self.manifest()
        if man is None:
            return [f"{MANIFEST} missing"]
        bad = []
        for rel, info in man["files"].items():
            p = self.path / rel
            if not p.is_file():
                bad.append(f"{rel}: missing")
            elif sha256(p) != info["sha256"]:
                bad.append(f"{rel}: checksum differs")
        for sub in (DATA, LINKS, RETRACT):
            d = self.path / sub
            if d.is_dir():
                bad += [f"{sub}/{p.name}: not in manifest" for p in d.iterdir()
                        if f"{sub}/{p.name}" not in man["files"]]
        return bad

    # -- writing a new version ----------------------------------------------------------
    @contextmanager
    def new_version(self, run_id: str) -> Iterator[Staging]:
        """Build the next version in a staging folder and make it current on success.

        Holds an exclusive lock on the area for the whole build (a concurrent export
        gets :class:`AreaError`); on an exception the staging folder is removed and the
        current version stays; on success the staging folder becomes
        ``.<schema>.versions/<NNNNNN>-<run_id>``, the ``<schema>`` link is swapped to it,
        and versions other than it and the previous one are removed.
        """
        run_id = check_run_id(run_id)
        self.inputs.mkdir(parents=True, exist_ok=True)
        with self._lock():
            previous = self._previous()
            old = _read_json(previous / MANIFEST) if previous else None
            if old and any(r["run_id"] == run_id for r in old["runs"]):
                raise AreaError(f"{self.schema}: run {run_id} is already in the import "
                                "area")
            seq = (len(old["runs"]) if old else 0) + 1
            tmp = self.versions / f".tmp-{seq:06d}-{run_id}-{os.getpid()}"
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir()
            try:
                yield Staging(tmp, previous, old, seq)
                final = self.versions / f"{seq:06d}-{run_id}"
                if final.exists():
                    shutil.rmtree(final)
                os.rename(tmp, final)
                fsync_dir(self.versions)
                self._swap(final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            self._clean([final, previous])

    @contextmanager
    def _lock(self):
        self.versions.mkdir(parents=True, exist_ok=True)
        fh = open(self.versions / ".lock", "w")
        try:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise AreaError(f"another export of {self.schema} is writing its import "
                                f"area ({self.versions}); try again when it has "
                                "finished") from None
            yield
        finally:
            fh.close()

    def _previous(self) -> Path | None:
        """The current version folder (a plain folder is moved into the versions)."""
        area = self.path
        if area.is_symlink():
            target = Path(os.path.realpath(area))
            return target if target.is_dir() else None
        if area.is_dir():   # a plain folder (made by hand or by an older writer)
            dest = self.versions / f"000000-legacy-{int(time.time())}"
            os.rename(area, dest)
            os.symlink(os.path.relpath(dest, area.parent), area)
            return dest
        if area.exists():
            raise AreaError(f"{area} exists and is not a folder")
        return None

    def _swap(self, target: Path) -> None:
        """Point the area at ``target`` with one atomic rename."""
        link = self.inputs / f".{self.schema}.link-{os.getpid()}"
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(os.path.relpath(target, self.inputs), link)
        os.replace(link, self.path)
        fsync_dir(self.inputs)

    def _clean(self, keep: Iterable[Path | None]) -> None:
        """Remove version folders other than ``keep`` and folders half-built by an
        export that was killed."""
        keep = {p.resolve() for p in keep if p is not None}
        for p in self.versions.iterdir():
            if p.is_dir() and p.resolve() not in keep:
                shutil.rmtree(p, ignore_errors=True)


# -- small file helpers shared by the writer ----------------------------------------------

def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to ``dst`` (copy across file systems)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
        shutil.copy2(src, dst)


def write_durable(path: Path, content: str | bytes) -> None:
    """Write a file and fsync it (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode, kw = ("wb", {}) if isinstance(content, bytes) else ("w", {"encoding": "utf-8"})
    with open(path, mode, **kw) as fh:
        fh.write(content)
        fh.flush()
        os.fsync(fh.fileno())


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _vot_uids(path: Path) -> set[str]:
    from astropy.io.votable import parse
    vot = parse(str(path), columns=["granule_uid"], verify="ignore")
    tab = vot.get_first_table()
    return {str(v) for v in np.asarray(tab.array["granule_uid"]).tolist()}


__all__ = ["ImportArea", "AreaError", "Staging", "sha256", "check_run_id", "data_file",
           "links_file", "retract_file", "read_uid_list", "RD", "MANIFEST", "GRANULES",
           "DATA", "LINKS", "RETRACT", "STATE", "STATE_COLUMNS", "IMMUTABLE", "RESERVED",
           "COVERAGE", "SMOC", "TMOC", "COVERAGE_GRANULES"]
