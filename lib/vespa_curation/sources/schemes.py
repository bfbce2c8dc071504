"""The registry of source URL schemes: ``scheme -> opener``.

Each source module registers the schemes it opens with :func:`scheme`; the parameter
check, :func:`vespa_curation.sources.open_source` and the documentation read this one
registry.
"""
from __future__ import annotations

from dataclasses import dataclass
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
