"""The declaration of a service, read the way a DaCHS resource descriptor reads.

A :class:`Service` names its DaCHS schema and resource metadata, the harvester that
reads its source (:mod:`vespa_curation.sources`: ``SqlTable``, ``Documents``,
``Files`` — the grammar), and how a record becomes an epn_core row (the rowmaker):
``fields`` (EPN-TAP column ← record field), ``constants``, and ``computed`` (EPN-TAP
column ← a small named function of the records frame, from
:mod:`vespa_curation.services.columns` or the service's own). Optional steps: ``prepare``
(refuse records by rule and add derived fields, e.g. hfc1ar's geometry), ``links``
(datalink rows), ``files`` (extra files of the import area, e.g. TFCat). A service also
declares its own parameters and their defaults, and the builder of its embedded sample.

:mod:`vespa_curation.services.rowmaker` maps any declared service; nothing else in the
workbench depends on which service it is.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from .. import epncore
from ..parameter import Param
from ..sources.base import Harvester

#: A computed column: ``f(records, params) -> array-like`` aligned with ``records``.
Computed = Callable[[pd.DataFrame, Mapping[str, Any]], Any]
#: A sample builder: ``f(outdir, seed) -> {name: path}`` (deterministic).
SampleBuilder = Callable[[Path, int], Mapping[str, Path]]


@dataclass
class Service:
    """One EPN-TAP service (one DaCHS schema with one ``epn_core`` table).

    Attributes
    ----------
    name : str
        The DaCHS schema (= ``service_title``).
    title, description, creator, subjects, meta
        Resource metadata of the RD (``meta``: extra meta keys → text).
    spatial_frame_type : str
        EPN-TAP frame (``body``, ``none``, ...): units and UCDs of c1..c3.
    source : Harvester
        What reads the source (its ``key`` names each record).
    fields : mapping
        EPN-TAP column ← record field (copied as is).
    constants : mapping
        EPN-TAP column ← value.
    computed : mapping
        EPN-TAP column ← ``f(records, params)``.
    uid : callable
        ``f(records) -> Series`` of granule_uid.
    prepare : callable, optional
        ``f(records, params) -> records``: adds derived fields and sets ``rule``/
        ``reason`` on the records it refuses (:class:`~.checks.Refusals`).
    links : callable, optional
        ``f(rows, params) -> DataFrame`` of datalink rows.
    files : callable, optional
        ``f(rows, params) -> {area-relative path: bytes}`` extra files of the import area.
    qa_fields : sequence of str
        Record fields kept on the rows as ``qa_<lower name>`` (QA, decisions).
    params : sequence of Param
        Parameters of this service beyond the common ones.
    defaults : mapping
        Default values of parameters (common or own), e.g. ``source`` (the embedded
        sample); ``parameters/<service>.yaml`` may set a site's own.
    sample : callable, optional
        Builds the embedded sample ``f(outdir, seed) -> {name: path}``.
    spectrum : callable, optional
        QA of a time–frequency service: ``f(path) -> (times, frequencies in Hz,
        values[time, frequency])``, a sampled dynamic spectrum of a record's file, drawn
        beside the row's published box.
    extra_columns : sequence of Column
        The service's own columns beside EPN-TAP's (:func:`vespa_curation.epncore.
        extra_column`): declared in the RD with their description, filled like any other.
    warm_up : callable, optional
        ``f()`` loading what a process's first chunk of this service would load (compiled
        kernels, ephemeris): run by a stage's kernel before it forks its workers
        (:data:`vespa_curation.runs.WARM_UP`).
    served_files : str, optional
        A folder of the import area (written by ``files``) that the service's datalink
        service serves as static files (e.g. hfc1t3's ``tfcat``).
    """

    name: str
    title: str
    description: str
    creator: str
    subjects: Sequence[str]
    spatial_frame_type: str
    source: Harvester
    fields: Mapping[str, str]
    constants: Mapping[str, Any]
    computed: Mapping[str, Computed]
    uid: Callable[[pd.DataFrame], pd.Series]
    prepare: Callable[[pd.DataFrame, Mapping[str, Any]], pd.DataFrame] | None = None
    links: Callable[..., pd.DataFrame] | None = None
    files: Callable[..., Mapping[str, bytes]] | None = None
    qa_fields: Sequence[str] = ()
    params: Sequence[Param] = ()
    defaults: Mapping[str, Any] = field(default_factory=dict)
    sample: SampleBuilder | None = None
    meta: Mapping[str, str] = field(default_factory=dict)
    spectrum: Callable[[Path], tuple] | None = None
    served_files: str | None = None
    extra_columns: Sequence[epncore.Column] = ()
    warm_up: Callable[[], None] | None = None

    def __post_init__(self):
        facts = self.column_facts   # ValueError names a bad extra column
        for col in list(self.fields) + list(self.constants) + list(self.computed):
            if col not in facts:
                raise KeyError(f"{self.name}: {col!r} is neither an EPN-TAP 2.0 column nor "
                               "one of the service's extra_columns")
        if self.spatial_frame_type not in epncore.VOCABULARIES["spatial_frame_type"]:
            raise ValueError(f"{self.name}: bad spatial_frame_type {self.spatial_frame_type}")
        if not isinstance(self.source, Harvester):
            raise TypeError(f"{self.name}: source must be a declared harvester "
                            "(SqlTable, Documents, Files)")

    @property
    def source_id(self) -> str:
        """The record field naming each source record (messages, retries)."""
        return self.source.key

    @property
    def column_facts(self):
        """The columns this service may fill: EPN-TAP's and its extra ones."""
        return epncore.with_extra(self.extra_columns)

    @property
    def columns(self) -> list[str]:
        """The epn_core columns this service fills, in the standard's order (its extra
        columns last)."""
        names = set(self.fields) | set(self.constants) | set(self.computed)
        names |= set(epncore.MANDATORY)
        return epncore.ordered(names, self.column_facts)

    @property
    def kept_fields(self) -> list[str]:
        """Record fields carried on the rows as ``qa_*``: ``qa_fields`` and the fields
        the next incremental mark is read from."""
        extra = [f for f in self.source.mark.fields() if f not in self.qa_fields]
        return list(self.qa_fields) + extra
