"""The coverage of an import area, kept by every export: where and when its granules lie.

Files (``coverage/``, written only by the export writer, checksummed in the manifest)::

    coverage/smoc.fits          MOC of the union of the granules' s_region (services
                                that publish s_region); for a body frame the sphere of
                                the body's longitude/latitude (hfc1ar: Carrington), with
                                BODY/BODYFRAM keywords — see vespa_curation.geometry.moc
    coverage/tmoc.fits          T-MOC of the granules' [time_min, time_max]
    coverage/granules.parquet   per granule: time_min, time_max and a hash of its
                                s_region (the bookkeeping that keeps both exact)

Exact at every version, in bounded work: the T-MOC is rebuilt from
``granules.parquet`` (a million intervals in a fraction of a second); the spatial MOC
of the previous version is extended with the new polygons (:class:`PolygonUnion`:
polygons already inside it cost a look-up of their bounding cap), and rebuilt from the
data files only when a polygon leaves the area — a granule retracted, or exported again with another
s_region — since a union cannot be shrunk. An area exported before coverage existed
gets its coverage from its data files at its next export.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import area as A
from ..geometry import moc as M
from ..incremental import REGION_HASH

log = logging.getLogger("vespa_curation.export")

COLUMNS = ["granule_uid", "time_min", "time_max", "s_region_hash"]


@dataclass(frozen=True)
class CoverageSpec:
    """What the export computes: the MOC orders and how many intervals the RD gets."""

    order: int = M.ORDER
    time_order: int = M.TIME_ORDER
    rd_intervals: int = 50
    #: The MOC (at ``order``) of every polygon this export writes, when computed before
    #: (the harvest's ``smoc.fits``): the union is then extended with it instead of
    #: computing each polygon's MOC again.
    polygons: Any = field(default=None, compare=False)


def _region_hash(values) -> np.ndarray:
    """A 64-bit hash of each s_region text (0 for none)."""
    s = pd.Series(values, dtype=object)
    h = pd.util.hash_pandas_object(s.fillna("\x00").astype(str), index=False).to_numpy()
    return np.where(s.notna().to_numpy(), h, np.uint64(0)).astype(np.uint64)


def part_times(rows: pd.DataFrame) -> pd.DataFrame:
    """What the coverage keeps of a part's rows: ``granule_uid``, times, the hash of
    its s_region (:data:`~vespa_curation.incremental.REGION_HASH` when the rows
    carry it: the export's decisions hashed every s_region already)."""
    n = len(rows)
    col = lambda c: pd.to_numeric(rows[c], errors="coerce").to_numpy(float) \
        if c in rows else np.full(n, np.nan)  # noqa: E731
    if "s_region" not in rows:
        region = np.zeros(n, np.uint64)
    elif REGION_HASH in rows:
        region = rows[REGION_HASH].to_numpy(dtype=np.uint64)
    else:
        region = _region_hash(rows["s_region"])
    return pd.DataFrame({"granule_uid": rows["granule_uid"].astype(str).to_numpy(object),
                         "time_min": col("time_min"), "time_max": col("time_max"),
                         "s_region_hash": region})


class CoverageBuilder:
    """Coverage of the version being built: fed each data part as it is written
    (:meth:`add`), then :meth:`finish` once the granule state is known.

    Parameters
    ----------
    spec : CoverageSpec
    service : Service
        Gives the frame written into the spatial MOC's keywords.
    previous : path, optional
        The previous version folder; ``manifest`` its manifest.
    """

    def __init__(self, spec: CoverageSpec, service, previous: Path | None, manifest):
        self.spec, self.service = spec, service
        self.previous, self.manifest = previous, manifest or {}
        prev_cov = self.manifest.get("coverage") or {}
        self.prev_times = self._read_prev(A.COVERAGE_GRANULES)
        start = None
        smoc = previous / A.SMOC if previous is not None else None
        if smoc is not None and smoc.is_file() and \
                (prev_cov.get("spatial") or {}).get("order") == spec.order:
            start = M.read_moc(smoc)
        # a first export starts from nothing; a later one from the previous coverage,
        # unless that is missing (an area exported before coverage existed) or made at
        # another order: then it is read again from the data files (finish)
        self.reusable = previous is None or not self.manifest.get("total_rows") or (
            self.prev_times is not None and (start is not None
                                             or not self._prev_had_regions()))
        self.union = M.PolygonUnion(spec.order, start=start if self.reusable else None)
        self.parts: list[pd.DataFrame] = []

    def _read_prev(self, rel: str) -> pd.DataFrame | None:
        p = self.previous / rel if self.previous is not None else None
        return pd.read_parquet(p) if p is not None and p.is_file() else None

    def _prev_had_regions(self) -> bool:
        return self.prev_times is not None and bool(
            (self.prev_times["s_region_hash"] != 0).any())

    def add(self, rows: pd.DataFrame) -> None:
        """A part of this run's rows (as written to a data file)."""
        self.add_times(part_times(rows))
        if "s_region" in rows and self.needs_polygons:
            self.union.add(rows["s_region"])

    @property
    def needs_polygons(self) -> bool:
        """Whether :meth:`add_polygons` must see the s_region of the parts (no MOC of
        the run's polygons was computed before)."""
        return self.spec.polygons is None

    def add_times(self, times: pd.DataFrame) -> None:
        """The :func:`part_times` of a part (computed where the part was read)."""
        self.parts.append(times)

    def add_polygons(self, s_region: pd.Series) -> None:
        self.union.add(s_region)

    def finish(self, folder: Path, granules: pd.DataFrame, retract, run_id: str,
               data_runs: dict[str, str]) -> dict:
        """Write ``coverage/`` into the version ``folder``; the manifest's section.

        Parameters
        ----------
        granules : DataFrame
            The new granule state (``granule_uid``, ``run_id``).
        retract : iterable of str
            This run's retracted granule_uids.
        data_runs : dict
            Area-relative data file → the run that wrote it (every data file of the
            version).
        """
        new = pd.concat(self.parts, ignore_index=True) if self.parts else \
            pd.DataFrame({c: pd.Series([], dtype=object) for c in COLUMNS})
        rebuilt = not self.reusable
        if self.reusable:
            times, removed = self._carry(new, set(map(str, retract)))
            rebuilt = removed > 0
            if not rebuilt and self.spec.polygons is not None and len(new):
                self.union.extend(self.spec.polygons, int((new["s_region_hash"] != 0).sum()))
        if rebuilt:
            times = self._from_data(folder, granules, data_runs)
        return self._write(folder, times, rebuilt)

    def _carry(self, new: pd.DataFrame, retract: set) -> tuple[pd.DataFrame, int]:
        """Previous per-granule coverage minus what leaves plus this run's; how many
        polygons left the area (retracted, or exported again with another s_region)."""
        prev = self.prev_times
        if prev is None:
            return new, 0
        again = prev["granule_uid"].isin(new["granule_uid"]).to_numpy()
        gone = prev["granule_uid"].isin(retract).to_numpy()
        new_hash = new.drop_duplicates("granule_uid", keep="last") \
            .set_index("granule_uid")["s_region_hash"]
        changed = again & (prev["s_region_hash"].to_numpy() != new_hash.reindex(
            prev["granule_uid"]).to_numpy())
        had = prev["s_region_hash"].to_numpy() != 0
        removed = int((had & (gone | changed)).sum())
        times = pd.concat([prev[~again & ~gone], new], ignore_index=True)
        return times, removed

    def _from_data(self, folder: Path, granules: pd.DataFrame,
                   data_runs: dict[str, str]) -> pd.DataFrame:
        """Per-granule coverage and the spatial union read again from every data file
        of the version (the granules whose current row each file holds)."""
        current = granules.set_index("granule_uid")["run_id"].astype(str)
        self.union = M.PolygonUnion(self.spec.order)
        parts = []
        for rel, run in sorted(data_runs.items()):
            df = _read_data(folder / rel)
            if not len(df):
                continue
            df["granule_uid"] = df["granule_uid"].astype(str)
            df = df[current.reindex(df["granule_uid"]).to_numpy() == run]
            parts.append(part_times(df))
            if "s_region" in df:
                self.union.add(df["s_region"])
        log.info("%s: coverage read again from %d data file(s)", self.service.name,
                 len(data_runs))
        return pd.concat(parts, ignore_index=True) if parts else \
            pd.DataFrame({c: pd.Series([], dtype=object) for c in COLUMNS})

    def _write(self, folder: Path, times: pd.DataFrame, rebuilt: bool) -> dict:
        spec, svc = self.spec, self.service
        (folder / A.COVERAGE).mkdir(exist_ok=True)
        times = times.astype({"time_min": float, "time_max": float,
                              "s_region_hash": np.uint64})
        times.to_parquet(folder / A.COVERAGE_GRANULES, index=False)
        tmoc = M.time_moc(times["time_min"].to_numpy(), times["time_max"].to_numpy(),
                          order=spec.time_order)
        M.write_moc(tmoc, folder / A.TMOC, {"TIMEFROM": "EPN-TAP time_min/time_max (UTC)"})
        out = {"time": {"file": A.TMOC, **M.time_summary(tmoc)},
               "rd_temporal": [[round(a, 6), round(b, 6)] for a, b in
                               M.temporal_intervals(tmoc, spec.rd_intervals)],
               "spatial": None}
        if (times["s_region_hash"] != 0).any():
            consts = dict(getattr(svc, "constants", {}) or {})
            kw = M.body_keywords(svc.spatial_frame_type,
                                 consts.get("spatial_coordinate_description"),
                                 consts.get("spatial_origin"))
            M.write_moc(self.union.moc, folder / A.SMOC, kw)
            out["spatial"] = {"file": A.SMOC, **M.spatial_summary(self.union.moc),
                              "frame": _frame_text(svc.spatial_frame_type, kw),
                              "rebuilt": bool(rebuilt),
                              "polygons_computed": int(self.union.added),
                              "polygons_inside_already": int(self.union.skipped)}
        return out


def _read_data(path: Path) -> pd.DataFrame:
    """granule_uid, time_min, time_max and s_region of a data file (those it has)."""
    import re
    from astropy.io.votable import parse
    with open(path, "rb") as fh:
        head = fh.read(1 << 16).decode("utf-8", "replace")
    names = set(re.findall(r'<FIELD[^>]*\bname="([^"]+)"', head))
    cols = [c for c in ("granule_uid", "time_min", "time_max", "s_region") if c in names]
    tab = parse(str(path), columns=cols, verify="ignore").get_first_table().to_table()
    return tab.to_pandas() if len(tab) else pd.DataFrame(columns=cols)


def _frame_text(frame: str, keywords: dict) -> str:
    if frame == "body":
        return (f"{keywords.get('BODYFRAM', 'body-fixed longitude/latitude')} on "
                f"{keywords.get('BODY', 'the target')}, as a MOC of the sphere (not ICRS)")
    return f"spatial_frame_type {frame}"


__all__ = ["CoverageSpec", "CoverageBuilder", "COLUMNS"]
