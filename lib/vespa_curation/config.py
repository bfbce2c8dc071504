"""The run configuration: typed, documented parameters, checked and resolved once.

Every service accepts the :data:`COMMON` parameters; a service declares more
(``Service.params``) and its defaults (``Service.defaults``: the embedded sample as
``source``, ...). :func:`load_config` merges, in order: the declared defaults,
``parameters/<service>.yaml`` (a site's own defaults, optional), a ``-f`` file and
``-p key=value`` overrides (text, converted by each parameter's declared type, never
parsed as YAML); it checks the result against the schema — an unknown key, a value of
the wrong type or outside the accepted values, a value holding a credential, an empty
or file-naming output folder raise :class:`ParameterError` naming the key and what is
accepted — and returns a frozen :class:`RunConfig` with the paths resolved (import
area, outputs, decisions file).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import yaml

from . import paths
from .area import ImportArea
from .parameter import Param, ParameterError, looks_like_credential
from .services import get_service, service_names
from .sources import SCHEMES, forms
from .sources.schemes import absolute


def _check_source(value: str) -> str | None:
    if not any(value.startswith(s) for s in SCHEMES):
        return f"{value!r} has no known scheme; accepted: {forms()}"
    return None


def _check_url(value: str) -> str | None:
    if not value.startswith(("http://", "https://")):
        return f"{value!r} is not an http(s) URL"
    return None


#: Parameters every service accepts.
COMMON: tuple[Param, ...] = (
    Param("source", str, None, "where to harvest: " + forms(), required=True,
          check=_check_source),
    Param("dachs_inputs", str, "outputs/dachs", "folder receiving the DaCHS import area"),
    Param("outputs", str, "outputs/runs", "folder receiving run folders"),
    Param("server_url", str, "http://localhost:8080",
          "public base URL of the DaCHS server (datalink and TFCat URLs)", check=_check_url),
    Param("tap_url", str, None, "TAP endpoint of the live service, for `vespa-curate "
          "diff` and the QA report's live section (default <server_url>/tap)",
          check=_check_url),
    Param("live_diff", bool, False, "QA: compare the run with the live service "
          "(tap_url) in the report: granules new, changed, retracted, missing"),
    Param("dachs_db", str, None, "optional DSN of DaCHS's PostgreSQL, to read the "
          "incremental mark (e.g. 'dbname=gavo' or a file 'file:PATH' holding it)"),
    Param("decisions", str, None, "curator decisions file "
          "(default parameters/decisions/<service>.csv)"),
    Param("chunk_size", int, 20000, "source records per chunk (bounds memory)",
          check=lambda v: None if v > 0 else "must be positive"),
    Param("export_batch", int, 100000, "rows per part of the export (bounds its memory; "
          "a larger run is written as several data files)",
          check=lambda v: None if v > 0 else "must be positive"),
    Param("workers", int, 2, "worker processes of the map stage, the QA gallery and "
          "the export's data files (1 = in process)",
          check=lambda v: None if v >= 1 else "must be at least 1"),
    Param("dask_scheduler", str, None, "address of a Dask scheduler (tcp://host:port) to "
          "map chunks on a cluster instead of local processes"),
    Param("limit", int, None, "harvest at most this many source records (tests, trials)",
          check=lambda v: None if v > 0 else "must be positive (no value: no limit)"),
    Param("full", bool, False, "ignore the incremental mark and harvest everything"),
    Param("qa_gallery", int, 24, "regions drawn in the QA gallery",
          check=lambda v: None if v >= 0 else "must be >= 0"),
    Param("qa_images", str, None, "folder holding the observations' own image files "
          "(FITS, named as OBSERVATIONS.FILENAME) drawn under the QA contours"),
    Param("tap_check", bool, True, "publish: after dachs imp/val, count the rows and run "
          "one spatial query through the server's TAP endpoint (server_url)"),
    Param("coverage", bool, True, "export: keep the coverage MOCs of the import area "
          "(coverage/smoc.fits of the s_region union, coverage/tmoc.fits of the times)"),
    Param("moc_order", int, 9, "HEALPix order of the spatial coverage MOC (9: cells of "
          "0.11 deg)", check=lambda v: None if 3 <= v <= 16 else "must be 3..16"),
    Param("tmoc_order", int, 35, "order of the time coverage T-MOC (35: cells of 67 s; "
          "each order less doubles them)",
          check=lambda v: None if 10 <= v <= 61 else "must be 10..61"),
    Param("column_stats", bool, False, "publish: `dachs limits` with column statistics "
          "(STILTS 3.4.7's taplint reports their VOSI attributes as schema errors)"),
)
#: Parameters whose value is a path, resolved against the project root.
PATH_PARAMS = ("dachs_inputs", "outputs", "decisions", "qa_images")
#: Path parameters naming a folder the run writes into (never empty, never a file).
FOLDER_PARAMS = ("dachs_inputs", "outputs")


def schema(service) -> dict[str, Param]:
    """All parameters accepted by ``service`` (a Service or its name)."""
    if isinstance(service, str):
        service = _service(service)
    out = {p.name: p for p in COMMON}
    for p in service.params:
        out[p.name] = p
    return out


def _service(name: str):
    if name not in service_names():
        raise ParameterError(f"unknown service {name!r}; accepted: "
                             + ", ".join(service_names()))
    return get_service(name)


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``["key=value", ...]`` → dict of the values as given (text; an empty value is
    None): each is converted by its parameter's declared type (:meth:`Param.coerce`),
    never parsed as YAML, so a path keeps ``#`` and ``yes`` or a date stays text."""
    out = {}
    for item in items or ():
        if "=" not in item:
            raise ParameterError(f"override {item!r} is not of the form key=value")
        key, value = item.split("=", 1)
        out[key.strip()] = value if value != "" else None
    return out


