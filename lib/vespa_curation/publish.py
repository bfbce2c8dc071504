"""Publish an exported import area on a real DaCHS and check it through TAP.

``publish(service, params)`` runs ``dachs imp <schema>/q`` on the import area the export
wrote — every data element of the RD in one database transaction (:func:`import_rd`):
a failure anywhere in the import leaves DaCHS serving what it served before —, then
``dachs limits`` and ``dachs val``, then asks the running server, with pyvo's
TAP client, for the row count (must equal the manifest's total) and one spatial query
(``1=INTERSECTS(s_region, CIRCLE(...))`` around a vertex of a served polygon must return
that granule). DaCHS settings come from the environment as DaCHS reads them
(``GAVOSETTINGS``, ``GAVO_INPUTSDIR``, ``/etc/gavo.rc``).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any, Mapping

from .config import as_config


class PublishError(RuntimeError):
    """Publishing failed; the message says which step and why."""


def _dachs(*args, timeout: float = 3600) -> subprocess.CompletedProcess:
    exe = shutil.which("dachs")
    if exe is None:
        raise PublishError("DaCHS is not installed: `apt-get install gavodachs2-server "
                           "postgresql-<major>-pgsphere` (see .ci/run), start PostgreSQL, "
                           "then publish again")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def _step(name: str, *args, timeout: float = 3600, run=None,
          after: str = "") -> tuple[str, float]:
    t0 = time.perf_counter()
    p = (run or _dachs)(*args, timeout=timeout)
    dt = time.perf_counter() - t0
    if p.returncode:
        tail = "\n".join((p.stdout + "\n" + p.stderr).strip().splitlines()[-25:])
        hint = ""
        if "could not connect" in tail.lower() or "connection refused" in tail.lower():
            hint = " (is PostgreSQL running? `pg_ctlcluster <major> main start`)"
        raise PublishError(f"`dachs {' '.join(args)}` failed with exit {p.returncode}"
                           f"{hint}{after}:\n{tail}")
    return p.stdout + p.stderr, dt


#: The script running ``dachs imp`` in one transaction (DaCHS's interpreter runs it).
ATOMIC_IMP = Path(__file__).resolve().parent / "data" / "dachs_imp_atomic.py"


def dachs_python() -> str:
    """The Python interpreter DaCHS runs with (the ``dachs`` script's ``#!`` line): the
    one that can import DaCHS's ``gavo`` package."""
    exe = shutil.which("dachs")
    if exe is None:
        _dachs()          # raises the "not installed" error
    with open(exe, "rb") as f:
        first = f.readline().decode("utf-8", "replace").strip()
    words = first[2:].split() if first.startswith("#!") else []
    if not words:
        raise PublishError(f"{exe} is not a Python script: cannot find DaCHS's Python")
    if words[0].endswith("/env") and len(words) > 1:
        found = shutil.which(words[1])
        if found is None:
            raise PublishError(f"{exe} names {words[1]!r}, which is not on the PATH")
        return found
    return words[0]


def import_rd(rd_id: str, full: bool = False, timeout: float = 36000
              ) -> tuple[str, float]:
    """``dachs imp rd_id`` with every data element in ONE database transaction (with
    ``full``, the RD's tables dropped first in that same transaction).

    ``dachs imp`` itself commits each data element of the RD on its own (DaCHS 2.7,
    ``gavo.rsc.data.makeData(runCommit=True)``): when the links or the retractions
    fail, the epn_core rows stay imported and their files are recorded as imported (a
    half-published service that the next import does not repair). The script
    ``data/dachs_imp_atomic.py``, run by DaCHS's own interpreter, makes the data
    elements without committing them; ``dachs imp`` commits once, after the last.

    Returns ``dachs``'s output and the seconds it took; :class:`PublishError` (saying
    that nothing was imported) when it fails.
    """
    python = dachs_python()
    args = ["--full", rd_id] if full else [rd_id]

    def run(*_, timeout):
        return subprocess.run([python, str(ATOMIC_IMP), *args], capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    what = "a full rebuild (drop + import)" if full else "one transaction"
    return _step("imp", "imp", rd_id, timeout=timeout, run=run,
                 after=f" ({what}: nothing of this import was kept, DaCHS serves what "
                 "it served before)")


def dachs_config(*key: str) -> str:
    """A DaCHS configuration value (``dachs config [section] item``)."""
    p = _dachs("config", *key, timeout=120)
    if p.returncode:
        raise PublishError(f"`dachs config {' '.join(key)}` failed: {p.stderr.strip()}")
    return p.stdout.strip()


def _first_vertex(s_region: str) -> tuple[float, float]:
    nums = []
    for word in str(s_region).split():
        try:
            nums.append(float(word))
        except ValueError:
            continue
    return nums[0], nums[1]


def tap_check(server_url: str, schema: str, expected_rows: int,
              timeout: float = 60) -> dict:
    """Row count and one spatial query through the server's TAP endpoint.

    Raises
    ------
    PublishError
        The server does not answer, the count differs, or the spatial query misses.
    """
    import pyvo

    url = server_url.rstrip("/")
    try:
        urllib.request.urlopen(url + "/tap/capabilities", timeout=timeout).read()
    except Exception as exc:
        raise PublishError(f"the DaCHS server at {url} does not answer ({exc}); start it "
                           "(`dachs serve start`) or set server_url") from None
    tap = pyvo.dal.TAPService(url + "/tap")
    table = f"{schema}.epn_core"
    served = int(tap.run_sync(f"SELECT COUNT(*) AS n FROM {table}").to_table()["n"][0])
    out: dict[str, Any] = {"rows_served": served, "rows_expected": int(expected_rows)}
    if served != expected_rows:
        raise PublishError(f"{table} serves {served} rows through TAP, the manifest "
                           f"expects {expected_rows}")
    one = tap.run_sync(f"SELECT TOP 1 granule_uid, s_region FROM {table} "
                       "WHERE s_region IS NOT NULL").to_table()
    if len(one):
        uid = str(one["granule_uid"][0])
        lon, lat = _first_vertex(one["s_region"][0])
        q = (f"SELECT granule_uid FROM {table} "
             f"WHERE 1=INTERSECTS(s_region, CIRCLE({lon:.6f}, {lat:.6f}, 0.01))")
        hits = {str(u) for u in tap.run_sync(q).to_table()["granule_uid"]}
        out["spatial_query"] = q
        out["spatial_hits"] = len(hits)
        if uid not in hits:
            raise PublishError(f"spatial check failed: {q} does not return {uid}, whose "
                               "polygon has a vertex there")
    return out


def publish(service_name: str, params: Mapping[str, Any]) -> dict:
    """Import the service's import area into DaCHS and verify it through TAP.

    Parameters
    ----------
    service_name : str
        The service (= DaCHS schema).
    params : RunConfig or mapping
        The service's configuration: ``dachs_inputs`` (the folder holding
        ``<schema>/q.rd``; it must be DaCHS's inputsDir), ``server_url`` (the running
        DaCHS server), ``full`` (drop and re-import everything), ``tap_check``,
        ``column_stats``.

    Returns
    -------
    dict
        ``service, rd_id, rows_expected, rows_served, spatial_query, timings`` (seconds
        per step) and ``validate`` (the ``dachs val`` output).
    """
    cfg = as_config({**params, "service": service_name})
    area = cfg.area
    man = area.manifest()
    if man is None:
        raise PublishError(f"no export of {service_name} in {area.path}: run "
                           f"`vespa-curate run {service_name}` first")
    bad = area.verify()
    if bad:
        raise PublishError(f"the import area {area.path} disagrees with its manifest: "
                           + "; ".join(bad[:5]))
    dachs_inputs = Path(dachs_config("inputsDir"))
    if os.path.realpath(dachs_inputs) != os.path.realpath(area.inputs):
        raise PublishError(
            f"DaCHS reads RDs from {dachs_inputs}, but the export is in {area.inputs}: "
            f"set dachs_inputs={dachs_inputs} (or export GAVO_INPUTSDIR={area.inputs})")
    rd_id = f"{service_name}/q"
    timings: dict[str, float] = {}
    out: dict[str, Any] = {"service": service_name, "rd_id": rd_id, "area": str(area.path)}
    # a full rebuild re-reads every file: the tables and their list of imported files
    # are dropped first (in the import's transaction); a nightly import reads only the
    # files not imported yet (the RD's ignoreSources, export.rd.IMPORTED_TABLE)
    out["full"] = bool(cfg["full"])
    _, timings["imp"] = import_rd(rd_id, full=bool(cfg["full"]))
    # `limits -t`: table statistics only (column statistics on request, column_stats)
    lim = ("limits", rd_id) if cfg["column_stats"] else ("limits", "-t", rd_id)
    _, timings["limits"] = _step("limits", *lim)
    val, timings["val"] = _step("val", "val", rd_id)
    out["validate"] = val.strip()[-2000:]
    # a running server may hold the previous RD in its cache
    p = _dachs("serve", "expireRDs", rd_id, timeout=120)
    out["expired_cache"] = p.returncode == 0
    if cfg["tap_check"]:
        t0 = time.perf_counter()
        out.update(tap_check(cfg["server_url"], service_name, int(man["total_rows"])))
        timings["tap_check"] = time.perf_counter() - t0
    else:
        out["rows_expected"] = int(man["total_rows"])
    out["timings"] = timings
    return out
