"""Service declarations, discovered: every sub-package of this package that defines
``SERVICE`` (a :class:`~.declare.Service`) is a service, and so is every collection
declared in ``parameters/collections/<schema>.yaml`` (:mod:`.from_yaml`); the folder or
file name is the DaCHS schema. Adding a service is adding its folder (see docs/architecture.md, "Adding a
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


def service_names() -> tuple[str, ...]:
    """The services of this installation, in name order (``run all`` runs them so): the
    packages of this folder and the collections of ``parameters/collections/*.yaml``."""
    from . import from_yaml
    declared = from_yaml.names()
    clash = sorted(set(_packages()) & set(declared))
    if clash:
        raise from_yaml.DeclarationError(
            f"parameters/collections/{clash[0]}.yaml: {clash[0]!r} is a service declared "
            "in Python (lib/vespa_curation/services/); rename the declaration")
    return tuple(sorted({*_packages(), *declared}))


@lru_cache(maxsize=1)
def _packages() -> tuple[str, ...]:
    return tuple(m.name for m in pkgutil.iter_modules(__path__) if m.ispkg)


_LOADED: dict[str, Service] = {}


def get_service(name: str) -> Service:
    """The declaration of service ``name``; KeyError naming the accepted names."""
    if name not in service_names():
        raise KeyError(f"unknown service {name!r}; accepted: {', '.join(service_names())}")
    if name not in _LOADED:
        if name in _packages():
            svc = import_module(f".{name}", __name__).SERVICE
            if svc.name != name:
                raise RuntimeError(f"services/{name}/ declares a service named "
                                   f"{svc.name!r}: the folder name is the schema name")
        else:
            from .from_yaml import folder, load_collection
            svc = load_collection(folder() / f"{name}.yaml")
        _LOADED[name] = svc
    return _LOADED[name]


def all_services() -> list[Service]:
    """Every service's declaration."""
    return [get_service(n) for n in service_names()]


__all__ = ["Service", "get_service", "service_names", "all_services", "map_chunk"]