@dataclass(frozen=True)
class RunConfig(Mapping):
    """The checked parameters of one service's run (a read-only mapping), with the
    places they name resolved.

    ``config["chunk_size"]`` reads a parameter; the properties give what is derived
    from them: :attr:`area` (the service's :class:`~vespa_curation.area.ImportArea`),
    :attr:`decisions_path`, :attr:`outputs_dir`, :meth:`run_dir`. Path parameters hold
    absolute paths. :meth:`replace` gives a re-checked copy with other values.
    """

    values: Mapping[str, Any] = field(repr=False)

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)

    def __repr__(self) -> str:
        return f"RunConfig({self.service!r})"

    @property
    def service(self) -> str:
        return self.values["service"]

    @property
    def definition(self):
        """The service's declaration (:class:`~vespa_curation.services.Service`)."""
        return get_service(self.service)

    @property
    def area(self) -> ImportArea:
        """``<dachs_inputs>/<schema>``."""
        return ImportArea(self.values["dachs_inputs"], self.service)

    @property
    def decisions_path(self) -> Path:
        return Path(self.values["decisions"])

    @property
    def outputs_dir(self) -> Path:
        return Path(self.values["outputs"])

    def run_dir(self, stamp: str) -> Path:
        """``<outputs>/<stamp>/<service>`` (not created)."""
        return self.outputs_dir / stamp / self.service

    def replace(self, **changes) -> "RunConfig":
        """A copy with ``changes``, checked like any other parameters."""
        values = {k: v for k, v in self.values.items() if k != "service"}
        values.update(changes)
        return _checked(self.service, values)


def load_config(service: str, file: str | os.PathLike | None = None,
                overrides: Iterable[str] | Mapping[str, Any] | None = None) -> RunConfig:
    """The checked configuration of one service run.

    Parameters
    ----------
    service : str
        Service (= DaCHS schema) name.
    file : path, optional
        A YAML parameters file, on top of the declared defaults and
        ``parameters/<service>.yaml``.
    overrides : list of "key=value" or mapping, optional
        Values that win over everything else.

    Raises
    ------
    ParameterError
        Naming the first unknown key, missing required value or refused value.
    """
    svc = _service(service)
    values: dict[str, Any] = dict(svc.defaults)
    site = paths.PARAMETERS / f"{service}.yaml"
    if site.is_file():
        values.update(_read_yaml(site))
    _source_absolute(values, paths.ROOT)
    user: dict[str, Any] = {}
    if file:
        user.update(_read_yaml(paths.resolve(file, Path.cwd())))
    if overrides:
        user.update(overrides if isinstance(overrides, Mapping)
                    else parse_overrides(overrides))
    # a source the user names (-f, -p) is relative to the working directory
    values.update(_source_absolute(user, Path.cwd()))
    return _checked(service, values)


