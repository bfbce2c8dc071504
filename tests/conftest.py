"""Shared fixtures.

- ``hfc1ar_rows``: a frame of real-looking hfc1ar epn_core rows (hand-computed polygons,
  two across Carrington 0/360), used until the pipeline's own export is wired in.
- ``dachs``: ONE DaCHS setup for the whole test session — the Debian-installed DaCHS and
  its PostgreSQL database, with ``GAVOSETTINGS`` pointing the inputs folder at a temp
  folder and ``dachs serve debug`` on a free loopback port. Tests using it are marked
  ``dachs``; they skip when DaCHS is absent, except under ``CI=true`` where they fail.
- ``pg``: a throw-away PostgreSQL database (for the ODBC test), same skip/fail rule.

Importable without DaCHS or PostgreSQL so unit tests run anywhere.
"""
from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

try:   # tests never download IERS tables
    from astropy.utils import iers
    iers.conf.auto_download = False
except Exception:  # pragma: no cover
    pass


def need(condition: bool, reason: str) -> None:
    """Skip when ``condition`` is false — but fail under CI, where everything must run."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the CI installs it, so this is an error)")
    pytest.skip(reason)


# ---------------------------------------------------------------------------------------
# real-looking hfc1ar rows
# ---------------------------------------------------------------------------------------

#: (Carrington lon, lat) centres and half-sizes (deg) of the fixture regions; the
#: first two straddle 0/360.
_CENTRES = [(359.0, -12.0, 4.0, 3.0), (1.5, 14.0, 3.0, 2.5), (45.0, 20.0, 5.0, 3.0),
            (120.0, -8.0, 3.5, 2.0), (200.0, 10.0, 6.0, 4.0), (250.5, -22.0, 2.0, 2.0),
            (300.0, 5.0, 4.0, 3.0), (330.0, -15.0, 3.0, 3.0), (75.0, 30.0, 2.5, 1.5),
            (160.0, -30.0, 5.0, 2.0)]


def region_polygon(lon: float, lat: float, hw: float, hh: float, n: int = 12):
    """Counter-clockwise vertices (lon in 0–360, lat) of an elliptic region."""
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    lons = (lon + hw * np.cos(a)) % 360.0
    lats = lat + hh * np.sin(a)
    return np.round(lons, 4), np.round(lats, 4)


def stcs(lons, lats) -> str:
    return "Polygon UNKNOWNFrame " + " ".join(f"{x:.4f} {y:.4f}" for x, y in zip(lons, lats))


def make_hfc1ar_rows(n_images: int = 4) -> pd.DataFrame:
    """epn_core rows as the hfc1ar export writes them: ``len(_CENTRES)`` regions on each
    of ``n_images`` MDI magnetograms 96 min apart from 2005-04-02T01:35:03."""
    t0 = pd.Timestamp("2005-04-02T01:35:03.426")
    recs = []
    for k in range(n_images):
        t = t0 + pd.Timedelta(minutes=96 * k)
        jd = t.to_julian_date()
        for i, (lon, lat, hw, hh) in enumerate(_CENTRES):
            lon = (lon + 13.2 / 1440 * 96 * k * -1) % 360.0  # regions rotate west
            lons, lats = region_polygon(lon, lat, hw, hh)
            west = (lon - hw) % 360.0
            east = (lon + hw) % 360.0
            x, y = 100 + 80 * i, 500 + 3 * i
            recs.append({
                "granule_uid": f"ar_{t:%Y%m%d_%H%M%S}_{x}_{y}",
                "granule_gid": "hfc_ar_smart",
                "obs_id": f"smdi_fd_{t:%Y%m%d_%H%M}",
                "dataproduct_type": "ci",
                "measurement_type": None,
                "processing_level": 5,
                "target_name": "Sun",
                "target_class": "star",
                "time_min": jd, "time_max": jd,
                "time_exp_min": 30.0, "time_exp_max": 30.0,
                "spectral_range_min": 4.4e14, "spectral_range_max": 4.4e14,
                "c1min": round(west, 4), "c1max": round(east, 4),
                "c2min": round(lat - hh, 4), "c2max": round(lat + hh, 4),
                "s_region": stcs(lons, lats),
                "c1_resol_min": 0.117, "c1_resol_max": 0.117,
                "c2_resol_min": 0.117, "c2_resol_max": 0.117,
                "spatial_frame_type": "body",
                "instrument_host_name": "SoHO", "instrument_name": "MDI",
                "service_title": "hfc1ar",
                "creation_date": pd.Timestamp("2026-01-01T00:00:00"),
                "modification_date": pd.Timestamp("2026-01-01T00:00:00"),
                "release_date": pd.Timestamp("2026-01-01T00:00:00"),
                "target_region": "solar-active-regions",
                "feature_name": None if i % 3 else f"HFC AR {10740 + i}",
                "time_scale": "UTC",
                "messenger": "Optical",
                "qa_geom_flag": "ok",
            })
    return pd.DataFrame(recs)


@pytest.fixture
def hfc1ar_rows() -> pd.DataFrame:
    return make_hfc1ar_rows()


@pytest.fixture
def hfc1ar_service():
    from vespa_curation.services import get_service
    return get_service("hfc1ar")


# ---------------------------------------------------------------------------------------
# DaCHS session
# ---------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Dachs:
    """One DaCHS setup: its inputs folder, environment, server URL."""

    inputs: Path
    env: dict
    url: str
    log: Path
    proc: subprocess.Popen | None = None
    timings: dict = field(default_factory=dict)

    def run(self, *args, check=True, timeout=900) -> subprocess.CompletedProcess:
        """Run ``dachs ARGS`` with this setup's settings."""
        p = subprocess.run(["dachs", *args], env=self.env, capture_output=True,
                           text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and p.returncode:
            raise AssertionError(f"dachs {' '.join(args)} failed ({p.returncode}):\n"
                                 f"{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
        return p

    def expire(self, rd_id: str) -> None:
        """Make the running server forget a cached RD (after a re-import)."""
        self.run("serve", "expireRDs", rd_id)

    def tap(self):
        import pyvo
        return pyvo.dal.TAPService(self.url + "/tap")


def _dachs_version() -> tuple[int, ...] | None:
    if shutil.which("dachs") is None:
        return None
    out = subprocess.run(["dachs", "--version"], capture_output=True, text=True,
                         stdin=subprocess.DEVNULL).stdout
    import re
    m = re.search(r"Software \((\d+)\.(\d+)", out)
    return tuple(int(x) for x in m.groups()) if m else None


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"dachs serve exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status < 500:
                    return
        except Exception:
            time.sleep(0.5)
    raise RuntimeError(f"dachs serve did not answer on {url} within {timeout} s")


def _session_lock(path: Path, timeout: float = 3600):
    """An exclusive lock held until the returned file is closed (waits for others)."""
    import fcntl
    fh = open(path, "a+")
    end = time.time() + timeout
    while True:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fh
        except OSError:
            if time.time() > end:
                fh.close()
                raise RuntimeError(f"another test session holds {path} for too long")
            time.sleep(1)


@pytest.fixture(scope="session")
def dachs(tmp_path_factory):
    """The session's DaCHS: settings in a temp folder, server on a free loopback port."""
    version = _dachs_version()
    need(version is not None, "DaCHS (gavodachs2-server) is not installed")
    assert version >= (2, 7), f"DaCHS {version} is older than 2.7"
    # DaCHS's database is shared by every test session on this machine (schema names are
    # the service names): one session at a time uses it.
    lock = _session_lock(Path(tempfile.gettempdir()) / "vespa-curation-dachs.lock")
    base = tmp_path_factory.mktemp("dachs")
    inputs = base / "inputs"
    inputs.mkdir()
    (inputs / "__system").mkdir()   # DaCHS warns when the system resdir is missing
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = base / "gavo.rc"
    settings.write_text(
        "[general]\n"
        f"inputsDir: {inputs}\n"
        "[web]\n"
        f"serverPort: {port}\n"
        "bindAddress: 127.0.0.1\n"
        f"serverURL: {url}\n"
        f"adminpasswd: {secrets.token_hex(12)}\n"
        "sitename: vespa-curation tests\n", encoding="utf-8")
    env = dict(os.environ, GAVOSETTINGS=str(settings))
    env.pop("GAVO_INPUTSDIR", None)
    log = base / "serve.log"
    d = Dachs(inputs=inputs, env=env, url=url, log=log)
    # the database must answer (the CI starts the cluster)
    p = d.run("adql", "SELECT TOP 1 table_name FROM tap_schema.tables", check=False,
              timeout=120)
    need(p.returncode == 0, "DaCHS's database does not answer: "
         + (p.stderr or p.stdout)[-500:])
    fh = open(log, "wb")
    d.proc = subprocess.Popen(["dachs", "serve", "debug"], env=env, stdout=fh,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        _wait_http(url + "/", d.proc)
    except Exception:
        d.proc.kill()
        fh.close()
        raise AssertionError("dachs serve debug did not start:\n"
                             + log.read_text(errors="replace")[-3000:])
    try:
        yield d
    finally:
        d.proc.terminate()
        try:
            d.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            d.proc.kill()
            d.proc.wait()
        fh.close()
        lock.close()


# ---------------------------------------------------------------------------------------
# a throw-away PostgreSQL database (ODBC test)
# ---------------------------------------------------------------------------------------

@dataclass
class PgDatabase:
    dbname: str
    user: str
    password: str
    host: str = "127.0.0.1"
    port: int = 5432

    def psycopg2(self):
        import psycopg2
        return psycopg2.connect(dbname=self.dbname, user=self.user, password=self.password,
                                host=self.host, port=self.port)


def _as_postgres(sql: str) -> subprocess.CompletedProcess:
    cmd = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-c", sql]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    return subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=120)


@pytest.fixture(scope="session")
def pg():
    """A fresh PostgreSQL database and login role (dropped at the end)."""
    need(shutil.which("psql") is not None, "PostgreSQL client (psql) is not installed")
    probe = _as_postgres("SELECT 1")
    need(probe.returncode == 0, "cannot reach PostgreSQL as its superuser: "
         + probe.stderr[-300:])
    tag = secrets.token_hex(4)
    db = PgDatabase(dbname=f"vc_test_{tag}", user=f"vc_test_{tag}",
                    password=secrets.token_hex(16))
    for sql in (f"CREATE ROLE {db.user} LOGIN PASSWORD '{db.password}'",
                f"CREATE DATABASE {db.dbname} OWNER {db.user}"):
        r = _as_postgres(sql)
        assert r.returncode == 0, r.stderr
    yield db
    _as_postgres(f"DROP DATABASE IF EXISTS {db.dbname} WITH (FORCE)")
    _as_postgres(f"DROP ROLE IF EXISTS {db.user}")


def remove_area(dachs_inputs: Path, schema: str) -> None:
    """Remove ``schema``'s import area (its symlink and its versions) from the session's
    shared DaCHS inputs, so that a module starts from nothing whatever ran before it."""
    for area in (Path(dachs_inputs) / schema, Path(dachs_inputs) / f".{schema}.versions"):
        if area.is_symlink() or area.is_file():
            area.unlink()
        elif area.exists():
            shutil.rmtree(area)


def fresh_schema(dachs, schema: str) -> None:
    """No import area and no tables of ``schema`` in the session's DaCHS (shared by
    several modules, and its database outlives test sessions)."""
    dachs.run("drop", f"{schema}/q", check=False)
    cmd = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "gavo", "-c",
           f"DROP SCHEMA IF EXISTS {schema} CASCADE"]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    r = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    remove_area(dachs.inputs, schema)


def write_area(service, rows, *, dachs_inputs, run_id, server_url="http://localhost:8080",
               fmt="tabledata", region="stcs", **run):
    """Add ``rows`` to ``service``'s import area under ``dachs_inputs`` as run ``run_id``
    (``run``: the other fields of :class:`vespa_curation.export.RunExport`, and
    ``coverage``, a CoverageSpec or None); the area's path."""
    from vespa_curation.area import ImportArea
    from vespa_curation.export import RunExport, write_run
    from vespa_curation.export.coverage import CoverageSpec
    coverage = run.pop("coverage", CoverageSpec())
    return write_run(ImportArea(dachs_inputs, service.name), service,
                     RunExport(run_id=run_id, rows=rows, **run), server_url=server_url,
                     fmt=fmt, region=region, coverage=coverage)


def manifest(area) -> dict | None:
    """The manifest of the import area at ``area`` (a path)."""
    from vespa_curation.area import ImportArea
    return ImportArea.at(area).manifest()


def verify(area) -> list[str]:
    """What disagrees with the manifest in the import area at ``area``."""
    from vespa_curation.area import ImportArea
    return ImportArea.at(area).verify()
