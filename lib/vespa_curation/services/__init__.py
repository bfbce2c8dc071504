"""Service definitions: one module per service, each exposing ``SERVICE``."""
from __future__ import annotations

from importlib import import_module

from .base import QUARANTINE_COLUMNS, Service, map_chunk

#: Service (= DaCHS schema) names, in the order `vespa-curate run all` runs them.
SERVICE_NAMES: tuple[str, ...] = ("hfc1ar", "hfc1t3", "bass2000", "nrh", "orfees")
_AVAILABLE: dict[str, Service] = {}


def get_service(name: str) -> Service:
    """The definition of service ``name`` (KeyError naming the accepted names)."""
    if name not in SERVICE_NAMES:
        raise KeyError(f"unknown service {name!r}; accepted: {', '.join(SERVICE_NAMES)}")
    if name not in _AVAILABLE:
        _AVAILABLE[name] = import_module(f".{name}", __name__).SERVICE
    return _AVAILABLE[name]


def available_services() -> list[str]:
    """The services whose definition module exists in this installation."""
    out = []
    for n in SERVICE_NAMES:
        try:
            get_service(n)
        except ModuleNotFoundError:
            continue
        out.append(n)
    return out


__all__ = ["Service", "get_service", "map_chunk", "SERVICE_NAMES", "QUARANTINE_COLUMNS",
           "available_services"]
