"""Sources and the declared harvesters that read them (like DaCHS grammars).

A source is opened from the ``source`` parameter's URL, by scheme
(:data:`~vespa_curation.sources.schemes.SCHEMES`: ``sqlite:///PATH``, ``odbc:FILE``,
``es:FILE``, ``ndjson:FILE``, ``files:DIR``); a service declares the harvester that
reads it: :class:`SqlTable`, :class:`Documents` or :class:`Files`.
"""
from __future__ import annotations

# each module registers its schemes; this order is the order messages list them
from . import sql, documents, elastic, files  # noqa: F401,I001
from .base import Harvester, Mark
from .documents import Documents
from .errors import SourceError
from .files import Files
from .schemes import SCHEMES, forms
from .sql import Join, SqlSource, SqlTable


def open_source(url: str):
    """Open the source named by ``url`` (see the module docstring); SourceError naming
    the accepted schemes for anything else."""
    if not isinstance(url, str) or not url:
        raise SourceError("no source given")
    for prefix, s in SCHEMES.items():
        if url.startswith(prefix):
            return s.opener(url[len(prefix):])
    raise SourceError(f"unknown source scheme in {url.split(':', 1)[0]!r}: expected "
                      + forms())


__all__ = ["open_source", "SourceError", "SqlSource", "SCHEMES", "Harvester", "Mark",
           "SqlTable", "Join", "Documents", "Files"]
