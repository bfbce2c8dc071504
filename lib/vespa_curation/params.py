"""Typed, documented run parameters; a bad parameter is refused before any work starts.

Every service accepts the common parameters of DESIGN.md; a service definition may
declare more (``Service.params``). ``parameters/<service>.yaml`` gives the defaults, a
``-f`` file and ``-p key=value`` overrides come on top, and :func:`load_params` checks the
result against the schema: an unknown key, a value of the wrong type or outside the
accepted values raises :class:`ParameterError` naming the key and what is accepted.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import yaml

from . import paths


class ParameterError(ValueError):
    """A parameter is unknown, missing or of a wrong value; the message names it."""


@dataclass(frozen=True)
class Param:
    """One parameter: its name, type, default and documentation."""

    name: str
    type: type
    default: Any = None
    doc: str = ""
    choices: tuple | None = None
    required: bool = False
    check: Callable[[Any], str | None] | None = None  # returns an error text or None

    def coerce(self, value: Any) -> Any:
        if value is None:
            if self.required:
                raise ParameterError(f"parameter {self.name!r} is required: {self.doc}")
            return None
        try:
            if self.type is bool and isinstance(value, str):
                low = value.strip().lower()
                if low not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                value = low in ("true", "1", "yes")
            elif self.type is bool:
                if not isinstance(value, (bool, int)):
                    raise ValueError(value)
                value = bool(value)
            elif self.type is int:
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError(value)
                if isinstance(value, bool):
                    raise ValueError(value)
                value = int(value)
            elif self.type is float:
                value = float(value)
            elif self.type is str:
                if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                    raise ValueError(value)
                value = str(value)
        except (TypeError, ValueError):
            raise ParameterError(
                f"parameter {self.name!r}: {value!r} is not a {self.type.__name__} "
                f"({self.doc})") from None
        if self.choices is not None and value not in self.choices:
            raise ParameterError(
                f"parameter {self.name!r}: {value!r} is not accepted; accepted values: "
                + ", ".join(map(str, self.choices)))
        if self.check is not None:
            err = self.check(value)
            if err:
                raise ParameterError(f"parameter {self.name!r}: {err}")
        return value


def _check_source(value: str) -> str | None:
    from .sources import SCHEMES
    if not any(value.startswith(s) for s in SCHEMES):
        return (f"{value!r} has no known scheme; accepted: sqlite:///PATH, odbc:FILE, "
                "es:FILE, ndjson:FILE")
    return None


def _check_url(value: str) -> str | None:
    if not value.startswith(("http://", "https://")):
        return f"{value!r} is not an http(s) URL"
    return None


#: Parameters every service accepts (DESIGN.md).
COMMON: tuple[Param, ...] = (
    Param("source", str, None, "where to harvest: sqlite:///PATH | odbc:FILE | es:FILE | "
          "ndjson:FILE", required=True, check=_check_source),
    Param("dachs_inputs", str, "outputs/dachs", "folder receiving the DaCHS import area"),
    Param("outputs", str, "outputs/runs", "folder receiving run folders"),
    Param("server_url", str, "http://localhost:8080",
          "public base URL of the DaCHS server (datalink and TFCat URLs)", check=_check_url),
    Param("dachs_db", str, None, "optional DSN of DaCHS's PostgreSQL, to read the "
          "incremental mark (e.g. 'dbname=gavo' or a file 'file:PATH' holding it)"),
    Param("decisions", str, None, "curator decisions file "
          "(default parameters/decisions/<service>.csv)"),
    Param("chunk_size", int, 20000, "source records per chunk (bounds memory)",
          check=lambda v: None if v > 0 else "must be positive"),
    Param("export_batch", int, 100000, "rows per part of the export (bounds its memory; "
          "a larger run is written as several data files)",
          check=lambda v: None if v > 0 else "must be positive"),
    Param("workers", int, 2, "worker processes for the map stage (1 = in process)",
          check=lambda v: None if v >= 1 else "must be at least 1"),
    Param("dask_scheduler", str, None, "address of a Dask scheduler (tcp://host:port) to "
          "map chunks on a cluster instead of local processes"),
    Param("limit", int, None, "harvest at most this many source records (tests, trials)"),
    Param("full", bool, False, "ignore the incremental mark and harvest everything"),
    Param("qa_gallery", int, 24, "regions drawn in the QA gallery",
          check=lambda v: None if v >= 0 else "must be >= 0"),
    Param("qa_images", str, None, "folder holding the observations' own image files "
          "(FITS, named as OBSERVATIONS.FILENAME) drawn under the QA contours"),
)


def schema(service) -> dict[str, Param]:
    """All parameters accepted by ``service`` (a Service or its name)."""
    if isinstance(service, str):
        from .services import get_service
        service = get_service(service)
    out = {p.name: p for p in COMMON}
    for p in getattr(service, "params", ()):
        out[p.name] = p
    return out


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``["key=value", ...]`` → dict; values parsed as YAML scalars."""
    out = {}
    for item in items or ():
        if "=" not in item:
            raise ParameterError(f"override {item!r} is not of the form key=value")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value) if value != "" else None
    return out


def load_params(service: str, file: str | os.PathLike | None = None,
                overrides: Iterable[str] | Mapping[str, Any] | None = None) -> dict:
    """The checked parameters of one service run.

    Parameters
    ----------
    service : str
        Service (= DaCHS schema) name.
    file : path, optional
        A YAML parameters file; default ``parameters/<service>.yaml``. Keys in it replace
        the defaults of ``parameters/<service>.yaml`` when both are given.
    overrides : list of "key=value" or mapping, optional
        Values that win over both files.

    Raises
    ------
    ParameterError
        Naming the first unknown key, missing required value or refused value.
    """
    from .services import get_service, SERVICE_NAMES
    if service not in SERVICE_NAMES:
        raise ParameterError(f"unknown service {service!r}; accepted: "
                             + ", ".join(SERVICE_NAMES))
    svc = get_service(service)
    sch = schema(svc)
    values: dict[str, Any] = {}
    default_file = paths.PARAMETERS / f"{service}.yaml"
    for f in ([default_file] if default_file.is_file() else []) + ([Path(file)] if file else []):
        f = paths.resolve(f, Path.cwd())
        if not f.is_file():
            raise ParameterError(f"parameters file {f} does not exist")
        loaded = yaml.safe_load(f.read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise ParameterError(f"parameters file {f} is not a mapping of key: value")
        values.update(loaded)
    if overrides:
        values.update(overrides if isinstance(overrides, Mapping)
                      else parse_overrides(overrides))
    unknown = sorted(set(values) - set(sch))
    if unknown:
        raise ParameterError(
            f"unknown parameter {unknown[0]!r} for service {service}; accepted: "
            + ", ".join(sorted(sch)))
    out = {}
    for name, p in sch.items():
        out[name] = p.coerce(values.get(name, p.default))
    if out["decisions"] is None:
        out["decisions"] = f"parameters/decisions/{service}.csv"
    out["service"] = service
    return out


def describe(service: str) -> str:
    """A plain-text table of the parameters of ``service`` (for --help and notebooks)."""
    lines = []
    for p in schema(service).values():
        ch = f" [{', '.join(map(str, p.choices))}]" if p.choices else ""
        lines.append(f"{p.name:16s} {p.type.__name__:5s} default={p.default!r}{ch}  {p.doc}")
    return "\n".join(lines)
