"""Service declarations, discovered: every sub-package of this package that defines
``SERVICE`` (a :class:`~.declare.Service`) is a service; its folder name is its DaCHS
schema. Adding a service is adding its folder (see docs/architecture.md, "Adding a
service"): the CLI, the parameter schema, ``run all``, ``schedule`` and the embedded
samples pick it up.

Infrastructure modules beside them: :mod:`.declare` (the declaration language),
:mod:`.rowmaker` (mapping records to epn_core rows), :mod:`.columns` (computed columns
several services use), :mod:`.checks` (refusing records by rule), :mod:`.presets`.
"""
from __future__ import annotations

import pkgutil
from functools import lru_cache
from importlib import import_module

from .declare import Service
from .rowmaker import map_chunk


@lru_cache(maxsize=1)
def service_names() -> tuple[str, ...]:
    """The services of this installation, in name order (``run all`` runs them so)."""
    return tuple(sorted(m.name for m in pkgutil.iter_modules(__path__) if m.ispkg))


_LOADED: dict[str, Service] = {}


def get_service(name: str) -> Service:
    """The declaration of service ``name``; KeyError naming the accepted names."""
    if name not in service_names():
        raise KeyError(f"unknown service {name!r}; accepted: {', '.join(service_names())}")
    if name not in _LOADED:
        svc = import_module(f".{name}", __name__).SERVICE
        if svc.name != name:
            raise RuntimeError(f"services/{name}/ declares a service named {svc.name!r}: "
                               "the folder name is the schema name")
        _LOADED[name] = svc
    return _LOADED[name]


def all_services() -> list[Service]:
    """Every service's declaration."""
    return [get_service(n) for n in service_names()]


__all__ = ["Service", "get_service", "service_names", "all_services", "map_chunk"]
