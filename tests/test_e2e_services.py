"""End-to-end: hfc1t3, bass2000, nrh and orfees from their embedded samples through the
real DaCHS (the session's ``dachs`` fixture of conftest.py).

For each service: build the sample, harvest + map + validate every chunk, build its
datalinks (and hfc1t3's TFCat files), write the import area, ``dachs imp``, ``dachs val``,
count the rows through TAP, then fetch one granule's ``dlmeta`` through DaCHS's datalink
service and check its links (and, for hfc1t3, fetch the TFCat file the granule links to
from DaCHS's static renderer and validate it with the Starlink TFCat validator).
"""
from __future__ import annotations

import io
import urllib.request

import pandas as pd
import pytest

from vespa_curation import datalinks
from vespa_curation.formats import tfcat
from vespa_curation.config import load_config
from vespa_curation.harvest import normalize
from vespa_curation.services import get_service, map_chunk
from vespa_curation.sources import open_source
from vespa_curation.validate import validate
from conftest import write_area

pytestmark = [pytest.mark.dachs, pytest.mark.slow]

SERVICES = ("hfc1t3", "bass2000", "nrh", "orfees")
#: Semantics every granule of the service must have in dlmeta (with the sample's
#: parameters: HAPI/das2 placeholders set in parameters/<service>.yaml).
EXPECTED = {
    "hfc1t3": {"#this", "#progenitor", "#documentation"},
    "bass2000": {"#this", "#thumbnail", "#documentation"},
    "nrh": {"#this", "#preview", "#thumbnail", "#coderived", "#documentation"},
    "orfees": {"#this", "#preview", "#coderived", "#documentation"},
}


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    from vespa_curation.samples import build_samples
    return build_samples(tmp_path_factory.mktemp("samples"))


def _source_url(name, samples):
    return {"hfc1t3": f"sqlite:///{samples['hfc']}",
            "bass2000": f"sqlite:///{samples['bass2000']}",
            "nrh": f"ndjson:{samples['nrh']}", "orfees": f"ndjson:{samples['orfees']}"}[name]


def harvest_all(name, samples, server_url):
    """Accepted rows, quarantine, links and extra files of a full harvest of a sample."""
    svc = get_service(name)
    p = load_config(name, overrides={"source": _source_url(name, samples),
                                     "server_url": server_url})
    src = open_source(p["source"])
    svc.source.check(src)
    rows, quar, links = [], [], []
    for rec in svc.source.records(src, p, None):
        r, q = map_chunk(svc, rec, p)
        acc, q2 = validate(r, svc)
        rows.append(normalize(acc))
        quar += [q, q2]
        if svc.links is not None:
            links.append(svc.links(acc, p))
    rows = pd.concat(rows, ignore_index=True)
    links = datalinks.concat_links(links)
    files = svc.files(rows, p) if svc.files is not None else {}
    return svc, p, rows, pd.concat(quar, ignore_index=True), links, files


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.read()


@pytest.mark.parametrize("name", SERVICES)
def test_service_round_trip_and_dlmeta(name, samples, dachs, tmp_path):
    svc, p, rows, quar, links, files = harvest_all(name, samples, dachs.url)
    assert len(rows) > 0
    assert datalinks.check_links(links) == []
    area = write_area(svc, rows, dachs_inputs=dachs.inputs, run_id="e2e1",
                             server_url=dachs.url, links=links, extra_files=files)
    assert (area / "q.rd").is_file()
    # the DaCHS database outlives test sessions: start from an empty service
    dachs.run("drop", f"{name}/q", check=False)
    dachs.run("imp", f"{name}/q")
    dachs.expire(f"{name}/q")
    val = dachs.run("val", f"{name}/q", check=False)
    assert val.returncode == 0 and "ERROR" not in val.stdout.upper(), val.stdout + val.stderr
    n = dachs.tap().search(f"SELECT COUNT(*) AS n FROM {name}.epn_core").to_table()["n"][0]
    assert int(n) == len(rows)
    got = dachs.tap().search(
        f"SELECT granule_uid, datalink_url FROM {name}.epn_core").to_table()
    assert set(got["granule_uid"]) == set(rows["granule_uid"])

    # dlmeta of one granule through DaCHS's datalink service
    uid = sorted(rows["granule_uid"])[0]
    url = datalinks.datalink_urls(dachs.url, name, [uid])[0]
    assert url in set(got["datalink_url"])
    from astropy.io.votable import parse_single_table
    t = parse_single_table(io.BytesIO(_get(url))).to_table()
    mine = t[[str(i) == uid for i in t["ID"]]]
    sem = {str(s) for s in mine["semantics"]}
    assert EXPECTED[name] <= sem, sem
    want = links[links["granule_uid"] == uid]
    assert {str(u) for u in mine["access_url"]} == set(want["access_url"])
    if name == "nrh":
        noisy = [u for u in mine["access_url"] if str(u).endswith("_1509.gif")]
        assert not noisy                          # 150.9 MHz is configured as noisy
        thumb = [str(u) for u, s in zip(mine["access_url"], mine["semantics"])
                 if s == "#thumbnail"]
        previews = [str(u) for u, s in zip(mine["access_url"], mine["semantics"])
                    if s == "#preview"]
        assert thumb == [max(previews, key=lambda u: int(u[-8:-4]))]
    if name == "hfc1t3":
        # the granule's TFCat file, served by DaCHS's static renderer, is valid TFCat
        this = [str(u) for u, s in zip(mine["access_url"], mine["semantics"]) if s == "#this"]
        body = _get(this[0])
        f = tmp_path / "burst.json"
        f.write_bytes(body)
        ok, report = tfcat.validate_file(f)
        assert ok, report
        assert uid in body.decode()