def _source_absolute(values: dict, base: Path) -> dict:
    """``values`` with a relative ``source`` path made absolute against ``base``."""
    if isinstance(values.get("source"), str):
        values["source"] = absolute(values["source"], base)
    return values


def as_config(params: Mapping[str, Any]) -> RunConfig:
    """``params`` as a RunConfig: itself when it is one, else its values checked."""
    if isinstance(params, RunConfig):
        return params
    values = dict(params)
    return load_config(values.pop("service"), overrides=values)


def _read_yaml(f: Path) -> dict:
    """A parameters file's mapping; ParameterError naming the file and the line of a
    YAML or encoding error (never quoting the line: it may hold anything)."""
    if not f.is_file():
        raise ParameterError(f"parameters file {f} does not exist")
    data = f.read_bytes()
    try:
        loaded = yaml.safe_load(data.decode("utf-8")) or {}
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ParameterError(f"parameters file {f}: not UTF-8 text at line {line}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ParameterError(f"parameters file {f}: not YAML{where} "
                             f"({getattr(exc, 'problem', None) or 'syntax error'})") from None
    if not isinstance(loaded, dict):
        raise ParameterError(f"parameters file {f} is not a mapping of key: value")
    return loaded


def _checked(service: str, values: Mapping[str, Any]) -> RunConfig:
    sch = schema(service)
    _refuse_credentials(values)
    unknown = sorted(set(values) - set(sch) - {"service"})
    if unknown:
        raise ParameterError(
            f"unknown parameter {unknown[0]!r} for service {service}; accepted: "
            + ", ".join(sorted(sch)))
    out = {name: p.coerce(values.get(name, p.default)) for name, p in sch.items()}
    if out["decisions"] is None:
        out["decisions"] = f"parameters/decisions/{service}.csv"
    for name in FOLDER_PARAMS:
        if out[name] is None or not out[name].strip():
            raise ParameterError(f"parameter {name!r} is empty: it names a folder")
    for name in PATH_PARAMS:
        if out[name] is not None:
            out[name] = str(paths.resolve(out[name]))
    for name in FOLDER_PARAMS:
        if Path(out[name]).exists() and not Path(out[name]).is_dir():
            raise ParameterError(f"parameter {name!r}: {out[name]} is a file, not a folder")
    out["service"] = service
    return RunConfig(out)


def _refuse_credentials(values: Mapping[str, Any]) -> None:
    """ParameterError naming (never quoting) a parameter whose value holds a password:
    parameters are written into run logs and executed notebooks."""
    for key, value in values.items():
        if value is not None and looks_like_credential(value):
            raise ParameterError(
                f"parameter {key!r} holds a credential (a password in a connection string "
                "or a URL), and parameters are written into run logs and executed "
                "notebooks: put it in a file named by the parameter (source=odbc:FILE, "
                "source=es:FILE, dachs_db=file:PATH) or in an environment variable "
                "(source=odbc:env:NAME, dachs_db=env:NAME)")


def describe(service: str) -> str:
    """A plain-text table of the parameters of ``service`` (``vespa-curate params``)."""
    svc = _service(service)
    lines = []
    for p in schema(svc).values():
        default = svc.defaults.get(p.name, p.default)
        ch = f" [{', '.join(map(str, p.choices))}]" if p.choices else ""
        lines.append(f"{p.name:16s} {p.type.__name__:5s} default={default!r}{ch}  {p.doc}")
    return "\n".join(lines)
