"""The real round trip: embedded sample → `vespa-curate run hfc1ar` → `vespa-curate publish`
(dachs imp / limits / val) → DaCHS serving it → pyvo TAP queries and STILTS taplint.

Expectations are computed independently of DaCHS and pgSphere: from the exported VOTable,
with the polygons projected gnomonically around each query circle's centre (great
circles become straight lines there, the circle a circle of radius tan r), and shapely.
"""
from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
from astropy.io.votable import parse_single_table

from conftest import need, remove_area

pytestmark = [pytest.mark.dachs, pytest.mark.slow]

SCHEMA = "hfc1ar"


def vespa_curate() -> str:
    exe = Path(sys.executable).parent / "vespa-curate"
    return str(exe) if exe.is_file() else shutil.which("vespa-curate")


def polygon_lonlat(stcs: str) -> np.ndarray:
    nums = [float(w) for w in stcs.split()[2:]]
    return np.array(nums).reshape(-1, 2)


def gnomonic(lonlat: np.ndarray, lon0: float, lat0: float) -> np.ndarray | None:
    """Gnomonic projection about (lon0, lat0); None when a vertex is ≥ 80° away."""
    lon, lat = np.radians(lonlat[:, 0]), np.radians(lonlat[:, 1])
    l0, p0 = math.radians(lon0), math.radians(lat0)
    cosc = np.sin(p0) * np.sin(lat) + np.cos(p0) * np.cos(lat) * np.cos(lon - l0)
    if (cosc < math.cos(math.radians(80))).any():
        return None
    x = np.cos(lat) * np.sin(lon - l0) / cosc
    y = (np.cos(p0) * np.sin(lat) - np.sin(p0) * np.cos(lat) * np.cos(lon - l0)) / cosc
    return np.column_stack([x, y])


def expected_intersects(exported: pd.DataFrame, lon0: float, lat0: float, r: float
                        ) -> tuple[set[str], float]:
    """granule_uids whose polygon meets the circle, and the smallest distance between a
    polygon's distance to the centre and the circle radius (borderline cases)."""
    hits, margin = set(), np.inf
    rad = math.tan(math.radians(r))
    origin = shapely.Point(0.0, 0.0)
    for uid, s in zip(exported["granule_uid"], exported["s_region"]):
        if not s:
            continue
        xy = gnomonic(polygon_lonlat(s), lon0, lat0)
        if xy is None:
            continue
        poly = shapely.Polygon(xy)
        assert poly.is_valid, uid
        d = poly.distance(origin)
        margin = min(margin, abs(d - rad))
        if d <= rad:
            hits.add(uid)
    return hits, margin


def stilts_null_count(vot: Path, column: str) -> int:
    out = subprocess.run(["stilts", "tpipe", f"in={vot}", f"cmd=select NULL_{column}",
                          "omode=count"], capture_output=True, text=True, check=True)
    return int(re.search(r"rows:\s*(\d+)", out.stdout, re.I).group(1))


