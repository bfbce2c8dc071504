"""The curator's diff against the real DaCHS of the test session: publish hfc1ar from its
sample, change the source (a renamed region, an exposure time, a new region, a chain
code that now breaks a rule) and a curator's rejection, export again, and ask what the
publish would change; then publish and ask again. A service that does not answer gives
a clear error and no diff. Also: DaCHS publishes the RD's time coverage."""
from __future__ import annotations

import http.server
import json
import sqlite3
import subprocess
import threading

import pandas as pd
import pytest

from conftest import free_port, remove_area
from vespa_curation import decisions as D, export, harvest
from vespa_curation.config import load_config
from vespa_curation.diff import DiffError, diff
from vespa_curation.hfc import sample as hfc_sample
from vespa_curation.qa import report

pytestmark = [pytest.mark.dachs, pytest.mark.slow]


def _publish(dachs, fresh=False):
    if fresh:   # the DaCHS database outlives test sessions
        dachs.run("drop", "hfc1ar/q", check=False)
    dachs.run("imp", "hfc1ar/q")
    dachs.expire("hfc1ar/q")


def _change_source(db) -> dict:
    """Edit the HFC sample: returns what each change should do to the served rows."""
    con = sqlite3.connect(db)
    ar = pd.read_sql("SELECT * FROM ACTIVEREGIONS ORDER BY ID_AR", con)
    obs = pd.read_sql("SELECT * FROM OBSERVATIONS ORDER BY ID_OBSERVATIONS", con)
    renamed, broken = int(ar["ID_AR"].iloc[3]), int(ar["ID_AR"].iloc[5])
    con.execute("UPDATE ACTIVEREGIONS SET HELIO_AR_NUMBER = 99999 WHERE ID_AR = ?",
                (renamed,))
    con.execute("UPDATE ACTIVEREGIONS SET CC = 'x' || CC WHERE ID_AR = ?", (broken,))
    # an observation whose exposure time changes (its regions' time_exp_min/max)
    exp_obs = int(ar.loc[ar["ID_AR"] == renamed, "OBSERVATIONS_ID"].iloc[0])
    other = obs[obs["ID_OBSERVATIONS"] != exp_obs]
    used = set(ar["OBSERVATIONS_ID"])
    timed = int(other[other["ID_OBSERVATIONS"].isin(used)]["ID_OBSERVATIONS"].iloc[0])
    con.execute("UPDATE OBSERVATIONS SET EXP_TIME = EXP_TIME + 7 WHERE ID_OBSERVATIONS = ?",
                (timed,))
    # a new region: a copy of one with another id and FEAT_X_PIX (so another granule)
    new = ar.iloc[[0]].copy()
    new["ID_AR"] = int(ar["ID_AR"].max()) + 1
    new["FEAT_X_PIX"] = new["FEAT_X_PIX"] + 3
    cols = ", ".join(new.columns)
    con.execute(f"INSERT INTO ACTIVEREGIONS ({cols}) VALUES "
                f"({', '.join('?' * len(new.columns))})",
                [None if pd.isna(v) else (v.item() if hasattr(v, "item") else v)
                 for v in new.iloc[0]])
    con.commit()
    con.close()
    return {"renamed": renamed, "broken": broken,
            "timed": [int(i) for i in ar.loc[ar["OBSERVATIONS_ID"] == timed, "ID_AR"]]}


@pytest.fixture(scope="module")
def published(dachs, tmp_path_factory):
    """hfc1ar exported from its sample and published on the session's DaCHS."""
    base = tmp_path_factory.mktemp("diff")
    remove_area(dachs.inputs, "hfc1ar")     # another module may have exported hfc1ar
    db = hfc_sample.build(base / "samples")["hfc"]
    cfg = load_config("hfc1ar", overrides={
        "source": f"sqlite:///{db}", "dachs_inputs": str(dachs.inputs),
        "outputs": str(base / "runs"), "server_url": dachs.url, "workers": 1,
        "decisions": str(base / "decisions.csv")})
    r1 = cfg.run_dir("20260101T000000Z")
    harvest.run(cfg, r1)
    export.run(cfg, r1)
    _publish(dachs, fresh=True)
    return {"cfg": cfg, "db": db, "base": base, "r1": r1}


def test_a_fresh_publish_shows_no_difference(published, tmp_path, capsys):
    from vespa_curation.cli import OK, main
    cfg = published["cfg"]
    assert main(["diff", "hfc1ar", "-p", f"dachs_inputs={cfg['dachs_inputs']}",
                 "-p", f"server_url={cfg['server_url']}", "--json",
                 str(tmp_path / "d.json"), "--csv", str(tmp_path / "d.csv")]) == OK
    out = capsys.readouterr().out
    assert "new 0, changed 0, unchanged" in out and "retracted 0, missing 0" in out
    assert json.loads((tmp_path / "d.json").read_text())["counts"]["changed"] == 0
    assert (tmp_path / "d.csv").read_text() == "granule_uid,status,columns\n"
    d = diff(published["cfg"])
    c = d.counts
    assert c["served"] == c["area"] == c["unchanged"] > 50
    assert c["new"] == c["changed"] == c["retracted"] == c["missing"] == 0
    assert d.queries <= 4          # capabilities aside: columns, one page, the empty page
    # pages of 7 rows (keyset pagination) and hashing every row say the same
    d2 = diff(published["cfg"], page=7, content=True)
    assert d2.counts == c and d2.queries > c["served"] // 7


