"""Elasticsearch source: ``elasticsearch.helpers.scan`` over a query-parameters file.

This is how the original NRH/ORFEES ingestion (a DaCHS customGrammar's
``get_metadata.py``) read the Nançay index: a JSON file of query parameters ::

    {"query_url": "https://user:password@host:9200",
     "index": "nrh",
     "query_data": {"query": {"match_all": {}}}}

and ``elasticsearch.helpers.scan(es, index=index, query=query_data)``. Optional keys:
``scroll`` (default ``"5m"``), ``size`` (hits per scroll page, default 1000),
``request_timeout`` (s, default 60), ``verify_certs``, ``ca_certs``, ``api_key``. The
environment variable ``VESPA_ES_API_KEY`` gives an API key when the file has none.
Credentials stay in that file or the environment: messages name the file, never the URL.

Client version: elasticsearch-py's major version must match the server's (the 9.x client
refuses 8.x servers, and the 8.x client checks the ``X-Elastic-Product`` header).
The project pins ``elasticsearch>=8,<9`` (pyproject.toml, environment.yml); for a 7.x
server install ``elasticsearch>=7.17,<8`` in the environment instead — the calls used
here (``Elasticsearch(url)``, ``helpers.scan``) are the same in 7.17 and 8.x.

A scroll that expires (HTTP 404 ``search_context_missing_exception``), a shard failure
or a connection that drops mid-scan raises :class:`SourceError` naming the index and
how many hits had arrived: a harvest never continues with a short table.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Iterator, Mapping

from .documents import DocumentSource
from .errors import SourceError
from .schemes import scheme

#: Keys accepted in the query-parameters file.
FILE_KEYS = {"query_url", "index", "query_data", "scroll", "size", "request_timeout",
             "verify_certs", "ca_certs", "api_key"}


def _scrub(text: str) -> str:
    """Remove user:password@ from URLs and api keys from a message."""
    text = re.sub(r"(//)[^/@\s]+@", r"\1***@", text)
    return re.sub(r"(?i)(api[_-]?key['\"]?\s*[:=]\s*['\"]?)[^'\",\s]+", r"\1***", text)


def query_body(query_data: Mapping[str, Any] | None) -> dict:
    """``query_data`` as a search body: a bare clause is wrapped as ``{"query": ...}``."""
    if not query_data:
        return {"query": {"match_all": {}}}
    q = dict(query_data)
    if "query" in q or not q:
        return q
    return {"query": q}


class ElasticSource(DocumentSource):
    """An Elasticsearch index read with ``helpers.scan`` (see the module docstring).

    Parameters
    ----------
    spec : mapping
        The parameters file's content.
    label : str
        How the source is named in messages (``es:<file>``).
    """


    def __init__(self, spec: Mapping[str, Any], label: str):
        unknown = set(spec) - FILE_KEYS
        if unknown:
            raise SourceError(f"{label}: unknown key(s) {sorted(unknown)}; accepted: "
                              + ", ".join(sorted(FILE_KEYS)))
        for key in ("query_url", "index"):
            if not spec.get(key):
                raise SourceError(f"{label}: key {key!r} is required")
        self.spec = dict(spec)
        self.label = label
        self.index = str(spec["index"])
        self.query = query_body(spec.get("query_data"))
        self._client = None

    @property
    def client(self):
        if self._client is None:
            try:
                from elasticsearch import Elasticsearch
            except ImportError as exc:  # pragma: no cover - a declared dependency
                raise SourceError(f"elasticsearch-py is not importable: {exc}") from None
            kw: dict[str, Any] = {"request_timeout": float(self.spec.get("request_timeout", 60))}
            for key in ("verify_certs", "ca_certs"):
                if key in self.spec:
                    kw[key] = self.spec[key]
            api_key = self.spec.get("api_key") or os.environ.get("VESPA_ES_API_KEY")
            if api_key:
                kw["api_key"] = api_key
            try:
                self._client = Elasticsearch(str(self.spec["query_url"]), **kw)
            except Exception as exc:
                raise SourceError(f"cannot create an Elasticsearch client for {self.label}: "
                                  f"{_scrub(str(exc))}") from None
        return self._client

    def hits(self, index: str | None = None, query: Mapping[str, Any] | None = None
             ) -> Iterator[dict]:
        """Every hit of ``query`` in ``index`` through ``elasticsearch.helpers.scan``.

        Raises
        ------
        SourceError
            When the scan fails at any point (expired scroll, shard failure, dropped
            connection, refused request), naming the index and the hits received.
        """
        from elasticsearch import helpers
        index = index or self.index
        body = query_body(query) if query is not None else self.query
        n = 0
        try:
            for hit in helpers.scan(self.client, query=body, index=index,
                                    scroll=str(self.spec.get("scroll", "5m")),
                                    size=int(self.spec.get("size", 1000)),
                                    raise_on_error=True, preserve_order=False,
                                    clear_scroll=True):
                n += 1
                yield hit
        except SourceError:
            raise
        except Exception as exc:   # ApiError, TransportError (connection), ScanError
            kind = type(exc).__name__
            raise SourceError(
                f"Elasticsearch scan of index {index!r} on {self.label} failed after "
                f"{n} hit(s) ({kind}: {_scrub(str(exc))[:300]}); the harvest stops rather "
                "than continue with a partial table") from None

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            finally:
                self._client = None


@scheme("es:", "es:FILE", 'an Elasticsearch index: FILE holds the JSON {"query_url", '
        '"index", "query_data"} read with elasticsearch.helpers.scan')
def _open_es(rest: str) -> ElasticSource:
    from ..paths import resolve
    return elastic_source(resolve(rest))


def elastic_source(path: str | os.PathLike) -> ElasticSource:
    """The Elasticsearch source described by the JSON parameters file at ``path``."""
    p = Path(path)
    label = f"es:{p}"
    if not p.is_file():
        raise SourceError(f"Elasticsearch parameters file {p} does not exist")
    try:
        spec = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SourceError(f"{label}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(spec, dict):
        raise SourceError(f"{label}: expected a JSON object with query_url, index, "
                          "query_data")
    return ElasticSource(spec, label)
