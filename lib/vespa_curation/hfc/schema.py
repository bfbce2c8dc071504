"""The HFC database schema: the five tables the harvests read, as HFC's MySQL dump
declares them, and the SQL joins the hfc1ar and hfc1t3 harvests share.

Tables ACTIVEREGIONS, OBSERVATIONS, OBSERVATORY, FRC_INFO, TYPE_III (column names exact;
any letter case in a real database). OBSERVATIONS.R_SUN is the solar radius in pixels,
CENTER_X/Y the disk centre in pixels, CDELT1/2 arcsec per pixel for images (time and
frequency steps for TYPE_III's dynamic spectra); BR_*0..3 are bounding-rectangle corners.
"""
from __future__ import annotations

import math
import sqlite3
from typing import Mapping

import numpy as np

from ..sources.sql import Join

# Column lists of HFC's MySQL dump (github stain/helio-vo, helio-hfc-database/scripts/sql/
# hfc_create.sql), verbatim: "NAME type, ...".
_HFC_COLUMNS = {
    "FRC_INFO": "ID_FRC_INFO int, INSTITUT varchar, CODE varchar, VERSION varchar, "
    "FEATURE_NAME varchar, ENC_MET varchar, PERSON varchar, CONTACT varchar, REFERENCE varchar",
    "OBSERVATORY": "ID_OBSERVATORY int, OBSERVAT varchar, INSTRUME varchar, TELESCOP varchar, "
    "UNITS varchar, WAVEMIN float, WAVEMAX float, WAVENAME varchar, WAVEUNIT varchar, "
    "SPECTRAL_NAME varchar, OBS_TYPE varchar, COMMENT text",
    "OBSERVATIONS": "ID_OBSERVATIONS int, OBSERVATORY_ID int, DATE_OBS datetime, "
    "DATE_END datetime, JDINT int, JDFRAC double, EXP_TIME float, C_ROTATION int, "
    "BSCALE double, BZERO double, BITPIX int, NAXIS1 int, NAXIS2 int, R_SUN double, "
    "CENTER_X double, CENTER_Y double, CDELT1 double, CDELT2 double, QUALITY varchar, "
    "FILENAME varchar, FILE_FORMAT varchar, COMMENT text, LOC_FILENAME varchar, URL text, "
    "QCLK_URL text, QCLK_FNAME varchar",
    "ACTIVEREGIONS": "ID_AR int, FRC_INFO_ID int, OBSERVATIONS_ID int, OBSERVATIONS_ID_T int, "
    "FEAT_DATE datetime, FEAT_DATE_PREV datetime, FEAT_X_ARCSEC double, FEAT_Y_ARCSEC double, "
    "FEAT_X_PIX int, FEAT_Y_PIX int, FEAT_HG_LONG_DEG float, FEAT_HG_LAT_DEG float, "
    "FEAT_CARR_LONG_DEG float, FEAT_CARR_LAT_DEG float, FEAT_AREA_PIX int, "
    "FEAT_AREA_MM2 float, FEAT_AREA_DEG2 float, BR_X0_ARCSEC double, BR_Y0_ARCSEC double, "
    "BR_X1_ARCSEC double, BR_Y1_ARCSEC double, BR_X2_ARCSEC double, BR_Y2_ARCSEC double, "
    "BR_X3_ARCSEC double, BR_Y3_ARCSEC double, BR_HG_LONG0_DEG double, BR_HG_LAT0_DEG double, "
    "BR_HG_LONG1_DEG double, BR_HG_LAT1_DEG double, BR_HG_LONG2_DEG double, "
    "BR_HG_LAT2_DEG double, BR_HG_LONG3_DEG double, BR_HG_LAT3_DEG double, "
    "BR_CARR_LONG0_DEG double, BR_CARR_LAT0_DEG double, BR_CARR_LONG1_DEG double, "
    "BR_CARR_LAT1_DEG double, BR_CARR_LONG2_DEG double, BR_CARR_LAT2_DEG double, "
    "BR_CARR_LONG3_DEG double, BR_CARR_LAT3_DEG double, BR_X0_PIX double, BR_Y0_PIX double, "
    "BR_X1_PIX int, BR_Y1_PIX int, BR_X2_PIX int, BR_Y2_PIX int, BR_X3_PIX double, "
    "BR_Y3_PIX double, FEAT_MAX_INT float, FEAT_MIN_INT float, FEAT_MEAN_INT float, "
    "FEAT_MEAN2QSUN double, FEAT_MAX_BZ float, FEAT_MIN_BZ float, FEAT_MEAN_BZ float, "
    "FEAT_LENGTH_NL float, FEAT_LENGTH_SG float, FEAT_MAX_GRAD float, FEAT_MEAN_GRAD float, "
    "FEAT_MEDIAN_GRAD float, FEAT_RVAL float, FEAT_WLSG float, CC_X_PIX int, CC_Y_PIX int, "
    "CC_X_ARCSEC double, CC_Y_ARCSEC double, CC text, CC_LENGTH int, SNAPSHOT_FN varchar, "
    "SNAPSHOT_PATH varchar, FEAT_FILENAME varchar, HELIO_AR_NUMBER int, RUN_DATE datetime",
    "TYPE_III": "ID_TYPE_III int, FRC_INFO_ID int, OBSERVATIONS_ID int, CC_X_PIX int, "
    "CC_Y_PIX int, CC_X_UTC double, CC_Y_MHZ float, CC text, CC_LENGTH int, SKE_CC_X_PIX int, "
    "SKE_CC_Y_PIX int, SKE_CC_X_UTC double, SKE_CC_Y_MHZ float, SKE_CC text, "
    "SKE_CC_LENGTH int, BR_X0_PIX int, BR_Y0_PIX int, BR_X1_PIX int, BR_Y1_PIX int, "
    "BR_X2_PIX int, BR_Y2_PIX int, BR_X3_PIX int, BR_Y3_PIX int, BR_X0_UTC double, "
    "BR_Y0_MHZ float, BR_X1_UTC double, BR_Y1_MHZ float, BR_X2_UTC double, BR_Y2_MHZ float, "
    "BR_X3_UTC double, BR_Y3_MHZ float, TIME_START datetime, TIME_END datetime, "
    "FEAT_MAX_INT float, FEAT_MEAN_INT float, FIT_A0 float, FIT_A1 float, DRIFT_START float, "
    "DRIFT_END float, LVL_TRUST int, MULTIPLE int, SNAPSHOT_FN varchar, SNAPSHOT_PATH varchar, "
    "FEAT_FILENAME varchar, HELIO_T3_NUMBER int, RUN_DATE datetime",
}

