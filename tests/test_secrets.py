"""Credentials never leak (issue 6): planted secrets are searched in every output.

Two real routes carry a secret:

- ODBC: the embedded HFC sample loaded into a fresh PostgreSQL database whose login role
  has a password; the connection string (``PWD=<password>``) lives in a file, and so
  does the ``dachs_db`` DSN. A second run reads a wrong password from an environment
  variable and fails — its error must not show it either.
- Elasticsearch: the nrh sample served by a local server speaking the Elasticsearch 8
  wire format (tests/test_elastic.py), the query parameters file holding a user and
  password in ``query_url``; the server checks the client really sent them.

Each run goes through ``vespa-curate run`` (papermill executes the stage notebooks);
then every file of the run folders and of the import area, and the command's own
output, is searched for the secrets (plain, URL-quoted and base64 forms).
"""
from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import threading
import urllib.parse
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import ROOT, _as_postgres, need

pytestmark = [pytest.mark.dachs, pytest.mark.slow]   # PostgreSQL of .ci/run; papermill


def forms(secret: str) -> list[bytes]:
    """The ways a secret may show up in a file."""
    out = {secret, urllib.parse.quote(secret, safe=""), secret.upper(), secret.lower()}
    return [f.encode() for f in out]


def leaks(secret_forms: list[bytes], folders: list[Path], extra: dict[str, str]
          ) -> list[str]:
    """Every file (any type) or text in ``extra`` holding one of ``secret_forms``."""
    found = []
    n_files = 0
    for folder in folders:
        for p in Path(folder).rglob("*"):
            if p.is_file() and not p.is_symlink():
                n_files += 1
                data = p.read_bytes()
                found += [f"{p}: {f!r}" for f in secret_forms if f in data]
    for name, text in extra.items():
        found += [f"{name}: {f!r}" for f in secret_forms if f in text.encode()]
    assert n_files > 5, f"nothing to search in {folders}"
    return found


def cli(*args, env=None, timeout=900) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "vespa-curate"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, cwd=ROOT,
                          env=env or os.environ.copy(), timeout=timeout,
                          stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    from vespa_curation.samples import build_samples
    return build_samples(tmp_path_factory.mktemp("samples"))


