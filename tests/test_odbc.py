"""The ODBC route against a real PostgreSQL loaded with the HFC tables.

The embedded HFC sample (SQLite) is copied into a fresh PostgreSQL database (lower-case
names, as a PostgreSQL port of HFC would have them), then read through the PostgreSQL
Unicode ODBC driver with ``open_source("odbc:<file>")`` — the way DaCHS's odbcGrammar
reads a connection-string file — and compared with the SQLite route.
"""
from __future__ import annotations

import re
import subprocess

import numpy as np
import pandas as pd
import pytest

from conftest import need

pytestmark = pytest.mark.dachs   # needs the PostgreSQL installed by .ci/run

TABLES = {"FRC_INFO": "ID_FRC_INFO", "OBSERVATORY": "ID_OBSERVATORY",
          "OBSERVATIONS": "ID_OBSERVATIONS", "ACTIVEREGIONS": "ID_AR"}
_PG_TYPES = [(r"\bDATETIME\b", "timestamp"), (r"\bDOUBLE\b", "double precision"),
             (r"\bFLOAT\b", "double precision"), (r"\bINT\b", "integer")]


def odbc_driver() -> str | None:
    """The PostgreSQL Unicode driver's name as odbcinst.ini spells it."""
    try:
        out = subprocess.run(["odbcinst", "-q", "-d"], capture_output=True, text=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    names = re.findall(r"\[(.+?)\]", out)
    for n in names:
        if "postgresql" in n.lower() and "unicode" in n.lower():
            return n
    return None


def datetime_columns(sqlite_path) -> set[str]:
    import sqlite3
    con = sqlite3.connect(sqlite_path)
    out = set()
    for t in TABLES:
        for _cid, name, typ, *_ in con.execute(f"PRAGMA table_info({t})"):
            if typ.upper() == "DATETIME":
                out.add(name.upper())
    con.close()
    return out


@pytest.fixture(scope="module")
def routes(pg, tmp_path_factory):
    """(sqlite source, odbc source, sqlite path, connection file)."""
    import sqlite3

    import psycopg2.extras

    from vespa_curation.samples import build_samples
    from vespa_curation.sources import open_source
    driver = odbc_driver()
    need(driver is not None, "the PostgreSQL Unicode ODBC driver (odbc-postgresql) is "
         "not registered in odbcinst.ini")
    work = tmp_path_factory.mktemp("odbc")
    sqlite_path = build_samples(work / "samples")["hfc"]
    lite = sqlite3.connect(sqlite_path)
    with pg.psycopg2() as con, con.cursor() as cur:
        for (ddl,) in lite.execute("SELECT sql FROM sqlite_master WHERE type='table'"):
            for pat, rep in _PG_TYPES:
                ddl = re.sub(pat, rep, ddl, flags=re.I)
            cur.execute(ddl)             # unquoted names: PostgreSQL keeps them lower case
        for t in TABLES:
            c = lite.execute(f"SELECT * FROM {t}")
            cols = [d[0] for d in c.description]
            psycopg2.extras.execute_values(
                cur, f"INSERT INTO {t} ({', '.join(cols)}) VALUES %s", c.fetchall())
    lite.close()
    conn_file = work / "hfc1.odbc"
    conn_file.write_text(f"DRIVER={{{driver}}};SERVER={pg.host};PORT={pg.port};"
                         f"DATABASE={pg.dbname};UID={pg.user};PWD={pg.password};\n")
    conn_file.chmod(0o600)
    a = open_source(f"sqlite:///{sqlite_path}")
    b = open_source(f"odbc:{conn_file}")
    yield a, b, sqlite_path, conn_file
    a.close()
    b.close()


def normalize(df: pd.DataFrame, dt_cols: set[str]) -> pd.DataFrame:
    out = {}
    for c in df.columns:
        s = df[c]
        if c in dt_cols:
            out[c] = pd.to_datetime(s.astype("string").str.replace("T", " "),
                                    errors="raise", format="mixed") \
                if not pd.api.types.is_datetime64_any_dtype(s) else s
            out[c] = pd.to_datetime(out[c]).astype("datetime64[ns]")
            continue
        num = pd.to_numeric(s, errors="coerce")
        if num.notna().sum() == s.notna().sum() and s.notna().any() and \
                not s.map(lambda v: isinstance(v, str)).any():
            out[c] = num.astype(float)
        else:
            out[c] = s.astype(object).where(s.notna(), None)
    return pd.DataFrame(out)


def test_tables_and_columns_agree(routes):
    a, b, *_ = routes
    assert set(TABLES) <= a.tables() and set(TABLES) <= b.tables()
    for t in TABLES:
        assert a.columns(t) == b.columns(t), t
        assert a.columns(t.lower()) == b.columns(t.lower())


def test_every_value_agrees(routes):
    a, b, sqlite_path, _ = routes
    dt = datetime_columns(sqlite_path)
    for t, key in TABLES.items():
        sql_a = f"SELECT * FROM {a.table_name(t)} ORDER BY {key}"
        sql_b = f"SELECT * FROM {b.table_name(t)} ORDER BY {key}"
        fa = pd.concat(list(a.query(sql_a, chunksize=40)), ignore_index=True)
        fb = pd.concat(list(b.query(sql_b, chunksize=40)), ignore_index=True)
        assert list(fa.columns) == list(fb.columns), t
        assert len(fa) == len(fb) > 0, t
        pd.testing.assert_frame_equal(normalize(fa, dt), normalize(fb, dt),
                                      check_dtype=False, obj=t)


def test_hfc1ar_harvest_and_rows_agree(routes):
    """The service's own harvest (joins, bound mark parameters) gives the same epn_core
    rows through both routes."""
    from vespa_curation.config import load_config
    from vespa_curation.services import get_service, map_chunk
    a, b, sqlite_path, _ = routes
    service = get_service("hfc1ar")
    params = load_config("hfc1ar", overrides={"source": f"sqlite:///{sqlite_path}"})
    now = pd.Timestamp("2026-01-01T00:00:00")
    rows = {}
    for name, src in (("sqlite", a), ("odbc", b)):
        recs = pd.concat(list(service.source.records(src, params, None)), ignore_index=True)
        r, q = map_chunk(service, recs, params, now=now)
        rows[name] = r.sort_values("granule_uid").reset_index(drop=True)
    ra, rb = rows["sqlite"], rows["odbc"]
    assert len(ra) == len(rb) > 50
    assert list(ra["granule_uid"]) == list(rb["granule_uid"])
    assert list(ra["s_region"]) == list(rb["s_region"])
    np.testing.assert_allclose(ra["time_min"].astype(float), rb["time_min"].astype(float),
                               rtol=0, atol=1e-9)
    for c in ("obs_id", "instrument_name", "granule_gid", "feature_name"):
        assert list(ra[c]) == list(rb[c]), c
    # incremental: a time mark bound as a parameter selects the same records
    t = sorted(ra["time_min"])[len(ra) // 2]
    mark = {"time": pd.Timestamp(t - 2440587.5, unit="D")}
    got = {}
    for name, src in (("sqlite", a), ("odbc", b)):
        recs = pd.concat(list(service.source.records(src, params, mark)), ignore_index=True)
        got[name] = sorted(recs["ID_AR"].astype(int))
    assert got["sqlite"] == got["odbc"]
    assert 0 < len(got["odbc"]) < len(ra)
    # rows at the boundary (the mark is an exported time_min) are read again
    boundary = set(ra.loc[ra["time_min"] == t, "qa_source_id"].astype(int))
    assert boundary and boundary <= set(got["odbc"])


def test_bad_credentials_name_the_source_not_the_secret(routes, tmp_path, pg):
    from vespa_curation.sources import SourceError, open_source
    *_, conn_file = routes
    bad = tmp_path / "bad.odbc"
    secret = "Sup3rSecretPw_" + pg.password[:6]
    bad.write_text(re.sub(r"PWD=[^;]*", f"PWD={secret}", conn_file.read_text()))
    with pytest.raises(SourceError) as err:
        open_source(f"odbc:{bad}").tables()
    assert str(bad) in str(err.value)
    assert secret not in str(err.value) and pg.password not in str(err.value)
