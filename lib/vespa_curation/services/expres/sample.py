"""The embedded expres sample: two synthetic ExPRES runs (Juno and Earth observers, the
Io and Europa sources) with their JSON run configurations, in the archive's layout
``expres/<observer>/<YYYY>/<MM>/``. The Juno run's ``VESPA_spectral_range_*`` carry the
×10 suspected in the real generator (MHz × 10e6): a QA finding, the data win."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ...formats.cdf import write_cdf

#: (observer, source, source properties, spectral-attribute factor).
RUNS = (("juno", "io", "lossc-wid1deg_3kev", 10.0),
        ("earth", "europa", "lossc-wid1deg_1kev", 1.0))
STEPS, CHANNELS = 24, 200


def write_run(folder: Path, rng, observer: str, source: str, props: str, factor: float,
              day: str = "20180913") -> Path:
    """One run: ``expres_<observer>_jupiter_<source>_jrm09_<props>_<day>_v01.cdf`` and
    its ``.json`` configuration."""
    stem = f"expres_{observer}_jupiter_{source}_jrm09_{props}_{day}_v01"
    t0 = pd.Timestamp(day)
    times = pd.date_range(t0, t0 + pd.Timedelta(days=1) - pd.Timedelta(minutes=60),
                          periods=STEPS).to_numpy()
    freq = np.linspace(0.01, 44.0, CHANNELS)
    srp = {"SRP_Source_Name": source.capitalize(), "SRP_Source_Hemisphere": "north",
           "SRP_Source_Model": "loss cone", "SRP_Source_Energy": props.split("_")[-1]}
    attrs = {
        "Logical_source": f"expres_{observer}_jupiter_{source}",
        "PDS_start_time": f"{t0:%Y-%m-%dT%H:%M:%S}Z",
        "PDS_stop_time": f"{pd.Timestamp(times[-1]):%Y-%m-%dT%H:%M:%S}Z",
        "PDS_Observation_target": "Jupiter",
        "VESPA_dataproduct_type": "DS>Dynamic Spectrum",
        "VESPA_target_name": f"Jupiter#{source.capitalize()}",
        "VESPA_target_class": "planet#satellite",
        "VESPA_instrument_host_name": f"{observer.capitalize()}>{observer.capitalize()}",
        "VESPA_instrument_name": "ExPRES>Exoplanetary and Planetary Radio Emission "
                                 "Simulator",
        "VESPA_spectral_range_min": float(freq[0] * 1e6 * factor),
        "VESPA_spectral_range_max": float(freq[-1] * 1e6 * factor),
        "VESPA_time_sampling_step": 3600.0,
        "VESPA_bib_reference": "10.1051/0004-6361/201935161",
        "VESPA_publisher": "PADC",
        "Generated_by": "vespa_curation.services.expres.sample (synthetic)",
        **srp}
    folder.mkdir(parents=True, exist_ok=True)
    theta = rng.normal(60, 5, (STEPS, CHANNELS)).astype(np.float32)
    path = write_cdf(folder / f"{stem}.cdf", attrs, [
        ("Epoch", times, "CDF_TIME_TT2000", {"UNITS": "ns"}, True),
        ("Frequency", freq, "CDF_DOUBLE", {"UNITS": "MHz"}, False),
        ("Theta", theta, "CDF_FLOAT", {"UNITS": "deg"}, True),
        ("Polarization", np.sign(theta - 60).astype(np.float32), "CDF_FLOAT", {}, True)])
    (folder / f"{stem}.json").write_text(json.dumps({
        "SIMU": {"NAME": stem, "OUT": "", "synthetic": True},
        "TIME": {"MIN": 0, "MAX": 1380, "NBR": STEPS},
        "FREQ": {"MIN": 0.01, "MAX": 44.0, "NBR": CHANNELS, "SC": "lin"},
        "OBSERVER": {"TYPE": "pre-defined", "NAME": observer.capitalize()},
        "SOURCE": [{k[len("SRP_Source_"):]: v for k, v in srp.items()}]},
        indent=1, sort_keys=True) + "\n")
    return path


def build_sample(outdir: Path, seed: int) -> dict[str, Path]:
    """``expres/``: the sample collection (module docstring)."""
    rng = np.random.default_rng(seed + 60)
    root = Path(outdir) / "expres"
    for observer, source, props, factor in RUNS:
        write_run(root / observer / "2018" / "09", rng, observer, source, props, factor)
    return {"expres": root}