def test_diff_after_the_source_changed_then_after_the_publish(published, dachs, tmp_path):
    cfg, base = published["cfg"], published["base"]
    what = _change_source(published["db"])
    rows1 = pd.read_parquet(published["r1"] / "rows.parquet")
    rejected = str(rows1["granule_uid"].iloc[10])
    D.append_decision(cfg["decisions"], rejected, "reject", "tester", "test retraction")
    full = cfg.replace(full=True)
    r2 = cfg.run_dir("20260102T000000Z")
    harvest.run(full, r2)

    # the QA report of the run, before its export: the pending rows against the live
    rep = report.build_report(full.replace(live_diff=True, qa_gallery=0), r2)
    live = rep["live"]
    assert live["counts"]["new"] == 1 and live["counts"]["changed"] >= 2
    html = (r2 / "report.html").read_text(encoding="utf-8")
    assert "What publishing would change in the live service" in html

    export.run(full, r2)
    d = diff(cfg)
    c = d.counts
    uid_of = dict(zip(rows1["qa_source_id"].astype(str), rows1["granule_uid"]))
    renamed = uid_of[str(what["renamed"])]
    # the regions of the observation whose exposure changed, but the one rejected and
    # the one now refused (both keep their served row until the publish decides)
    timed = {uid_of[str(i)] for i in what["timed"]} - {rejected, uid_of[str(what["broken"])]}
    assert c["new"] == 1 and c["retracted"] == 1 and c["missing"] == 0
    assert set(d.uids["changed"]) == {renamed} | timed and renamed not in timed
    assert d.changed[renamed] == ["feature_name"]
    assert d.changed_columns == {"feature_name": 1, "time_exp_max": len(timed),
                                 "time_exp_min": len(timed)}
    assert list(d.uids["retracted"]) == [rejected]
    # the region whose chain code broke is still served, and so is the rejected one
    # until the publish: the run's rules say why
    per = d.rules["served but quarantined by the run, by rule"]
    assert per == {"chaincode.bad_digit": 1, "curator.reject": 1}
    assert d.rules["quarantined in the run"]["chaincode.bad_digit"] >= 1
    csv = pd.read_csv(d.write_csv(tmp_path / "diff.csv"))
    assert set(csv["status"]) == {"new", "changed", "retracted"}
    assert csv.loc[csv["granule_uid"] == renamed, "columns"].item() == "feature_name"
    assert diff(cfg, content=True).counts == c

    _publish(dachs)
    after = diff(cfg).counts
    assert after["new"] == after["changed"] == after["retracted"] == after["missing"] == 0
    assert after["served"] == after["unchanged"] == c["area"]


def test_served_granules_the_area_does_not_hold_are_missing(published, tmp_path):
    from conftest import write_area
    cfg = published["cfg"]
    rows = pd.read_parquet(published["r1"] / "rows.parquet")
    other = cfg.replace(dachs_inputs=str(tmp_path / "other"))
    write_area(cfg.definition, rows.iloc[:20], dachs_inputs=tmp_path / "other",
               run_id="part")
    c = diff(other).counts
    held = c["unchanged"] + c["changed"]          # of the 20, those served
    assert held >= 19 and c["new"] + held == 20 == c["area"]
    assert c["missing"] == c["served"] - held > 50


def test_a_service_that_does_not_answer_gives_no_diff(published, capsys):
    cfg = published["cfg"]
    closed = f"http://127.0.0.1:{free_port()}/tap"
    with pytest.raises(DiffError, match=r"does not answer .*no diff was made"):
        diff(cfg, url=closed)
    from vespa_curation.cli import NO_DIFF, main
    assert main(["diff", "hfc1ar", "-p", f"dachs_inputs={cfg['dachs_inputs']}",
                 "--tap-url", closed]) == NO_DIFF
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not answer" in err[0] and "no diff" in err[0]

    class Broken(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_error(503, "down for maintenance")
        do_POST = do_GET

        def log_message(self, *a):
            pass
    srv = http.server.HTTPServer(("127.0.0.1", 0), Broken)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        with pytest.raises(DiffError, match="503"):
            diff(cfg, url=f"http://127.0.0.1:{srv.server_port}/tap")
    finally:
        srv.shutdown()
        srv.server_close()


def test_dachs_publishes_the_rds_time_coverage(published, dachs):
    code = ("from gavo import api\n"
            "rd = api.getRD('hfc1ar/q')\n"
            "print([m.getContent() for m in rd.iterMeta('coverage.temporal')])")
    import shutil
    # DaCHS's own interpreter (the shebang of the dachs script), not the test's
    python = open(shutil.which("dachs"), encoding="utf-8").readline()[2:].strip()
    p = subprocess.run([python, "-c", code], env=dachs.env, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    man = published["cfg"].area.manifest()
    got = eval(p.stdout.strip().splitlines()[-1])  # a printed list of str
    assert len(got) == len(man["coverage"]["rd_temporal"]) > 0
    a, b = map(float, got[0].split())
    assert abs(a - man["coverage"]["rd_temporal"][0][0]) < 1e-4
