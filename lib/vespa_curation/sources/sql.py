"""SQL sources over DB-API: SQLite for the embedded samples, ODBC for real databases.

The ODBC route works the way DaCHS's ``odbcGrammar`` does: the pyodbc connection string
lives in a file (one line, e.g. ``DRIVER={PostgreSQL Unicode};SERVER=...;UID=...;PWD=...``)
and is never written into a notebook, a parameters file, a log or an error message.
Both drivers use the ``qmark`` parameter style, so a service's query is written once with
``?`` placeholders and bound parameters (never SQL built from values).
"""
from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path
from typing import Iterator, Sequence

import pandas as pd

from .errors import SourceError


class SqlSource:
    """A relational source read through a DB-API connection.

    Parameters
    ----------
    connect : callable
        Returns a new DB-API connection.
    label : str
        How the source is named in messages (never holds credentials).
    """

    paramstyle = "qmark"

    def __init__(self, connect, label: str):
        self._connect = connect
        self.label = label
        self._conn = None

    # -- connection -----------------------------------------------------------------
    @property
    def conn(self):
        if self._conn is None:
            try:
                self._conn = self._connect()
            except SourceError:
                raise
            except Exception as exc:  # driver errors differ between drivers
                raise SourceError(f"cannot connect to source {self.label}: "
                                  f"{_scrub(str(exc))}") from None
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- reading --------------------------------------------------------------------
    def query(self, sql: str, params: Sequence = (), chunksize: int = 50_000
              ) -> Iterator[pd.DataFrame]:
        """Run ``sql`` with bound ``params``; yield DataFrames of at most ``chunksize``
        rows, column names upper-cased."""
        cur = self.conn.cursor()
        try:
            cur.execute(sql, tuple(params))
        except Exception as exc:
            raise SourceError(f"query failed on source {self.label}: "
                              f"{_scrub(str(exc))}") from None
        names = [d[0].upper() for d in cur.description]
        while True:
            batch = cur.fetchmany(chunksize)
            if not batch:
                break
            yield pd.DataFrame.from_records([tuple(r) for r in batch], columns=names)
        cur.close()

    def scalar(self, sql: str, params: Sequence = ()):
        """The first column of the first row of ``sql`` (None when no row)."""
        for df in self.query(sql, params, chunksize=1):
            return df.iat[0, 0] if len(df) else None
        return None

    def tables(self) -> set[str]:
        """Upper-cased names of the tables and views of the source."""
        conn = self.conn
        if isinstance(conn, sqlite3.Connection):
            cur = conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table','view')")
            return {r[0].upper() for r in cur.fetchall()}
        cur = conn.cursor()
        names = {r.table_name.upper() for r in cur.tables()
                 if (r.table_type or "").upper() in ("TABLE", "VIEW")}
        cur.close()
        return names

    def columns(self, table: str) -> set[str]:
        """Upper-cased column names of ``table`` (any letter case in the source)."""
        actual = self._actual_name(table)
        cur = self.conn.cursor()
        cur.execute(f'SELECT * FROM {actual} WHERE 1=0')
        names = {d[0].upper() for d in cur.description}
        cur.close()
        return names

    def _actual_name(self, table: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", table):
            raise SourceError(f"not a table name: {table!r}")
        conn = self.conn
        if isinstance(conn, sqlite3.Connection):
            return table   # SQLite names are case-insensitive
        cur = conn.cursor()
        for r in cur.tables():
            if r.table_name.upper() == table.upper():
                cur.close()
                return f'"{r.table_name}"' if r.table_name != r.table_name.lower() \
                    else r.table_name
        cur.close()
        return table

    def table_name(self, table: str) -> str:
        """The name to write in SQL for HFC table ``table`` (quoted where needed)."""
        return self._actual_name(table)

    def require(self, needs: dict[str, Sequence[str]]) -> None:
        """Check that every table and column in ``needs`` exists; SourceError naming
        each missing one otherwise (before any harvesting starts)."""
        have = self.tables()
        missing = []
        for table, cols in needs.items():
            if table.upper() not in have:
                missing.append(f"table {table}")
                continue
            got = self.columns(table)
            missing += [f"column {table}.{c}" for c in cols if c.upper() not in got]
        if missing:
            raise SourceError(f"source {self.label} lacks " + ", ".join(missing))


def _scrub(text: str) -> str:
    """Remove anything that looks like a credential from a driver message."""
    return re.sub(r"(?i)(pwd|password|uid|user)\s*=\s*[^;]*", r"\1=***", text)


def _decode_text(b: bytes) -> str:
    return b.decode("utf-8", errors="replace")


def sqlite_source(path: str | os.PathLike) -> SqlSource:
    p = Path(path)
    if not p.is_file():
        raise SourceError(f"source database {p} does not exist (run `vespa-curate sample` "
                          "to build the embedded samples)")

    def connect():
        conn = sqlite3.connect(f"file:{p}?mode=ro", uri=True, check_same_thread=False,
                               detect_types=0)
        # text that is not UTF-8 (a legacy Latin-1 value) must not stop the harvest:
        # undecodable bytes become U+FFFD, which the validator refuses (epn.string) in
        # that record only
        conn.text_factory = _decode_text
        return conn
    return SqlSource(connect, label=f"sqlite:{p}")


def odbc_source(conn_file: str | os.PathLike) -> SqlSource:
    """A source whose pyodbc connection string is read from ``conn_file`` (or, when
    ``conn_file`` names an environment variable as ``env:NAME``, from that variable)."""
    spec = str(conn_file)
    if spec.startswith("env:"):
        var = spec[4:]
        text = os.environ.get(var)
        if not text:
            raise SourceError(f"environment variable {var} (ODBC connection string) "
                              "is not set")
        label = f"odbc:env:{var}"
    else:
        p = Path(spec)
        if not p.is_file():
            raise SourceError(f"ODBC connection file {p} does not exist")
        text = p.read_text(encoding="utf-8").strip()
        label = f"odbc:{p}"
    if not text:
        raise SourceError(f"{label}: empty ODBC connection string")

    def connect():
        try:
            import pyodbc
        except ImportError as exc:  # pragma: no cover - pyodbc is a dependency
            raise SourceError(f"pyodbc is not importable ({exc}); install unixodbc") from None
        conn = pyodbc.connect(text, autocommit=True)
        return conn
    return SqlSource(connect, label=label)
