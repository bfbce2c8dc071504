"""Elasticsearch and NDJSON-dump document sources.

No Elasticsearch server can be installed on the test machines: the client path is tested
against a small local HTTP server on 127.0.0.1 that speaks the Elasticsearch 8
search/scroll wire format — ``POST /<index>/_search?scroll=..&size=..`` opening a scroll,
``POST /_search/scroll`` paging it, ``DELETE /_search/scroll`` clearing it, every response
carrying the ``X-Elastic-Product: Elasticsearch`` header the 8.x client checks. The real
``elasticsearch`` client and ``elasticsearch.helpers.scan`` run unchanged against it.
The server can expire the scroll (HTTP 404 ``search_context_missing_exception``) or drop
the connection mid-scan, to check those are errors and not a short table.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from vespa_curation.sources import SourceError, open_source
from vespa_curation.sources.documents import DumpSource, matches, write_dump

N_DOCS = 25


def _docs(index="nrh", n=N_DOCS):
    return [{"_index": index, "_id": f"id{i:03d}",
             "_source": {"date_obs": f"2012-01-{1 + i % 28:02d}T08:00:00",
                         "n": i, "meta": {"freq": [150.9, 228.0]}}}
            for i in range(n)]


class FakeES:
    """State of the fake server: documents, page size and the failure mode."""

    def __init__(self, docs):
        self.docs = docs
        self.mode = "ok"          # ok | expire | drop
        self.scrolls: dict[str, list] = {}
        self.requests: list[str] = []
        self.cleared = 0


def _handler(state: FakeES):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def _send(self, status, obj):
            data = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/vnd.elasticsearch+json;"
                             "compatible-with=8")
            self.send_header("X-Elastic-Product", "Elasticsearch")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self):
            n = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(n) or b"{}") if n else {}

        def _page(self, sid):
            pending = self.server_state.scrolls[sid]
            size = self.server_state.size
            page, self.server_state.scrolls[sid] = pending[:size], pending[size:]
            return {"_scroll_id": sid, "took": 1, "timed_out": False,
                    "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
                    "hits": {"total": {"value": len(self.server_state.docs),
                                       "relation": "eq"},
                             "max_score": None, "hits": page}}

        server_state = state

        def do_GET(self):
            state.requests.append("GET " + self.path)
            self._send(200, {"name": "fake", "cluster_name": "fake",
                             "version": {"number": "8.13.0"}, "tagline": "You Know, for Search"})

        def do_POST(self):
            state.requests.append("POST " + self.path)
            body = self._body()
            path = self.path.split("?")[0]
            if path.endswith("/_search") and path != "/_search/scroll":
                index = path.strip("/").split("/")[0]
                from urllib.parse import parse_qs, urlparse
                qs = parse_qs(urlparse(self.path).query)
                # the 8.x client sends size in the body, older ones in the query string
                state.size = int(body.get("size") or qs.get("size", ["10"])[0])
                clause = body.get("query")
                docs = [d for d in state.docs if d["_index"] == index
                        and matches(d["_source"], clause, d["_id"])]
                sid = f"scroll{len(state.scrolls)}"
                state.scrolls[sid] = docs
                return self._send(200, self._page(sid))
            if path == "/_search/scroll":
                sid = body["scroll_id"]
                if state.mode == "expire":
                    return self._send(404, {
                        "error": {"root_cause": [{"type": "search_context_missing_exception",
                                                  "reason": "No search context found for id"}],
                                  "type": "search_phase_execution_exception",
                                  "reason": "all shards failed"},
                        "status": 404})
                if state.mode == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)   # connection dropped, no response
                    return
                return self._send(200, self._page(sid))
            self._send(400, {"error": f"unexpected {self.path}", "status": 400})

        def do_DELETE(self):
            state.requests.append("DELETE " + self.path)
            self._body()
            state.cleared += 1
            self._send(200, {"succeeded": True, "num_freed": 1})

        def do_HEAD(self):
            self._send(200, {})
    return H


@pytest.fixture
def fake_es(tmp_path):
    state = FakeES(_docs() + _docs("orfees", 3))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    spec = {"query_url": f"http://127.0.0.1:{server.server_address[1]}", "index": "nrh",
            "query_data": {"query": {"match_all": {}}}, "size": 10, "request_timeout": 5}
    f = tmp_path / "es.json"
    f.write_text(json.dumps(spec))
    yield state, f
    server.shutdown()
    server.server_close()


def test_scan_reads_every_page(fake_es):
    state, f = fake_es
    src = open_source(f"es:{f}")
    hits = list(src.hits())
    assert [h["_id"] for h in hits] == [f"id{i:03d}" for i in range(N_DOCS)]
    # 25 hits in pages of 10: one search, then scroll pages until an empty one
    assert state.requests[0].startswith("POST /nrh/_search")
    assert sum(r.startswith("POST /_search/scroll") for r in state.requests) == 3
    assert state.cleared == 1       # the scroll is cleared at the end
    frames = list(src.frames(chunksize=7))
    assert [len(x) for x in frames] == [7, 7, 7, 4]
    df = frames[0]
    assert {"_ID", "_INDEX", "DATE_OBS", "N", "META.FREQ"} <= set(df.columns)
    assert df["META.FREQ"].iloc[0] == [150.9, 228.0]


def test_scan_passes_the_query(fake_es):
    state, f = fake_es
    src = open_source(f"es:{f}")
    q = {"query": {"bool": {"filter": [{"range": {"n": {"gte": 20}}}]}}}
    assert [h["_id"] for h in src.hits(query=q)] == [f"id{i:03d}" for i in range(20, 25)]
    assert len(list(src.hits(index="orfees"))) == 3


def test_expired_scroll_is_an_error(fake_es):
    state, f = fake_es
    state.mode = "expire"
    src = open_source(f"es:{f}")
    with pytest.raises(SourceError, match=r"index 'nrh'.*after 10 hit"):
        list(src.hits())


def test_dropped_connection_is_an_error(fake_es):
    state, f = fake_es
    state.mode = "drop"
    src = open_source(f"es:{f}")
    with pytest.raises(SourceError, match=r"index 'nrh'.*after 10 hit"):
        for _ in src.frames(chunksize=1000):
            pass


def test_parameters_file_is_checked(tmp_path):
    f = tmp_path / "bad.json"
    f.write_text(json.dumps({"query_url": "http://u:secret@127.0.0.1:1", "index": "nrh",
                             "qurey_data": {}}))
    with pytest.raises(SourceError, match="qurey_data") as e:
        open_source(f"es:{f}")
    assert "secret" not in str(e.value)
    f.write_text("{not json")
    with pytest.raises(SourceError, match="not JSON"):
        open_source(f"es:{f}")
    with pytest.raises(SourceError, match="does not exist"):
        open_source(f"es:{tmp_path / 'none.json'}")


def test_unreachable_server_names_index_not_credentials(tmp_path):
    f = tmp_path / "es.json"
    f.write_text(json.dumps({"query_url": "http://user:secret@127.0.0.1:9", "index": "nrh",
                             "request_timeout": 1}))
    src = open_source(f"es:{f}")
    with pytest.raises(SourceError, match="index 'nrh'") as e:
        list(src.hits())
    assert "secret" not in str(e.value)


# -- NDJSON dumps ----------------------------------------------------------------------

def test_dump_round_trip_and_query(tmp_path):
    p = write_dump(_docs() + _docs("orfees", 2), tmp_path / "d.ndjson.gz")
    src = open_source(f"ndjson:{p}")
    assert isinstance(src, DumpSource)
    assert len(list(src.hits())) == N_DOCS + 2
    assert len(list(src.hits(index="orfees"))) == 2
    q = {"query": {"bool": {"filter": [{"range": {"date_obs": {"gte": "2012-01-20T00:00:00Z"}}}],
                            "must_not": [{"term": {"n": 19}}]}}}
    got = [h["_source"]["n"] for h in src.hits(index="nrh", query=q)]
    assert got == [i for i in range(N_DOCS) if 1 + i % 28 >= 20 and i != 19]
    df = next(src.frames(100, index="nrh"))
    assert len(df) == N_DOCS and df["_ID"].iloc[3] == "id003"
    src.require({"nrh": ["DATE_OBS", "META.FREQ"]})
    with pytest.raises(SourceError, match="FILE_URL"):
        src.require({"nrh": ["DATE_OBS", "FILE_URL"]})


def test_dump_gives_bad_lines_as_unreadable_and_refuses_unknown_queries(tmp_path):
    from vespa_curation.sources.documents import BAD_HIT
    p = tmp_path / "d.ndjson"
    p.write_text(json.dumps(_docs(n=1)[0]) + "\n{oops\n")
    src = open_source(f"ndjson:{p}")
    good, bad = list(src.hits())        # one bad line never stops a harvest
    assert BAD_HIT not in good
    assert bad["_id"] == "d.ndjson:2" and "not JSON" in bad[BAD_HIT]
    p.write_text(json.dumps(_docs(n=1)[0]) + "\n")
    with pytest.raises(SourceError, match="wildcard"):
        list(src.hits(query={"query": {"wildcard": {"x": "a*"}}}))
