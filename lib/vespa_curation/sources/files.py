"""File collections: a folder searched recursively (``files:DIR``), read by a declared
:class:`Files` harvester — like DaCHS's ``<sources pattern="data/*.cdf"/>`` with a
header grammar.

Every file matching the service's patterns is one record. The harvester gives, for each
file, what the file system knows (``PATH`` relative to the folder, ``NAME``, ``SIZE``
in bytes, ``MTIME``, the ``PRODUCT`` — the stem without its version suffix — and its
``VERSION``) plus the fields its *reader* returns: a function of the file's path that
reads headers, attributes and axes (never a whole data array) and returns a dict of
upper-case record fields. Readers are registered by format name by the modules that own
each format (:mod:`vespa_curation.formats`).

Versions: when a folder holds several versions of one product (``_V12`` / ``_v1.1`` /
``_v01`` before the extension), only the highest is read; the others are reported in
the harvest summary (``superseded``), never published beside it.

The incremental mark: the files modified after the stored mark's ``run_date`` (the
newest modification time exported, to the millisecond), those whose product is not
published yet (a file copied with its old modification time), and those quarantined
earlier are read; the others are not opened. A published product whose file is gone is reported
(``missing``); the export retracts it only when the harvester declares
``retract_missing``.
"""
from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from ..formats import READERS, Reader
from .base import Harvester, Mark, Source
from .errors import SourceError
from .schemes import scheme
from .values import check_kinds

#: ``..._V12.cdf``, ``..._v1.1.fits``, ``..._v01.cdf``: the version suffix of a stem.
VERSION = re.compile(r"_[vV](\d+(?:\.\d+)*)$")
#: Record field set on a file its reader could not read (the reason).
READ_ERROR = "READ_ERROR"
#: Record field holding the file's absolute path until it is read (:meth:`Files.expand`).
FILE = "_FILE"
#: Kinds of the fields the file system gives (:meth:`FileTree.listing`).
LISTING_KINDS = {"PATH": "text", "NAME": "text", "SIZE": "int", "MTIME": "date",
                 "PRODUCT": "text", "VERSION": "text", READ_ERROR: "text"}


def product_and_version(stem: str) -> tuple[str, tuple[int, ...]]:
    """``("srn_nda_..._201801010000", (12,))`` of ``srn_nda_..._201801010000_V12``;
    a stem without a version suffix is version ``()``."""
    m = VERSION.search(stem)
    if not m:
        return stem, ()
    return stem[:m.start()], tuple(int(p) for p in m.group(1).split("."))


def file_stem(name: str) -> str:
    """The name without its extensions (``.cdf``, ``.fits.gz``, ``.json``)."""
    return re.sub(r"(\.[A-Za-z][A-Za-z0-9]{0,4})+$", "", name)


class FileTree(Source):
    """A folder of files (the ``files:DIR`` source)."""

    kind = "files"

    def __init__(self, root: Path):
        self.root = Path(root)
        self.label = f"files:{self.root}"

    def walk(self) -> dict[str, os.stat_result]:
        """Every file under the folder (relative POSIX path → its stat; a dangling
        link is listed with its own stat, so that reading it fails by name instead of
        the file silently missing)."""
        out: dict[str, os.stat_result] = {}
        for folder, dirs, names in os.walk(self.root):
            dirs.sort()
            base = Path(folder)
            for n in names:
                p = base / n
                try:
                    st = p.stat()
                except OSError:
                    st = p.lstat()
                out[p.relative_to(self.root).as_posix()] = st
        return out

    def listing(self, patterns: Sequence[str], files: Mapping[str, os.stat_result] | None
                = None) -> pd.DataFrame:
        """Every file whose name matches one of ``patterns`` (file-name globs, matched
        at any depth): PATH, NAME, SIZE, MTIME (Unix seconds), PRODUCT, VERSION, sorted
        by PATH."""
        files = self.walk() if files is None else files
        paths = sorted(p for p in files
                       if any(fnmatch.fnmatchcase(PurePosixPath(p).name, pat)
                              for pat in patterns))
        names = [PurePosixPath(p).name for p in paths]
        pv = [product_and_version(file_stem(n)) for n in names]
        return pd.DataFrame({
            "PATH": pd.Series(paths, dtype=object), "NAME": pd.Series(names, dtype=object),
            "SIZE": np.array([files[p].st_size for p in paths], dtype=np.int64),
            "MTIME": np.array([files[p].st_mtime for p in paths], dtype=float),
            "PRODUCT": pd.Series([p for p, _ in pv], dtype=object),
            "VERSION": pd.Series([v for _, v in pv], dtype=object)})