@pytest.fixture(scope="module")
def hfc_pg(pg, samples):
    """A database of its own (owned by the test role, whose password is the secret)
    holding the HFC sample tables."""
    import re
    import sqlite3

    import psycopg2
    import psycopg2.extras

    from test_odbc import _PG_TYPES, TABLES, odbc_driver
    driver = odbc_driver()
    need(driver is not None, "the PostgreSQL Unicode ODBC driver is not registered")
    dbname = f"{pg.dbname}_sec"
    r = _as_postgres(f"CREATE DATABASE {dbname} OWNER {pg.user}")
    assert r.returncode == 0, r.stderr
    lite = sqlite3.connect(samples["hfc"])
    con = psycopg2.connect(dbname=dbname, user=pg.user, password=pg.password,
                           host=pg.host, port=pg.port)
    with con, con.cursor() as cur:
        for (ddl,) in lite.execute("SELECT sql FROM sqlite_master WHERE type='table'"):
            for pat, rep in _PG_TYPES:
                ddl = re.sub(pat, rep, ddl, flags=re.I)
            cur.execute(ddl)
        for t in TABLES:
            c = lite.execute(f"SELECT * FROM {t}")
            cols = [d[0] for d in c.description]
            psycopg2.extras.execute_values(
                cur, f"INSERT INTO {t} ({', '.join(cols)}) VALUES %s", c.fetchall())
    con.close()
    lite.close()
    yield driver, dbname
    _as_postgres(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")


def test_odbc_and_dachs_db_passwords_never_leak(hfc_pg, pg, tmp_path):
    driver, dbname = hfc_pg
    secret = pg.password
    assert len(secret) >= 16
    cred = tmp_path / "cred"
    cred.mkdir(mode=0o700)
    conn_file = cred / "hfc1.odbc"
    conn_file.write_text(f"DRIVER={{{driver}}};SERVER={pg.host};PORT={pg.port};"
                         f"DATABASE={dbname};UID={pg.user};PWD={secret};\n")
    dsn_file = cred / "dachs_db.dsn"
    dsn_file.write_text(f"host={pg.host} port={pg.port} dbname={dbname} "
                        f"user={pg.user} password={secret}\n")
    out = tmp_path / "out"
    common = ["-p", f"dachs_inputs={out / 'dachs'}", "-p", f"outputs={out / 'runs'}",
              "-p", "workers=1", "-p", f"decisions={tmp_path / 'decisions.csv'}"]
    ok = cli("run", "hfc1ar", "-p", f"source=odbc:{conn_file}",
             "-p", f"dachs_db=file:{dsn_file}", *common)
    assert ok.returncode == 0, ok.stdout[-2000:] + ok.stderr[-3000:]
    man = json.loads((out / "dachs/hfc1ar/manifest.json").read_text())
    assert man["total_rows"] > 0                      # the secret did its job
    # a wrong password from the environment: the run fails, and says why without it
    wrong = "Wr0ng-" + secrets.token_hex(12)
    env = dict(os.environ, VESPA_TEST_ODBC=(
        f"DRIVER={{{driver}}};SERVER={pg.host};PORT={pg.port};DATABASE={dbname};"
        f"UID={pg.user};PWD={wrong};"))
    bad = cli("run", "hfc1ar", "-p", "source=odbc:env:VESPA_TEST_ODBC", *common, env=env)
    assert bad.returncode == 1
    assert "VESPA_TEST_ODBC" in bad.stdout + bad.stderr or \
        any("VESPA_TEST_ODBC" in p.read_text(errors="replace")
            for p in (out / "runs").rglob("01_harvest.ipynb"))
    found = leaks(forms(secret) + forms(wrong), [out, ROOT / "outputs" / "logs"]
                  if (ROOT / "outputs" / "logs").is_dir() else [out],
                  {"stdout ok": ok.stdout, "stderr ok": ok.stderr,
                   "stdout bad": bad.stdout, "stderr bad": bad.stderr})
    assert not found, "credentials leaked:\n" + "\n".join(found[:20])
    # the executed notebooks are there and were searched
    assert len(list(out.rglob("*.ipynb"))) >= 4


def test_elasticsearch_credentials_never_leak(samples, tmp_path):
    from test_elastic import FakeES, _handler
    need("nrh" in samples, "the nrh sample is not built by this installation")
    docs = [json.loads(line) for line in
            Path(samples["nrh"]).read_text(encoding="utf-8").splitlines() if line.strip()]
    user, secret = "vespa", "Es-" + secrets.token_hex(12)
    auth_seen: list[str | None] = []
    state = FakeES(docs)
    base = _handler(state)

    class Checked(base):
        def parse_request(self):
            okay = super().parse_request()
            auth_seen.append(self.headers.get("Authorization"))
            return okay

    server = ThreadingHTTPServer(("127.0.0.1", 0), Checked)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        cred = tmp_path / "cred"
        cred.mkdir(mode=0o700)
        spec = cred / "nrh-es.json"
        spec.write_text(json.dumps({
            "query_url": f"http://{user}:{secret}@127.0.0.1:{server.server_address[1]}",
            "index": "nrh", "query_data": {"query": {"match_all": {}}}}))
        out = tmp_path / "out"
        r = cli("run", "nrh", "-p", f"source=es:{spec}",
                "-p", f"dachs_inputs={out / 'dachs'}", "-p", f"outputs={out / 'runs'}",
                "-p", "workers=1", "-p", f"decisions={tmp_path / 'decisions.csv'}")
    finally:
        server.shutdown()
        server.server_close()
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    token = base64.b64encode(f"{user}:{secret}".encode()).decode()
    assert f"Basic {token}" in auth_seen, "the client did not send the credentials"
    man = json.loads((out / "dachs/nrh/manifest.json").read_text())
    assert man["total_rows"] > 0
    found = leaks(forms(secret) + [token.encode()], [out],
                  {"stdout": r.stdout, "stderr": r.stderr})
    assert not found, "credentials leaked:\n" + "\n".join(found[:20])


#: A credential written inline in a parameter (connection strings, DSNs, URLs).
INLINE = [
    ("source", "odbc:DRIVER={{PostgreSQL Unicode}};SERVER=localhost;DATABASE=hfc;"
               "UID=reader;PWD={secret};"),
    ("source", "odbc:Driver=x;Server=db;User=reader;Password = {secret}"),
    ("source", "es:https://vespa:{secret}@es.example.org:9200"),
    ("dachs_db", "host=localhost dbname=gavo user=gavo password={secret}"),
    ("dachs_db", "postgresql://gavo:{secret}@localhost/gavo"),
    ("server_url", "https://admin:{secret}@voparis.example.org"),
]


@pytest.mark.parametrize("key, template", INLINE)
def test_inline_credentials_are_refused_before_anything_is_written(tmp_path, key,
                                                                   template):
    """``-p source=odbc:DRIVER=...;PWD=...`` (or a DSN, a URL with user:password@) is
    refused by the parameter check, naming the key and where credentials go: no run
    folder, log or notebook is written, and the command's output never quotes it."""
    secret = "Inl1ne-" + secrets.token_hex(12)
    out = tmp_path / "out"
    r = cli("run", "hfc1ar", "-p", f"{key}={template.format(secret=secret)}",
            "-p", f"dachs_inputs={out / 'dachs'}", "-p", f"outputs={out / 'runs'}",
            "-p", "workers=1", "-p", f"decisions={tmp_path / 'decisions.csv'}",
            timeout=300)
    assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-3000:]
    assert f"parameter '{key}'" in r.stderr and "environment variable" in r.stderr
    files = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
    assert files == [], f"a refused run wrote {files}"
    logs = ROOT / "outputs" / "logs"
    notebooks = [p for p in (ROOT / "outputs").rglob("*.ipynb")] \
        if (ROOT / "outputs").is_dir() else []
    found = [f"{p}" for p in notebooks + (list(logs.rglob("*")) if logs.is_dir() else [])
             if p.is_file() and any(f in p.read_bytes() for f in forms(secret))]
    found += [name for name, text in (("stdout", r.stdout), ("stderr", r.stderr))
              if any(f in text.encode() for f in forms(secret))]
    assert not found, "credentials leaked:\n" + "\n".join(found)