#: HFC tables → [(column, MySQL type)], names and types of hfc_create.sql.
HFC_SCHEMA: dict[str, list[tuple[str, str]]] = {
    t: [tuple(c.split()) for c in s.split(", ")] for t, s in _HFC_COLUMNS.items()
}
#: Kind of a record field (:mod:`vespa_curation.sources.values`) of each MySQL type.
_KIND = {"int": "int", "float": "float", "double": "float", "datetime": "date",
         "varchar": "text", "text": "text"}
#: HFC table → column → the kind of value it holds.
HFC_KINDS: dict[str, dict[str, str]] = {
    t: {c: _KIND[ty] for c, ty in cols} for t, cols in HFC_SCHEMA.items()}
#: The tables :func:`observation_joins` joins to a feature table, by their alias there.
JOINED = {"O": "OBSERVATIONS", "Y": "OBSERVATORY", "F": "FRC_INFO"}
_KEYS = {"FRC_INFO": "ID_FRC_INFO", "OBSERVATORY": "ID_OBSERVATORY",
         "OBSERVATIONS": "ID_OBSERVATIONS", "ACTIVEREGIONS": "ID_AR",
         "TYPE_III": "ID_TYPE_III"}
_SQL_TYPE = {"int": "INT", "varchar": "VARCHAR(255)", "datetime": "DATETIME",
             "double": "DOUBLE", "float": "FLOAT", "text": "TEXT"}
