"""Sources by URL scheme (DESIGN.md): sqlite, odbc, es, ndjson."""
from __future__ import annotations

from ..paths import resolve
from .errors import SourceError
from .sql import SqlSource, odbc_source, sqlite_source

SCHEMES = ("sqlite:///", "odbc:", "es:", "ndjson:")


def open_source(url: str):
    """Open the source named by ``url``.

    ``sqlite:///PATH`` (PATH absolute — four slashes — or relative to the project root),
    ``odbc:<file holding a pyodbc connection string>`` (or ``odbc:env:VAR``),
    ``es:<file holding {"query_url", "index", "query_data"}>``,
    ``ndjson:<dump file, one hit per line>``.
    """
    if not isinstance(url, str) or not url:
        raise SourceError("no source given")
    if url.startswith("sqlite:///"):
        return sqlite_source(resolve(url[len("sqlite:///"):]))
    if url.startswith("odbc:"):
        rest = url[5:]
        return odbc_source(rest if rest.startswith("env:") else resolve(rest))
    if url.startswith("es:"):
        from .elastic import elastic_source
        return elastic_source(resolve(url[3:]))
    if url.startswith("ndjson:"):
        from .dump import dump_source
        return dump_source(resolve(url[7:]))
    raise SourceError(f"unknown source scheme in {url.split(':', 1)[0]!r}: "
                      f"expected one of {', '.join(SCHEMES)}")


__all__ = ["open_source", "SourceError", "SqlSource", "SCHEMES"]
