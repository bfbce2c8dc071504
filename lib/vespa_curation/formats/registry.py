"""The readers of file formats, by name (``Files(reader="fits")``): each format module
registers its own with :func:`register_reader`."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

#: Reader of one file format: ``reader(path) -> {FIELD: value}`` (headers, attributes,
#: axis summaries; never a whole data array).
Reader = Callable[[Path], Mapping[str, Any]]
#: Format name → reader.
READERS: dict[str, Reader] = {}


def register_reader(name: str):
    """Decorator registering ``reader(path) -> dict`` for format ``name``."""
    def deco(f: Reader) -> Reader:
        READERS[name] = f
        return f
    return deco