_INDEXES = ["CREATE INDEX IX_OBS_DATE ON OBSERVATIONS (DATE_OBS)",
            "CREATE INDEX IX_AR_OBS ON ACTIVEREGIONS (OBSERVATIONS_ID)"]


def create_hfc_tables(con: sqlite3.Connection, tables=("FRC_INFO", "OBSERVATORY",
                                                      "OBSERVATIONS", "ACTIVEREGIONS"),
                      indexes: bool = True):
    """Create HFC tables (exact column names of hfc_create.sql, MySQL type names) in
    ``con``.

    With ``indexes=False`` the secondary indexes (OBSERVATIONS.DATE_OBS,
    ACTIVEREGIONS.OBSERVATIONS_ID) are left for :func:`create_hfc_indexes` (faster bulk
    loads).
    """
    for t in tables:
        cols = ", ".join(
            f"{c} {_SQL_TYPE[ty]}" + (" NOT NULL PRIMARY KEY" if c == _KEYS[t] else "")
            for c, ty in HFC_SCHEMA[t])
        con.execute(f"CREATE TABLE {t} ({cols})")
    if indexes:
        create_hfc_indexes(con, tables)


def create_hfc_indexes(con: sqlite3.Connection, tables=("OBSERVATIONS", "ACTIVEREGIONS")):
    """The secondary indexes a harvest uses, on those of ``tables`` that have one."""
    for ix in _INDEXES:
        if ix.split(" ON ")[1].split()[0] in tables:
            con.execute(ix)


def insert_rows(con: sqlite3.Connection, table: str, rows: list[dict]):
    """Insert dict rows; every HFC column of ``table`` is written (missing keys → NULL)."""
    cols = [c for c, _ in HFC_SCHEMA[table]]
    unknown = {k for r in rows for k in r} - set(cols)
    if unknown:
        raise KeyError(f"{table}: not HFC columns: {sorted(unknown)}")
    con.executemany(
        f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
        [tuple(_sql_value(r.get(c)) for c in cols) for r in rows])


def _sql_value(v):
    if v is None:
        return None
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return None if not math.isfinite(float(v)) else float(v)
    return v


def observation_joins(base: str) -> tuple[Join, ...]:
    """The feature table ``base`` (its alias) joined to its observation (``O``), the
    observatory (``Y``) and the detection code (``F``), as both HFC harvests read them."""
    return (Join("OBSERVATIONS", "O", f"{base}.OBSERVATIONS_ID = O.ID_OBSERVATIONS"),
            Join("OBSERVATORY", "Y", "O.OBSERVATORY_ID = Y.ID_OBSERVATORY"),
            Join("FRC_INFO", "F", f"{base}.FRC_INFO_ID = F.ID_FRC_INFO"))


def kinds(record_columns: Mapping[str, str], table: str, alias: str) -> dict[str, str]:
    """The kind of each record field of :func:`columns` (``alias.COLUMN``, the feature
    ``table`` under ``alias`` joined by :func:`observation_joins`), from HFC's column
    types: a SQLite copy of HFC stores any value in any column, and a value its type
    cannot hold must refuse its record only."""
    tables = {alias: table, **JOINED}
    out = {}
    for name, expr in record_columns.items():
        a, col = expr.split(".", 1)
        out[name] = HFC_KINDS[tables[a]][col]
    return out


def columns(**tables) -> dict[str, str]:
    """Record field ← ``alias.COLUMN`` of HFC columns read under their own names:
    ``columns(A=["ID_AR", ...], O=[...])``."""
    return {c: f"{alias}.{c}" for alias, cols in tables.items() for c in cols}
