"""The validator: each EPN-TAP / pgSphere rule quarantines the row that breaks it,
with its reason, and accepts the rows that break none."""
import numpy as np
import pandas as pd
import pytest

from vespa_curation import stcs
from vespa_curation.services import get_service
from vespa_curation.validate import validate

NOW = pd.Timestamp("2026-01-01T00:00:00")
SEAM = "Polygon UNKNOWNFrame 355 -10 5 -10 5 0 355 0"


def good_row(uid="ar_1", **kw):
    r = dict(granule_uid=uid, granule_gid="hfc_ar_smart", obs_id="img1",
             dataproduct_type="ci", target_name="Sun", target_class="star",
             spatial_frame_type="body", service_title="hfc1ar", creation_date=NOW,
             modification_date=NOW, release_date=NOW, time_min=2453462.5,
             time_max=2453462.6, c1min=355.0, c1max=5.0, c2min=-10.0, c2max=0.0,
             s_region=SEAM, processing_level=5, qa_source_id=uid)
    r.update(kw)
    return r


CASES = [
    ("epn.required", dict(obs_id=None)),
    ("epn.required", dict(granule_gid="  ")),
    ("epn.service_title", dict(service_title="hfc1t3")),
    ("epn.granule_uid", dict(granule_uid="ar#1")),
    ("epn.vocabulary", dict(dataproduct_type="catalogue")),
    ("epn.vocabulary", dict(target_class="sun")),
    ("epn.processing_level", dict(processing_level=4)),
    ("epn.time_range", dict(time_min=51000.5)),           # an MJD, not a JD
    ("epn.minmax_order", dict(time_max=2453462.4)),
    ("epn.minmax_pair", dict(c2max=np.nan)),
    ("epn.minmax_order", dict(c2min=5.0, c2max=-5.0)),
    ("epn.coord_range", dict(c1max=361.0)),
    ("epn.access", dict(access_url="http://x/a.fits")),
    ("epn.access", dict(access_url="http://x/a.fits", access_format="Image/FITS",
                        access_estsize=3)),
    ("epn.string", dict(target_name="Sun ")),
    ("epn.string", dict(target_region="solar-active-regions##sunspots")),
    ("epn.string", dict(target_name="Sun\x07")),              # a control character
    ("epn.string", dict(target_name="Sun\ufffd")),            # decoded with "replace"
    ("epn.timestamp", dict(creation_date=pd.Timestamp("2027-01-01"))),
    ("epn.orientation", dict(s_region="Polygon UNKNOWNFrame 355 0 5 0 5 -10 355 -10")),
    ("pgsphere.self_intersection", dict(s_region="Polygon UNKNOWNFrame 0 0 10 10 10 0 0 10")),
    ("pgsphere.vertices", dict(s_region="Polygon UNKNOWNFrame 1 1 2 2")),
    ("pgsphere.too_large", dict(s_region="Polygon UNKNOWNFrame 10 0 100 0 190 0 280 5")),
    ("stcs.parse", dict(s_region="Circle UNKNOWNFrame 1 1 2")),
]


@pytest.mark.parametrize("rule,change", CASES, ids=[f"{r}-{i}" for i, (r, _) in
                                                     enumerate(CASES)])
def test_rule_quarantines_with_reason(rule, change):
    rows = pd.DataFrame([good_row("ok_1"), good_row("bad_1", **change)])
    accepted, q = validate(rows, get_service("hfc1ar"))
    assert list(accepted["granule_uid"]) == ["ok_1"]
    assert rule in set(q["rule"]), q.to_string()
    line = q[q["rule"] == rule].iloc[0]
    assert line["source_id"] == "bad_1" and line["reason"]


def test_good_rows_pass_and_seam_is_legal():
    rows = pd.DataFrame([good_row("a"), good_row("b", c1min=10.0, c1max=20.0,
                         s_region="Polygon UNKNOWNFrame 10 0 20 0 20 5 10 5")])
    accepted, q = validate(rows, get_service("hfc1ar"))
    assert len(accepted) == 2 and q.empty


def test_duplicate_uids_both_quarantined():
    rows = pd.DataFrame([good_row("a"), good_row("a")])
    accepted, q = validate(rows, get_service("hfc1ar"))
    assert accepted.empty and (q["rule"] == "epn.granule_uid").sum() == 2