def companions(listing: pd.DataFrame, files: Mapping[str, os.stat_result],
               templates: Mapping[str, str]) -> dict[str, list]:
    """Files that go with each listed file, found by name anywhere under the folder:
    field → the relative path of ``template.format(product=, stem=, name=)`` (the one in
    the file's own folder when there are several), None when there is none."""
    by_name: dict[str, list[str]] = {}
    for p in files:
        by_name.setdefault(PurePosixPath(p).name, []).append(p)
    out: dict[str, list] = {f: [] for f in templates}
    for path, name, product in zip(listing["PATH"], listing["NAME"], listing["PRODUCT"]):
        folder = str(PurePosixPath(path).parent)
        for field_name, template in templates.items():
            hits = sorted(by_name.get(template.format(product=product, stem=file_stem(name),
                                                      name=name), []))
            near = [h for h in hits if str(PurePosixPath(h).parent) == folder]
            out[field_name].append((near or hits or [None])[0])
    return out


@scheme("files:", "files:DIR", "a folder of files, searched recursively with the "
        "service's declared file patterns")
def _open_files(rest: str) -> FileTree:
    from ..paths import resolve
    root = resolve(rest)
    if not root.is_dir():
        raise SourceError(f"folder {root} does not exist (run `vespa-curate sample` to "
                          "build the embedded samples)")
    return FileTree(root)


