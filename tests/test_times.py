"""Time conversions (vespa_curation.times)."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from vespa_curation import times as T

ODD = ["2005-04-02T00:00:00", "2005-04-02T00:00:00Z", " 2005-04-02 01:02:03.5 ", None,
       np.nan, "800-01-01T00:00:00", "garbage", dt.datetime(2010, 1, 2, 3, 4, 5),
       "2262-04-12T00:00:00", "1677-09-21T00:00:00", pd.NA, "", 2005, 2005.0, True, 1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_repeated_dates_parsed_once_read_as_each_alone(seed):
    """Parsed once per distinct text (a chunk's DATE_OBS repeat), each value reads as
    it does parsed with all the others: the odd ones (no date, out of range, a
    datetime, numbers whose texts differ though they compare equal) included."""
    rng = np.random.default_rng(seed)
    values = pd.Series([ODD[i] for i in rng.integers(0, len(ODD), 3000)],
                       index=np.arange(3000) + 7, name="DATE_OBS", dtype=object)
    fast, each = T.to_datetime(values), T._to_datetime(values)
    assert fast.dtype == each.dtype == "datetime64[ns]"
    pd.testing.assert_series_equal(fast, each)
    assert fast.isna().sum() > 0 and fast.notna().sum() > 0


def test_zones_mixed_in_repeated_dates_are_refused_as_before():
    values = ["2005-04-02T00:00:00+02:00", "2005-04-02T00:00:00+01:00"] * 100
    with pytest.raises(ValueError, match="Mixed timezones"):
        T._to_datetime(pd.Series(values))
    with pytest.raises(ValueError, match="Mixed timezones"):
        T.to_datetime(values)
    same = ["2005-04-02T00:00:00+02:00"] * 100
    assert (T.to_datetime(same) == pd.Timestamp("2005-04-01T22:00:00")).all()
