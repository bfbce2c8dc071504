"""Throughput of the document sources and of the hfc1t3/nrh mappings (prints figures).

- NDJSON dump → DataFrames (documents/s), with and without a date-range query;
- elasticsearch.helpers.scan against the local wire-format server of tests/test_elastic.py
  (hits/s; measures the client's paging, not a real cluster);
- nrh map + validate + links on N synthetic sessions (rows/s);
- hfc1t3 TFCat contours + map on N bursts (rows/s).

Usage: ``.venv/bin/python benchmarks/bench_services.py [N]`` (default 20000).
"""
from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def _nrh_hits(n, rng):
    from vespa_curation.services.nrh import LAYOUT, NRH_FREQUENCIES_MHZ
    t0 = pd.Timestamp("2000-01-01T08:00:00")
    out = []
    for i in range(n):
        t = t0 + pd.Timedelta(days=i // 2, hours=4 * (i % 2))
        out.append({"_index": "nrh", "_id": f"d{i:09d}", "_source": {
            LAYOUT["DATE_OBS"]: t.isoformat() + "Z",
            LAYOUT["DATE_END"]: (t + pd.Timedelta(hours=3)).isoformat() + "Z",
            LAYOUT["FILENAME"]: f"nrh_{i}.fts", LAYOUT["FILE_URL"]: f"https://x/{i}.fts",
            LAYOUT["FILE_SIZE"]: int(rng.integers(1e8, 4e8)),
            LAYOUT["FILE_FORMAT"]: "application/fits",
            LAYOUT["FREQUENCIES"]: list(NRH_FREQUENCIES_MHZ), LAYOUT["INTEGRATION"]: 0.25,
            LAYOUT["OBS_MODE"]: "2D images"}})
    return out


def main(n: int = 20000) -> None:
    from astropy.utils import iers
    iers.conf.auto_download = False
    from vespa_curation.config import load_config
    from vespa_curation.services import get_service, map_chunk
    from vespa_curation.sources import open_source
    from vespa_curation.sources.dump import write_dump
    from vespa_curation.validate import validate

    rng = np.random.default_rng(1)
    tmp = Path(tempfile.mkdtemp())
    hits = _nrh_hits(n, rng)
    dump = write_dump(hits, tmp / "nrh.ndjson")
    src = open_source(f"ndjson:{dump}")
    t = time.perf_counter()
    k = sum(len(f) for f in src.frames(5000))
    dt = time.perf_counter() - t
    print(f"ndjson dump → frames: {k} documents in {dt:.2f} s = {k / dt:,.0f} doc/s")
    q = {"query": {"bool": {"filter": [{"range": {"date_obs": {"gte": "2003-01-01"}}}]}}}
    t = time.perf_counter()
    k = sum(len(f) for f in src.frames(5000, query=q))
    dt = time.perf_counter() - t
    print(f"ndjson dump, date-range query: {k} documents kept in {dt:.2f} s")

    import test_elastic as te
    state = te.FakeES(hits)
    server = ThreadingHTTPServer(("127.0.0.1", 0), te._handler(state))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    spec = tmp / "es.json"
    spec.write_text(json.dumps({"query_url": f"http://127.0.0.1:{server.server_address[1]}",
                                "index": "nrh", "size": 1000}))
    es = open_source(f"es:{spec}")
    t = time.perf_counter()
    k = sum(1 for _ in es.hits())
    dt = time.perf_counter() - t
    print(f"helpers.scan over the local wire-format server: {k} hits in {dt:.2f} s = "
          f"{k / dt:,.0f} hits/s (pages of 1000)")
    server.shutdown()

    svc = get_service("nrh")
    p = load_config("nrh", overrides={"source": f"ndjson:{dump}", "chunk_size": n})
    rec = next(svc.source.records(src, p, None))
    t = time.perf_counter()
    rows, qq = map_chunk(svc, rec, p)
    acc, q2 = validate(rows, svc)
    links = svc.links(acc, rec, p)
    dt = time.perf_counter() - t
    print(f"nrh map + validate + links: {len(acc)} rows, {len(links)} links in {dt:.2f} s "
          f"= {len(acc) / dt:,.0f} rows/s")

    from vespa_curation.samples import build_samples
    s = build_samples(tmp / "samples")
    svc = get_service("hfc1t3")
    p = load_config("hfc1t3", overrides={"source": f"sqlite:///{s['hfc']}"})
    rec = next(svc.source.records(open_source(p["source"]), p, None))
    rec = rec.iloc[:-1]                              # the sample's refused burst
    reps = max(1, n // len(rec))
    big = pd.concat([rec] * reps, ignore_index=True)
    big["ID_TYPE_III"] = np.arange(1, len(big) + 1)
    t = time.perf_counter()
    rows, qq = map_chunk(svc, big, p)
    files = svc.files(rows, p)
    dt = time.perf_counter() - t
    print(f"hfc1t3 map (chain → TFCat) + TFCat files: {len(rows)} bursts in {dt:.2f} s = "
          f"{len(rows) / dt:,.0f} bursts/s; {sum(map(len, files.values())) / 1e6:.1f} MB")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20000)