@pytest.fixture(scope="module")
def published(dachs, tmp_path_factory):
    """Run the sample through the project's own commands into the session's DaCHS."""
    from vespa_curation.samples import build_samples
    need(shutil.which("stilts") is not None, "STILTS is not installed")
    work = tmp_path_factory.mktemp("e2e")
    samples = build_samples(work / "samples")
    env = dict(dachs.env, VESPA_CURATION_LOG_LEVEL="INFO")
    common = ["-p", f"dachs_inputs={dachs.inputs}", "-p", f"server_url={dachs.url}",
              "-p", f"outputs={work / 'runs'}"]
    remove_area(dachs.inputs, SCHEMA)
    run = subprocess.run([vespa_curate(), "run", SCHEMA, "-p",
                          f"source=sqlite:///{samples['hfc']}", *common],
                         env=env, capture_output=True, text=True, timeout=1800,
                         stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    # start from an empty table: the shared database may hold an earlier session's rows
    dachs.run("drop", f"{SCHEMA}/q", check=False)
    pub = subprocess.run([vespa_curate(), "publish", SCHEMA, *common], env=env,
                         capture_output=True, text=True, timeout=1800,
                         stdin=subprocess.DEVNULL)
    assert pub.returncode == 0, pub.stdout[-3000:] + pub.stderr[-3000:]
    area = dachs.inputs / SCHEMA
    man = json.loads((area / "manifest.json").read_text())
    vots = sorted((area / "data").glob("*.vot"))
    frames = []
    for v in vots:
        t = parse_single_table(str(v)).to_table().to_pandas()
        frames.append(t)
    exported = pd.concat(frames, ignore_index=True)
    export_json = json.loads(next((work / "runs").glob(f"*/{SCHEMA}/export.json"))
                             .read_text())
    return {"dachs": dachs, "area": area, "manifest": man, "exported": exported,
            "vots": vots, "export": export_json, "publish_out": pub.stdout,
            "tap": dachs.tap(), "samples": samples}


def test_row_count_equals_exported(published):
    tap, man = published["tap"], published["manifest"]
    n = int(tap.run_sync(f"SELECT COUNT(*) AS n FROM {SCHEMA}.epn_core").to_table()["n"][0])
    assert n == len(published["exported"]) == man["total_rows"] \
        == published["export"]["exported"] > 50
    assert "OK" in published["publish_out"]     # dachs val said OK


def test_no_polygon_refused_and_nulls_are_nulls(published):
    tap, exported = published["tap"], published["exported"]
    with_region = int(exported["s_region"].astype(bool).sum())
    assert with_region == len(exported)          # the export only holds valid polygons
    q = f"SELECT COUNT(*) AS n FROM {SCHEMA}.epn_core WHERE s_region IS NOT NULL"
    assert int(tap.run_sync(q).to_table()["n"][0]) == with_region
    for col in ("feature_name", "measurement_type"):
        want = sum(stilts_null_count(v, col) for v in published["vots"])
        q = f"SELECT COUNT(*) AS n FROM {SCHEMA}.epn_core WHERE {col} IS NULL"
        assert int(tap.run_sync(q).to_table()["n"][0]) == want, col
    assert want > 0   # measurement_type is NULL in this service


def _circle_cases(exported: pd.DataFrame) -> list[tuple[float, float, float]]:
    seam = exported[exported["c1min"] > exported["c1max"]]
    assert len(seam) >= 2, "the sample must hold regions across Carrington 0/360"
    cases = []
    for _, row in seam.head(2).iterrows():
        cases.append((0.0, float(row["c2min"] + row["c2max"]) / 2, 1.0))
    other = exported[exported["c1min"] <= exported["c1max"]].iloc[len(exported) // 3]
    cases.append((float(other["c1min"] + other["c1max"]) / 2,
                  float(other["c2min"] + other["c2max"]) / 2, 2.0))
    cases.append((180.0, 80.0, 1.0))     # polar cap far from every region
    return cases


def test_intersects_returns_exactly_the_expected_granules(published):
    tap, exported = published["tap"], published["exported"]
    checked_seam = False
    for lon, lat, r in _circle_cases(exported):
        for rr in (r, r * 1.13, r * 0.87):     # avoid circles grazing a polygon
            want, margin = expected_intersects(exported, lon, lat, rr)
            if margin > 1e-4:
                break
        else:
            pytest.fail(f"every radius around ({lon}, {lat}) is borderline")
        q = (f"SELECT granule_uid FROM {SCHEMA}.epn_core "
             f"WHERE 1=INTERSECTS(s_region, CIRCLE({lon:.6f}, {lat:.6f}, {rr:.6f}))")
        got = {str(u) for u in tap.run_sync(q).to_table()["granule_uid"]}
        assert got == want, q
        if lon == 0.0:
            assert want, "the 0/360 case must hit the seam regions"
            seam_hits = exported[exported["granule_uid"].isin(want)]
            checked_seam |= bool((seam_hits["c1min"] > seam_hits["c1max"]).any())
    assert checked_seam


def test_time_range_query(published):
    tap, exported = published["tap"], published["exported"]
    t = np.sort(exported["time_min"].unique())
    assert len(t) >= 3
    t1, t2 = float(t[0] + t[1]) / 2, float(t[-2]) + 1e-6
    want = set(exported.loc[(exported["time_min"] <= t2) & (exported["time_max"] >= t1),
                            "granule_uid"])
    q = (f"SELECT granule_uid FROM {SCHEMA}.epn_core "
         f"WHERE time_min <= {t2:.8f} AND time_max >= {t1:.8f}")
    got = {str(u) for u in tap.run_sync(q).to_table()["granule_uid"]}
    assert got == want and 0 < len(want) < len(exported)


def test_taplint_reports_no_errors(published):
    """STILTS taplint on the TAP service, reporting on the service's table (DaCHS's
    database is shared by the machine: other schemas may be there without their RD)."""
    url = published["dachs"].url + "/tap"
    p = subprocess.run(["stilts", "taplint", f"tapurl={url}", "report=EW",
                        "maxrepeat=3", f"tables={SCHEMA}.epn_core"],
                       capture_output=True, text=True, timeout=900)
    m = re.search(r"Totals:\s*Errors:\s*(\d+)", p.stdout)
    assert m, p.stdout[-2000:] + p.stderr[-2000:]
    errors = [l for l in p.stdout.splitlines() if l.startswith("E-")]
    assert int(m.group(1)) == 0, "\n".join(errors[:30])
