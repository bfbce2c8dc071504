"""The 76 real SMART/HFC records of 2005-04-02 (``tests/data/hfc-smart-20050402``, see
its README for their provenance), read with HFC's column names."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

SMART_DIR = Path(__file__).resolve().parent / "data" / "hfc-smart-20050402"

#: SMART's pre-HFC spellings → HFC column names (README of the data folder).
RENAME = dict(ID="ID_AR", FRC_INFO="FRC_INFO_ID", MDI_FILE="OBSERVATIONS_ID",
              CC_PIX_X="CC_X_PIX", CC_PIX_Y="CC_Y_PIX", CC_ARC_X="CC_X_ARCSEC",
              CC_ARC_Y="CC_Y_ARCSEC", CHAIN_CODE="CC", ARC_CAR_LON="FEAT_CARR_LONG_DEG",
              ARC_CAR_LAT="FEAT_CARR_LAT_DEG", AR_NPIX="FEAT_AREA_PIX",
              AR_AREA="FEAT_AREA_DEG2", ARC_ARC_X="FEAT_X_ARCSEC", ARC_ARC_Y="FEAT_Y_ARCSEC")


def read(name: str, **kw) -> pd.DataFrame:
    """One of the ``;``-separated files (its ``#``-prefixed header as column names)."""
    df = pd.read_csv(SMART_DIR / name, sep=";", **kw)
    df.columns = [c.lstrip("#") for c in df.columns]
    return df


def load_smart_records() -> pd.DataFrame:
    """The 76 records joined with their OBSERVATIONS and FRC_INFO, HFC names."""
    res = read("20050402_test_ar_results.csv", dtype={"CHAIN_CODE": str}).rename(
        columns=RENAME)
    obs = read("20050402_test_ar_observation.csv").rename(columns={"ID": "ID_OBSERVATIONS"})
    frc = read("20050402_test_ar_frc.csv")
    rec = res.merge(obs, left_on="OBSERVATIONS_ID", right_on="ID_OBSERVATIONS", how="left",
                    validate="many_to_one")
    rec["CODE"] = frc["NAME_CODE"].iloc[0]
    assert len(rec) == 76
    return rec