@dataclass(frozen=True)
class Files(Harvester):
    """Records of a file collection (see the module docstring).

    Attributes
    ----------
    patterns : sequence of str
        File-name globs, matched at any depth under the source folder
        (``srn_nda_routine_*_edr_*.cdf``).
    reader : str or callable
        A registered format (``"fits"``, ...; :mod:`vespa_curation.formats`) or a
        function ``reader(path) -> dict`` of the service's own.
    companions : mapping
        Record field → the name of a file that goes with each file (``T_{product}.png``,
        ``{stem}.json``; ``{product}``, ``{stem}``, ``{name}`` filled in), found anywhere
        under the folder: the field holds its relative path, or None.
    retract_missing : bool
        Retract a published product whose file has disappeared (default: report it
        only, a curator decides).
    kinds : mapping
        Kinds of the reader's fields (:mod:`~vespa_curation.sources.values`); those
        of the file system's fields (``PATH``, ``SIZE``, ``MTIME``, ...) are known.
    """

    reads = "files"
    patterns: Sequence[str] = ()
    reader: str | Reader = ""
    companions: Mapping[str, str] = field(default_factory=dict)
    retract_missing: bool = False
    mark: Mark = field(default_factory=lambda: Mark(changed="MTIME"))
    key: str = "PATH"
    kinds: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self):
        check_kinds(self.kinds, list(self.kinds), "Files")
        if not self.patterns:
            raise ValueError("Files: at least one file pattern is needed")
        if isinstance(self.reader, str) and self.reader not in READERS:
            raise ValueError(f"Files: no reader for format {self.reader!r}; known: "
                             + ", ".join(sorted(READERS)))

    def describe(self) -> str:
        return f"files {' '.join(self.patterns)} read as {self._reader_name()}"

    def field_kinds(self) -> dict[str, str]:
        return {**LISTING_KINDS, **{f: "text" for f in self.companions}, **self.kinds}

    def _reader_name(self) -> str:
        return self.reader if isinstance(self.reader, str) else self.reader.__name__

    def _read(self) -> Reader:
        return READERS[self.reader] if isinstance(self.reader, str) else self.reader

    def check(self, source) -> None:
        """The folder exists and at least one file matches the patterns (a pattern
        matching nothing is a declaration error, refused by name before any work)."""
        if not source.root.is_dir():
            raise SourceError(f"{source.label}: not a folder")
        if not len(source.listing(self.patterns)):
            raise SourceError(f"{source.label}: no file matches the pattern(s) "
                              + ", ".join(self.patterns))

    def select(self, listing: pd.DataFrame, mark: Mapping[str, Any] | None,
               published: set[str] | None) -> tuple[pd.DataFrame, dict]:
        """The files to read: the highest version of each product, new or changed
        since ``mark``; and what to report (``superseded``, ``missing`` products)."""
        order = listing.assign(_V=listing["VERSION"].map(lambda v: tuple(v)))
        order = order.sort_values(["PRODUCT", "_V"], kind="stable")
        top = ~order["PRODUCT"].duplicated(keep="last")
        newest = order[top].drop(columns="_V").sort_values("PATH", kind="stable")
        report = {"superseded": order.loc[~top, "PATH"].tolist()}
        if published is not None:
            report["missing"] = sorted(set(published) - set(newest["PRODUCT"]))
        if mark:
            since = mark.get("run_date")
            retry = {str(r) for r in (mark.get("retry") or [])}
            keep = newest["PATH"].isin(retry).to_numpy().copy()
            if since is not None:   # modified after the newest file exported (ms, as kept)
                mtime = pd.to_datetime(newest["MTIME"], unit="s").dt.round("ms")
                keep |= (mtime > pd.Timestamp(since)).to_numpy()
            if published is not None:
                keep |= ~newest["PRODUCT"].isin(published).to_numpy()
            newest = newest[keep]
        return newest.reset_index(drop=True), report

    def records(self, source, params, mark=None, *, published=None, report=None
                ) -> Iterator[pd.DataFrame]:
        tree = source.walk()
        files, found = self.select(source.listing(self.patterns, tree), mark,
                                   published() if callable(published) else published)
        if self.companions:
            files = files.assign(**companions(files, tree, self.companions))
        if report is not None:
            report.update(found)
        if params.get("limit"):
            files = files.iloc[:int(params["limit"])]
        if report is not None:
            report["to_read"] = len(files)
        step = int(params["chunk_size"])
        files = files.assign(
            **{FILE: [str(source.root / p) for p in files["PATH"]]},
            MTIME=pd.to_datetime(files["MTIME"], unit="s").dt.round("ms"),
            VERSION=files["VERSION"].map(lambda v: ".".join(map(str, v)) or None))
        for a in range(0, len(files), step):
            yield files.iloc[a:a + step].reset_index(drop=True)

    def expand(self, records: pd.DataFrame) -> pd.DataFrame:
        """The records with their reader's fields (run where the chunk is mapped: in
        the worker processes, so files are read in parallel)."""
        if FILE not in records or not len(records):
            return records
        read = self._read()
        extra = pd.DataFrame.from_records([_read_one(read, Path(p)) for p in records[FILE]],
                                          index=records.index)
        extra = extra.drop(columns=[c for c in extra.columns if c in records.columns])
        return pd.concat([records.drop(columns=[FILE]), extra], axis=1)


def _read_one(read: Reader, path: Path) -> dict:
    """The reader's fields of one file, or ``{READ_ERROR: reason}``."""
    try:
        out = dict(read(path))
    except Exception as exc:  # noqa: BLE001 — any reader failure refuses that file only
        return {READ_ERROR: f"{type(exc).__name__}: {exc}"}
    return {str(k).upper(): v for k, v in out.items()}
