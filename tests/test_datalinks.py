"""Datalinks: the links table, HAPI 3 / das2 URL forms and time windows, the services'
links (NRH noisy frequencies and thumbnail, ORFEES PNG, progenitors), the RD fragment."""
from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pandas as pd
import pytest

from vespa_curation import datalinks
from vespa_curation.export.rd import datalink_fragment
from vespa_curation.times import jd


def test_hapi_url_form_and_exclusive_stop():
    t0, t1 = jd(["2012-01-11T08:19:21.999"]), jd(["2012-01-11T15:58:00.000"])
    url = datalinks.hapi_urls("https://h.example/hapi/", "nrh_flux", t0, t1)[0]
    u = urlparse(url)
    assert u.path == "/hapi/data"
    q = parse_qs(u.query)
    assert q == {"dataset": ["nrh_flux"], "start": ["2012-01-11T08:19:21Z"],
                 "stop": ["2012-01-11T15:58:01Z"]}      # stop exclusive: after time_max
    assert "time.min" not in url and "id=" not in url   # not the HAPI 2 names


def test_das2_url_form():
    t0, t1 = jd(["2012-01-09T07:59:59"]), jd(["2012-01-09T15:30:00"])
    url = datalinks.das2_urls("https://d.example/das2/server", "orfees", t0, t1)[0]
    u = urlparse(url)
    assert u.path == "/das2/server"
    assert parse_qs(u.query) == {"server": ["dataset"], "dataset": ["orfees"],
                                 "start_time": ["2012-01-09T07:59:59Z"],
                                 "end_time": ["2012-01-09T15:30:01Z"]}


def test_link_rows_and_checks():
    df = datalinks.link_rows(["a", "b", "c"], ["http://x/1", None, ""], "#this",
                             "application/fits", "file", [1000, None, 3])
    assert list(df["granule_uid"]) == ["a"]             # no URL, no link
    assert df["content_length"].dtype == "Int64"
    assert datalinks.check_links(df) == []
    bad = df.assign(semantics="this", content_type="Image/GIF")
    problems = datalinks.check_links(bad)
    assert any("not a datalink term" in p for p in problems)
    assert any("lower-case MIME" in p for p in problems)
    both = datalinks.concat_links([df, df, df.assign(semantics="#preview")])
    assert len(both) == 2                               # same URL, two semantics kept


def test_rd_fragment():
    frag = datalink_fragment("hfc1t3", static_dir="tfcat")
    r = frag["resource"]
    assert 'procDef="//datalink#fromtable"' in r
    assert '"hfc1t3.epn_core"' in r and "FROM hfc1t3.links" in r
    assert 'allowed="dlget,dlmeta,static"' in r and ">tfcat</property>" in r
    assert 'pattern="links/*.vot"' in r and "ignoreSources" in r
    assert "_associatedDatalinkService" in frag["table"]
    assert "static" not in datalink_fragment("nrh")["resource"].split("allowed=")[1][:20]


@pytest.fixture(scope="module")
def harvested(tmp_path_factory):
    from vespa_curation.config import load_config
    from vespa_curation.samples import build_samples
    from vespa_curation.services import get_service, map_chunk
    from vespa_curation.sources import open_source
    s = build_samples(tmp_path_factory.mktemp("s"))
    src = {"hfc1t3": f"sqlite:///{s['hfc']}", "bass2000": f"sqlite:///{s['bass2000']}",
           "nrh": f"ndjson:{s['nrh']}", "orfees": f"ndjson:{s['orfees']}"}
    out = {}
    for name, url in src.items():
        svc = get_service(name)
        p = load_config(name, overrides={"source": url})
        for rec in svc.source.records(open_source(url), p, None):
            rows, _ = map_chunk(svc, rec, p)
            out[name] = (svc, p, rows, svc.links(rows, p))
    return out


def test_nrh_links(harvested):
    svc, p, rows, links = harvested["nrh"]
    assert p["noisy_frequencies"] == "150.9"
    assert datalinks.check_links(links) == []
    for _, r in rows.iterrows():
        mine = links[links["granule_uid"] == r["granule_uid"]]
        prev = mine[mine["semantics"] == "#preview"]["access_url"].tolist()
        assert prev and all(u.endswith(".gif") for u in prev)
        assert not any(u.endswith("_1509.gif") for u in prev)    # noisy: left out
        day = pd.Timestamp(r["time_min"] - 2440587.5, unit="D")
        assert all(f"/nrh{day:%d%m%Y}_" in u for u in prev)
        thumb = mine[mine["semantics"] == "#thumbnail"]["access_url"].tolist()
        assert thumb == [max(prev, key=lambda u: int(u[-8:-4]))] == [r["thumbnail_url"]]
        assert mine[mine["semantics"] == "#this"]["access_url"].tolist() == [r["access_url"]]
        cod = mine[mine["semantics"] == "#coderived"]
        assert set(cod["content_type"]) == {datalinks.HAPI_CSV, datalinks.DAS2_STREAM}
    # session with frequencies 173.2..408 only: thumbnail at 408 MHz
    assert links["access_url"].str.endswith("_4080.gif").any()
    one = rows.iloc[0]
    n_freq = len([x for x in str(one["qa_ql_freqs"]).split(",") if x])
    assert n_freq == 7                                 # 8 NRH frequencies minus 150.9


def test_nrh_without_noisy_frequencies_and_servers(harvested):
    svc, p, rows, links = harvested["nrh"]
    from vespa_curation.services.nrh import prepare
    p2 = dict(p, noisy_frequencies="", hapi_server=None, das2_server=None)
    rec = pd.DataFrame({"_ID": ["x"], "_UID": ["x"], "DATE_OBS": ["2012-01-11T08:00:00Z"],
                        "DATE_END": ["2012-01-11T09:00:00Z"],
                        "FREQUENCIES": [[150.9, 445.0]]})
    rec = prepare(rec, p2)
    assert rec.loc[0, "QL_FREQS"] == "150.9,445"
    l2 = svc.links(rows, p2)
    assert "#coderived" not in set(l2["semantics"])


def test_orfees_hfc1t3_bass2000_links(harvested):
    svc, p, rows, links = harvested["orfees"]
    assert datalinks.check_links(links) == []
    prev = links[links["semantics"] == "#preview"]
    assert prev["access_url"].str.endswith(".png").all() and len(prev) == len(rows)
    assert set(prev["content_type"]) == {"image/png"}
    svc, p, rows, links = harvested["hfc1t3"]
    assert datalinks.check_links(links) == []
    prog = links[links["semantics"] == "#progenitor"]
    assert prog["access_url"].str.match(r"ftp://stereowaves\.gsfc\.nasa\.gov/.*\.R2\.Z").all()
    this = links[links["semantics"] == "#this"]
    assert (this["content_type"] == "application/json").all()
    files = svc.files(rows, p)
    for _, r in this.iterrows():
        rel = f"tfcat/{r['granule_uid']}.json"
        assert len(files[rel]) == r["content_length"]
    svc, p, rows, links = harvested["bass2000"]
    assert datalinks.check_links(links) == []
    assert set(links["semantics"]) == {"#this", "#thumbnail", "#documentation"}