def test_too_many_vertices():
    t = np.linspace(0, 2 * np.pi, 1100, endpoint=False)
    lon, lat = 100 + 5 * np.cos(t), 5 * np.sin(t)
    rows = pd.DataFrame([good_row("big", s_region=stcs.format_polygon(lon, lat),
                                  c1min=95.0, c1max=105.0, c2min=-5.0, c2max=5.0)])
    _, q = validate(rows, get_service("hfc1ar"))
    assert "pgsphere.vertices" in set(q["rule"])


def test_polar_cap_polygon_is_not_flagged_as_self_crossing():
    r = stcs.check(["Polygon UNKNOWNFrame 0 80 120 80 240 80"])
    assert r == [None]


def test_unwrap_across_seam():
    p = stcs.parse([SEAM, "Polygon UNKNOWNFrame 10 0 20 0 20 5 10 5"])
    assert np.allclose(stcs.unwrap(p), [355, 365, 365, 355, 10, 20, 20, 10])


def test_parse_reads_numbers_between_any_white_space():
    """Numbers separated by two spaces, a tab or a new line are the same polygon as
    with single spaces (two spaces once shifted every later polygon's vertices by
    one: the counts were taken from the spaces); what is no polygon is an error of
    its own text only."""
    texts = ["Polygon UNKNOWNFrame 1  2  3 4 5 6", "Polygon UNKNOWNFrame 10 20 30 40 50 60",
             "Polygon UNKNOWNFrame 1\t2 3 4\n5 6 7 8", None, float("nan"),
             "Circle UNKNOWNFrame 1 1 2", "polygon icrs 1 2 3 4 5 6",
             "  Polygon UNKNOWNFrame  ", "Polygon UNKNOWNFrame 1 2 3",
             "Polygon UNKNOWNFrame 1 2 x 4 5 6", 5]
    p = stcs.parse(texts)
    assert p.parse_error.tolist() == [False, False, False, True, True, True, False, False,
                                      True, True, True]
    assert p.counts.tolist() == [3, 3, 4, 0, 0, 0, 3, 0, 0, 0, 0]
    assert p.polygon(0)[0].tolist() == [1, 3, 5] and p.polygon(0)[1].tolist() == [2, 4, 6]
    assert p.polygon(1)[0].tolist() == [10, 30, 50]
    assert p.polygon(2)[1].tolist() == [2, 4, 6, 8]
    # the one-cast way and the text-by-text way agree on texts written here
    plain = [SEAM, "Polygon UNKNOWNFrame 10 0 20 0 20 5 10 5", None,
             "Polygon UNKNOWNFrame 359.999999 -0.5 0.000001 -0.5 0 1"]
    a, b = stcs.parse(plain), stcs._parse_each(plain)
    for name in ("lon", "lat", "offsets", "parse_error"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


def _same_bits(a, b) -> bool:
    return a.shape == b.shape and np.array_equal(np.asarray(a, float).view(np.int64),
                                                 np.asarray(b, float).view(np.int64))


def test_parse_reads_every_text_as_python_does():
    """The compiled reader gives, bit for bit (negative zero included), the polygons of
    the text-by-text reader, for texts as written here (random numbers of 0 to 15
    digits) and, text by text among them, for every form it leaves to Python: frames of
    any case or none, exponents, 16 digits, a sign +, tabs, two or trailing spaces,
    words that are no number, non-ASCII text, odd counts, other shapes, NULL."""
    rng = np.random.default_rng(5)
    texts = []
    for k in range(3000):
        m = int(rng.integers(0, 12))
        nums = rng.uniform(-90, 360, 2 * m)
        digits = int(rng.integers(0, 10))
        words = [f"{v:.{digits}f}" for v in nums]
        texts.append(f"{rng.choice(['Polygon', 'POLYGON', 'polygon'])} "
                     f"{rng.choice(['UNKNOWNFrame', 'ICRS', 'fk5', 'J2000', 'galactic', 'unknown', 'BODYframe'])}"
                     + "".join(" " + w for w in words))
    odd = ["Polygon 1 2 3 4 5 6", "Polygon UNKNOWNFrame 1e2 2 3 4 5 6",
           "Polygon UNKNOWNFrame 1.234567890123456 2 3 4 5 6",
           "Polygon UNKNOWNFrame 0.12345678901234567 2 3 4 5 6",
           "Polygon UNKNOWNFrame 0.30000000000000004441 2 3 4 5 6",
           "Polygon UNKNOWNFrame +1 2 3 4 5 6", "Polygon UNKNOWNFrame 1\t2 3 4 5 6",
           "Polygon UNKNOWNFrame 1  2 3 4 5 6", "Polygon UNKNOWNFrame 1 2 3 4 5 6 ",
           "Polygon UNKNOWNFrame 1 2 x 4 5 6", "Polygon UNKNOWNFrame 1 2 3 4 5",
           "Polygon UNKNOWNFrame1 2 3 4 5 6 7", "Polygon frame 1 2 3 4 5 6",
           "Polygon icrsx 1 2 3 4 5 6", "Polygon UNKNOWNFrame -0 -0.0 .5 5. -.5 0",
           "Polygon UNKNOWNFrame 1.2.3 2 3 4 5 6", "Polygon UNKNOWNFrame - 2 3 4 5 6",
           "Circle UNKNOWNFrame 1 1 2", "  Polygon UNKNOWNFrame 1 2 3 4 5 6",
           "Polygon UNKNOWNFrame ", "Polygon UNKNOWNFrame", "Polygon", "", None,
           float("nan"), 7, "Polygon UNKNOWNFrame 1 2 3 4 5 6\n"]
    for k, t in enumerate(odd):
        texts.insert(97 * k + 13, t)
    ref = stcs._parse_each(texts)
    for batch in (texts, [t for t in texts if t not in odd],
                  texts + ["Polygon UNKNOWNFrame 1 2 3 4 5 \u00e9"]):
        got, want = stcs.parse(batch), stcs._parse_each(batch)
        assert _same_bits(got.lon, want.lon) and _same_bits(got.lat, want.lat)
        assert np.array_equal(got.offsets, want.offsets)
        assert np.array_equal(got.parse_error, want.parse_error)
    assert ref.parse_error.sum() >= 10 and (ref.counts > 0).sum() > 2500
    p = stcs.parse(["Polygon UNKNOWNFrame -0 -0.0 .5 5. -.5 0"])
    assert p.lon.tolist() == [0.0, 0.5, -0.5] and p.lat.tolist() == [0.0, 5.0, 0.0]
    assert np.signbit(p.lon[0]) and np.signbit(p.lat[0]) and not np.signbit(p.lat[2])


def test_missing_reads_arrow_strings_as_python_would():
    """Blank text is what ``str.isspace`` says (Unicode white space, and the ASCII
    separators \\x1c-\\x1f Python counts), whether the column holds Arrow strings (read
    without making Python strings of them) or Python objects."""
    from vespa_curation.sources import values as V
    texts = ["", " ", "\t\n\r\x0b\x0c", "\x1c", "\x1f", "\x85", "\xa0", "\u3000",
             " \u2028 ", "\u200b", "\x7f", "\x00", "é", "a", " a", "\ta", "!", "~",
             "x y", None, "2005-04-02T00:00:00"] * 3
    want = np.array([v is None or not v.strip() for v in texts])
    arrow = pd.Series(texts, dtype="str")
    assert V.arrow_strings(arrow) is not None           # the Arrow path is taken
    assert (V.missing(arrow) == want).all()
    assert (V.missing(pd.Series(texts, dtype=object)) == want).all()
    assert (V.missing(np.array(texts, dtype=object)) == want).all()


def test_texts_tells_text_null_and_other_values_apart():
    """Columns of text and NULLs take the quick path; the same masks as asking each
    value (a list or a number among texts is 'other')."""
    from vespa_curation import validate as VA
    cases = [pd.Series(["a", None, "b", np.nan, ""], dtype=object),
             pd.Series(["a", ["x", "y"], None, 3, np.str_("z")], dtype=object),
             pd.Series([None, np.nan], dtype=object),
             pd.Series(["é", "b"], dtype="str")]
    for col in cases:
        vals, text, other = VA._texts(col)
        ref = np.array([isinstance(v, str) for v in col.to_numpy(dtype=object)])
        assert text.tolist() == ref.tolist()
        assert other.tolist() == (~ref & ~pd.isna(col.to_numpy(dtype=object))).tolist()
    assert VA._texts(cases[1])[2].tolist() == [False, True, False, True, False]
