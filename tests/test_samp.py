"""SAMP hand-off from the curator notebook: a real hub (pyvo's, formerly astropy.samp)
started here on loopback, a client that receives the table as TOPCAT would, and the
one-line answer when no hub runs."""
from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
import pytest

from conftest import make_hfc1ar_rows
from vespa_curation.qa import samp as S


def _samp():
    return S._samp()      # pyvo.samp, internet use off (loopback only)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A SAMP hub on 127.0.0.1 whose lockfile only this test's clients read."""
    samp = _samp()
    lock = tmp_path / "samp.lock"
    monkeypatch.setenv("HOME", str(tmp_path))          # no ~/.samp of anybody else
    monkeypatch.setenv("SAMP_HUB", f"std-lockurl:{lock.as_uri()}")
    h = samp.SAMPHubServer(web_profile=False, lockfile=str(lock), addr="127.0.0.1")
    h.start()
    try:
        yield h
    finally:
        h.stop()


class Receiver:
    """A SAMP client that loads tables, as TOPCAT does (and answers the call)."""

    def __init__(self, name="receiver (like TOPCAT)"):
        samp = _samp()
        self.client = samp.SAMPIntegratedClient(name=name, addr="127.0.0.1")
        self.client.connect()
        self.tables, self.params = [], []
        self.got = threading.Event()
        self.client.bind_receive_call(S.MTYPE, self.on_call)

    def on_call(self, private_key, sender_id, msg_id, mtype, params, extra):
        from astropy.io.votable import parse_single_table
        self.params.append(params)
        self.tables.append(parse_single_table(params["url"][len("file://"):]).to_table())
        self.client.reply(msg_id, {"samp.status": "samp.ok", "samp.result": {}})
        self.got.set()

    def close(self):
        self.client.disconnect()


def test_rows_reach_a_client_through_a_real_hub(hub, tmp_path):
    rows = make_hfc1ar_rows().iloc[:3]
    rec = Receiver()
    try:
        sent = S.send_rows(rows, frame="body", name="hfc1ar selection",
                           folder=tmp_path / "out")
        assert sent.ok, sent.message
        assert sent.recipients == ["receiver (like TOPCAT)"]
        assert sent.message == "Sent 3 row(s) to receiver (like TOPCAT)."
        assert rec.got.wait(10)
        t = rec.tables[0]
        assert list(t["granule_uid"]) == list(rows["granule_uid"])
        assert t["s_region"].info.meta.get("xtype", "") == "adql:REGION" or \
            str(t["s_region"][0]).startswith("Polygon")
        assert t["time_min"].unit == "d"
        assert rec.params[0]["name"] == "hfc1ar selection"
        # only applications named like `to`
        none = S.send_rows(rows, to="aladin", folder=tmp_path / "out")
        assert not none.ok and "no application named like 'aladin'" in none.message
    finally:
        rec.close()


def test_the_curator_browser_sends_its_rows(hub, tmp_path):
    from vespa_curation.config import load_config
    from vespa_curation.qa.widgets import CuratorBrowser
    run = tmp_path / "run"
    run.mkdir()
    make_hfc1ar_rows().to_parquet(run / "rows.parquet")
    cfg = load_config("hfc1ar", overrides={"decisions": str(tmp_path / "d.csv"),
                                           "outputs": str(tmp_path / "runs")})
    browser = CuratorBrowser(cfg, run, only_flagged=False, curator="tester")
    rec = Receiver()
    try:
        sent = browser.send(browser.uids[:2])
        assert sent.ok and rec.got.wait(10)
        assert list(rec.tables[0]["granule_uid"]) == browser.uids[:2]
        assert browser.widget() is not None           # the button is part of the UI
    finally:
        rec.close()


def test_without_a_hub_it_says_so_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SAMP_HUB", f"std-lockurl:{(tmp_path / 'no.lock').as_uri()}")
    sent = S.send_rows(make_hfc1ar_rows().iloc[:2], folder=tmp_path / "out")
    assert not sent.ok
    assert sent.message == S.NO_HUB and "\n" not in str(sent)
    assert Path(sent.url[len("file://"):]).is_file()     # the table is written anyway
    assert not S.send_rows(pd.DataFrame()).ok
