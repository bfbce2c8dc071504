"""The registry of source URL schemes: ``scheme -> opener``.

Each source module registers the schemes it opens with :func:`scheme`; the parameter
check, :func:`vespa_curation.sources.open_source` and the documentation read this one
registry.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable


@dataclass(frozen=True)
class Scheme:
    """One URL scheme: its prefix, the form a user writes, and the opener."""

    prefix: str
    form: str
    doc: str
    opener: Callable[[str], object]


#: prefix → Scheme, in registration order.
SCHEMES: dict[str, Scheme] = {}


def scheme(prefix: str, form: str, doc: str):
    """Decorator registering ``opener(rest_of_url) -> source`` for URLs ``prefix...``."""
    def deco(opener):
        SCHEMES[prefix] = Scheme(prefix, form, doc, opener)
        return opener
    return deco


def forms() -> str:
    """``sqlite:///PATH | odbc:FILE | ...`` (parameter documentation)."""
    return " | ".join(s.form for s in SCHEMES.values())


def absolute(url: str, base: Path) -> str:
    """``url`` with its relative path made absolute against ``base`` (``odbc:env:NAME``,
    a URL where a path belongs — refused later, by the parameter checks — absolute paths
    and unknown schemes as they are). A user's ``-p``/``-f`` source is
    relative to the working directory; the project's own defaults to the project root."""
    for prefix in SCHEMES:
        if url.startswith(prefix):
            rest = url[len(prefix):]
            if not rest or rest.startswith("env:") or "://" in rest \
                    or Path(rest).expanduser().is_absolute():
                return url          # no path: an environment variable, a URL
            return prefix + str(Path(base) / rest)
    return url
