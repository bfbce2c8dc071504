"""EPN-TAP 2.0 column dictionary: the single source of truth for column facts.

Every column of the EPN-TAP 2.0 recommendation (IVOA REC 2022-08-22) with its type,
unit, UCD, whether a value is required, and its vocabulary where the standard gives one.
The validator, the VOTable writer and the DaCHS RD writer all read these facts from
here; nothing else in the project writes a column's unit or type.

The table itself is ``data/epntap2_columns.tsv`` (a copy of the project's reference
list of the standard's columns); vocabularies and frame-dependent units are below.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources
from typing import Callable, Mapping

import numpy as np
import pandas as pd

#: Enumerated vocabularies of EPN-TAP 2.0 (§2 of the REC).
VOCABULARIES: dict[str, frozenset[str]] = {
    "dataproduct_type": frozenset(
        "im ma sp ds sc pr pf vo mo cu ts ca ci sv ev".split()),
    "target_class": frozenset(
        "asteroid dwarf_planet planet satellite comet exoplanet interplanetary_medium "
        "sample sky spacecraft spacejunk star calibration".split()),
    "spatial_frame_type": frozenset(
        "celestial body cartesian spherical cylindrical none".split()),
    "time_scale": frozenset("TAI TT UT UTC GPS TCG TCB TDB UNKNOWN".split()),
    "messenger": frozenset(
        "Photon Radio Millimeter Infrared Optical UV EUV X-ray Gamma-ray Neutrino".split()),
}
#: Columns whose value is a ``#``-separated list, each element checked against the
#: vocabulary (dataproduct_type and target_class may be hash lists).
HASH_LIST_VOCABULARIES = frozenset({"dataproduct_type", "target_class", "messenger"})
#: CODMAC processing levels allowed (4 is unused by EPN-TAP).
PROCESSING_LEVELS = frozenset({1, 2, 3, 5, 6})
#: Plausible Julian Dates for time_min / time_max.
JD_PLAUSIBLE = (2086000.0, 2817000.0)

#: Units of the frame-dependent coordinate columns ("see atn-1" in the REC).
FRAME_UNITS: dict[str, dict[str, str]] = {
    "body": {"c1": "deg", "c2": "deg", "c3": "km"},
    "celestial": {"c1": "deg", "c2": "deg", "c3": "AU"},
    "spherical": {"c1": "deg", "c2": "deg", "c3": "km"},
    "cylindrical": {"c1": "km", "c2": "deg", "c3": "km"},
    "cartesian": {"c1": "km", "c2": "km", "c3": "km"},
    "none": {"c1": "", "c2": "", "c3": ""},
}
#: UCDs of the frame-dependent coordinate columns, per frame (REC table 2).
FRAME_UCDS: dict[str, dict[str, str]] = {
    "body": {"c1": "pos.bodyrc.lon", "c2": "pos.bodyrc.lat", "c3": "pos.bodyrc.alt"},
    "celestial": {"c1": "pos.eq.ra", "c2": "pos.eq.dec", "c3": "pos.distance"},
    "spherical": {"c1": "pos.spherical.r", "c2": "pos.spherical.colat",
                  "c3": "pos.spherical.azi"},
    "cylindrical": {"c1": "pos.cylindrical.r", "c2": "pos.cylindrical.azi",
                    "c3": "pos.cylindrical.z"},
    "cartesian": {"c1": "pos.cartesian.x", "c2": "pos.cartesian.y",
                  "c3": "pos.cartesian.z"},
    "none": {"c1": "", "c2": "", "c3": ""},
}
#: Min/max column pairs (both NULL or both set; min <= max except c1 in body frames).
MINMAX_PAIRS: tuple[tuple[str, str], ...] = ()  # filled below from the column list


@dataclass(frozen=True)
class Column:
    """One EPN-TAP 2.0 column."""

    name: str
    section: str            # mandatory | optional | extension
    type: str               # Text | Integer | Float | Double | Timestamp
    unit: str               # "" when dimensionless or frame dependent
    ucd: str
    value_required: bool
    description: str

    @property
    def mandatory(self) -> bool:
        """True when the column must exist in every epn_core table."""
        return self.section == "mandatory"

    @property
    def frame_dependent(self) -> bool:
        return self.unit.startswith("see ") or self.ucd.startswith("see ")

    def unit_for(self, frame: str) -> str:
        """Unit of the column in a given spatial_frame_type."""
        if self.name in ("s_region", "coverage"):
            return ""
        if self.frame_dependent:
            axis = self.name[:2]
            if axis in ("c1", "c2", "c3"):
                return FRAME_UNITS[frame][axis]
            return ""
        return self.unit

    def ucd_for(self, frame: str) -> str:
        """UCD of the column in a given spatial_frame_type."""
        if not self.ucd.startswith("see ") and self.ucd:
            return self.ucd
        axis = self.name[:2]
        if axis in ("c1", "c2", "c3"):
            base = FRAME_UCDS[frame][axis]
            if not base:
                return ""
            if self.name.endswith("min"):
                return base + ";stat.min"
            if self.name.endswith("max"):
                return base + ";stat.max"
            return base
        return ""

    @property
    def vocabulary(self) -> frozenset[str] | None:
        return VOCABULARIES.get(self.name)

    @property
    def kind(self) -> "EpnType":
        """How values of this column are held, cast and written (:data:`TYPES`)."""
        return TYPES[self.type]

    @property
    def votable_datatype(self) -> str:
        """VOTable FIELD datatype (arraysize and xtype from :attr:`votable_extra`)."""
        return self.kind.votable_datatype

    @property
    def votable_extra(self) -> dict[str, str]:
        extra = {}
        if self.kind.votable_datatype == "char":
            extra["arraysize"] = "*"
        if self.type == "Timestamp":
            extra["xtype"] = "timestamp"
        if self.name == "s_region":
            extra["xtype"] = "adql:REGION"
        return extra

    @property
    def pandas_dtype(self) -> str:
        return self.kind.pandas_dtype

    @property
    def dachs_type(self) -> str:
        """DaCHS column type (for extra, non-mixin columns of an RD)."""
        if self.name == "s_region":
            return "spoly"
        return self.kind.dachs_type

    def cast(self, values, strict: bool = False) -> pd.Series:
        """``values`` as this column holds them (see :meth:`EpnType.cast`)."""
        return self.kind.cast(values, strict=strict, name=self.name)


# -- the types of epn_core columns ------------------------------------------------------

class CastError(ValueError):
    """A value cannot be held by its column's type (strict casts); the message names
    the column, the row and the value."""


def _first_bad(bad: np.ndarray, values: pd.Series, name: str, what: str) -> None:
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        # a slice of a larger table (a RangeIndex not from 0) names the table's row
        row = values.index[i] if isinstance(values.index, pd.RangeIndex) else i
        raise CastError(f"column {name}: {values.iloc[i]!r} (row {row}) is not {what}")


def _cast_text(values: pd.Series, strict: bool, name: str) -> pd.Series:
    out = values.astype(object).where(values.notna(), None)
    if pd.api.types.infer_dtype(out, skipna=True) not in ("string", "empty"):
        conv = out.notna().to_numpy()
        out[conv] = [v if isinstance(v, str) else str(v) for v in out[conv]]
    return out


def _cast_integer(values: pd.Series, strict: bool, name: str) -> pd.Series:
    num = pd.to_numeric(values, errors="coerce")
    if strict:
        _first_bad((num.isna() & values.notna()).to_numpy(), values, name, "a number")
        f = num.to_numpy(dtype=float, na_value=np.nan)
        _first_bad(~np.isnan(f) & (f != np.round(f)), values, name, "an integer")
    return num.round().astype("Int64")


def _cast_float(values: pd.Series, strict: bool, name: str) -> pd.Series:
    num = pd.to_numeric(values, errors="coerce")
    if strict:
        _first_bad((num.isna() & values.notna()).to_numpy(), values, name, "a number")
    return num.astype("float64")


def _cast_timestamp(values: pd.Series, strict: bool, name: str) -> pd.Series:
    from .times import to_datetime
    t = to_datetime(values)
    if strict:
        _first_bad((t.isna() & values.notna()).to_numpy(), values, name, "a date-time")
    return t.set_axis(values.index)


@dataclass(frozen=True)
class EpnType:
    """One type of EPN-TAP column: how pandas holds it, how the VOTable writer and DaCHS
    declare it, and how any value is cast to it.

    :meth:`cast` is the one conversion of source values into column values: the harvest
    normalises every chunk with it (``strict=False``: what cannot be held becomes NULL,
    for the validator to judge), the content hash of the incremental export hashes its
    result, and the VOTable writer refuses what it cannot hold (``strict=True``).
    """

    name: str
    pandas_dtype: str
    votable_datatype: str
    dachs_type: str
    _cast: Callable[[pd.Series, bool, str], pd.Series]

    def cast(self, values, strict: bool = False, name: str = "") -> pd.Series:
        """Values as this type holds them: text as ``str`` or None, integers as
        ``Int64``, floats as ``float64`` (NaN for NULL), timestamps as naive UTC
        ``datetime64[ns]``.

        Raises
        ------
        CastError
            With ``strict``, when a non-null value is not of the type (naming ``name``,
            the row and the value).
        """
        s = values if isinstance(values, pd.Series) else pd.Series(values)
        return self._cast(s, strict, name or self.name)


#: The types of the EPN-TAP column table, by the name ``epntap2_columns.tsv`` gives.
TYPES: Mapping[str, EpnType] = {t.name: t for t in (
    EpnType("Text", "object", "char", "text", _cast_text),
    EpnType("Integer", "Int64", "int", "integer", _cast_integer),
    EpnType("Float", "float64", "double", "double precision", _cast_float),
    EpnType("Double", "float64", "double", "double precision", _cast_float),
    EpnType("Timestamp", "datetime64[ns]", "char", "timestamp", _cast_timestamp),
)}


def _load() -> dict[str, Column]:
    text = resources.files("vespa_curation").joinpath(
        "data/epntap2_columns.tsv").read_text(encoding="utf-8")
    rows = csv.DictReader(text.splitlines(), delimiter="\t")
    out: dict[str, Column] = {}
    for r in rows:
        out[r["name"]] = Column(
            name=r["name"], section=r["section"], type=r["type"], unit=r["unit"] or "",
            ucd=r["ucd"] or "", value_required=r["value_required"] == "value_required",
            description=r["description"] or "")
    return out


#: All EPN-TAP 2.0 columns by name, in the standard's order.
COLUMNS: Mapping[str, Column] = _load()
#: Names of the columns every epn_core table must have.
MANDATORY: tuple[str, ...] = tuple(n for n, c in COLUMNS.items() if c.mandatory)
#: Names of the columns whose value is required in every row.
VALUE_REQUIRED: tuple[str, ...] = tuple(
    n for n, c in COLUMNS.items() if c.value_required)
#: Columns provided by DaCHS's ``//epntap2#table-2_0`` mixin without being listed
#: in ``optional_columns`` (the mandatory ones).
MIXIN_COLUMNS = frozenset(MANDATORY)

MINMAX_PAIRS = tuple(
    (n, n[:-3] + "max") for n in COLUMNS
    if n.endswith("min") and n[:-3] + "max" in COLUMNS)
MINMAX_PAIRS += tuple(
    (n, n[:-4] + "_max") for n in COLUMNS
    if n.endswith("_min") and n[:-4] + "_max" in COLUMNS
    and (n, n[:-4] + "_max") not in MINMAX_PAIRS)

#: The access_* columns that go together.
ACCESS_GROUP = ("access_url", "access_format", "access_estsize")


def column(name: str) -> Column:
    """The column called ``name``; KeyError naming it when it is not EPN-TAP 2.0."""
    try:
        return COLUMNS[name]
    except KeyError:
        raise KeyError(f"{name!r} is not an EPN-TAP 2.0 column") from None


def optional_columns(names) -> list[str]:
    """The non-mandatory EPN-TAP columns among ``names`` (for the mixin parameter)."""
    return [n for n in COLUMNS if n in set(names) and not COLUMNS[n].mandatory]


def ordered(names, columns: Mapping[str, Column] | None = None) -> list[str]:
    """``names`` restricted to the columns of ``columns`` (default: EPN-TAP's), in their
    order."""
    s = set(names)
    return [n for n in (columns if columns is not None else COLUMNS) if n in s]


def with_extra(extra=()) -> Mapping[str, Column]:
    """EPN-TAP's columns followed by a service's extra columns (``Column`` objects of
    ``section="extra"``, documented in the RD); ValueError when one repeats a name."""
    if not extra:
        return COLUMNS
    out = dict(COLUMNS)
    for c in extra:
        if c.name in out:
            raise ValueError(f"extra column {c.name!r} is already a column")
        if c.type not in TYPES:
            raise ValueError(f"extra column {c.name!r}: type {c.type!r} is not one of "
                             + ", ".join(TYPES))
        out[c.name] = c
    return out


def extra_column(name: str, type: str, description: str, unit: str = "",
                 ucd: str = "") -> Column:
    """A service's own column beside EPN-TAP's (EPN-TAP allows them; the RD declares it
    with its description)."""
    return Column(name=name, section="extra", type=type, unit=unit, ucd=ucd,
                  value_required=False, description=description)
