"""The embedded nda sample: synthetic NDA products in the archive's layout (small: a
few dozen sweeps each), written with cdflib and astropy — every file says it is
synthetic (``VESPA_*``/``COMMENT``).

- three Routine CDFs (two Jupiter nights, one Sun day), the first with an older version
  beside it (``_V11``: superseded, reported) and its quicklooks (``T_<product>.png``,
  ``<product>.pdf`` under ``ql_routine_jupiter/B-W/YYYY/MM/``); the second night's
  ``VESPA_spectral_range_max`` is ten times its data's (a QA finding, the data win);
- one NewRoutine FITS (Jupiter);
- one truncated CDF (refused, ``source.bad_file``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ...formats.cdf import write_cdf
from ...formats.png import write_grey_png

#: Sweeps per synthetic night, channels (Routine: 400 between 10 and 40 MHz for
#: Jupiter, 10 and 80 MHz for the Sun).
SWEEPS, CHANNELS = 48, 400
NIGHTS = (("jup", "2018-01-01T00:00", "2018-01-01T08:00"),
          ("jup", "2018-01-02T00:00", "2018-01-02T08:00"),
          ("sun", "2018-01-02T08:00", "2018-01-02T16:00"))


def _stamp(t: pd.Timestamp) -> str:
    return t.strftime("%Y%m%d%H%M")


def product(kind: str, target: str, t0: pd.Timestamp, t1: pd.Timestamp,
            lab: str = "srn") -> str:
    """``srn_nda_routine_jup_edr_<start>_<stop>`` (the name without version)."""
    return f"{lab}_nda_{kind}_{target}_edr_{_stamp(t0)}_{_stamp(t1)}"


def _spectrum(rng, n_t: int, n_f: int) -> np.ndarray:
    """A dynamic spectrum (dB): background plus drifting arcs."""
    t = np.linspace(0, 1, n_t)[:, None]
    f = np.linspace(0, 1, n_f)[None, :]
    arcs = 8 * np.exp(-((f - 0.6 + 0.3 * np.sin(6 * t)) / 0.05) ** 2)
    return (20 + arcs + rng.normal(0, 0.5, (n_t, n_f))).astype(np.float32)


def write_routine_cdf(path: Path, rng, target: str, t0, t1, range_max_factor: float = 1.0,
                      sweeps: int = SWEEPS,
                      channels: int = CHANNELS) -> Path:
    """A Routine CDF in the layout of the archive's writer: Epoch (TT2000), Frequency
    (MHz), LL and RR (dB), and the global attributes VESPA_*, Parents, PDS_*."""
    fmax = 40.0 if target == "jup" else 80.0
    freq = np.linspace(10.0, fmax, channels).astype(np.float32)
    times = pd.date_range(t0, t1, periods=sweeps).to_numpy()
    name = "Jupiter" if target == "jup" else "Sun"
    glob = {
        "Logical_source": f"srn_nda_routine_{target}_edr",
        "Parents": f"{'J' if target == 'jup' else 'S'}{t0:%y%m%d}.RT1",
        "PDS_Observation_start_time": f"{t0:%Y-%m-%dT%H:%M:%S}Z",
        "PDS_Observation_stop_time": f"{t1:%Y-%m-%dT%H:%M:%S}Z",
        "PDS_Observation_target": name,
        "VESPA_spectral_range_min": 10.0e6,
        "VESPA_spectral_range_max": fmax * 1e6 * range_max_factor,
        "VESPA_spectral_sampling_step": float(np.diff(freq).mean()) * 1e6,
        "VESPA_time_sampling_step": float((t1 - t0).total_seconds() / max(sweeps - 1, 1)),
        "VESPA_target_class": "planet" if target == "jup" else "star",
        "VESPA_receiver_name": ("RoutineJup>Routine Jupiter" if target == "jup"
                                else "RoutineSun>Routine Sun"),
        "VESPA_instrument_host_name":
            "Nancay Radio Observatory>Station de Radioastronomie de Nancay",
        "VESPA_instrument_name": "NDA>Nancay Decameter Array",
        "VESPA_bib_reference": "2000GMS...119..321L",
        "VESPA_measurement_type": "phys.flux.density;em.radio",
        "Generated_by": "vespa_curation.services.nda.sample (synthetic)",
    }
    return write_cdf(path, glob, [
        ("Epoch", times, "CDF_TIME_TT2000", {"UNITS": "ns"}, True),
        ("Frequency", freq, "CDF_FLOAT", {"UNITS": "MHz"}, False),
        ("LL", _spectrum(rng, sweeps, channels), "CDF_FLOAT", {"UNITS": "dB"}, True),
        ("RR", _spectrum(rng, sweeps, channels), "CDF_FLOAT", {"UNITS": "dB"}, True)])


def write_newroutine_fits(path: Path, rng, target: str, t0, t1, kind: str = "newroutine",
                          sweeps: int = SWEEPS, channels: int = 615) -> Path:
    """A NewRoutine/Mefisto FITS: primary header (TELESCOP, INSTRUME, OBJECT), HDU 1
    column ``frq`` (MHz), HDU 2 one row per sweep, columns ``jd`` and ``DATA``
    (frequency × 2 polarisations)."""
    from astropy.io import fits
    freq = np.linspace(10.01, 39.99 if target == "jup" else 87.99, channels)
    jd = pd.date_range(t0, t1, periods=sweeps).to_julian_date().to_numpy()
    prim = fits.PrimaryHDU()
    prim.header["TELESCOP"] = "NDA"
    prim.header["INSTRUME"] = kind
    prim.header["OBJECT"] = "Jupiter" if target == "jup" else "Sun"
    prim.header["COMMENT"] = "synthetic sample of vespa_curation.services.nda"
    h1 = fits.BinTableHDU.from_columns([fits.Column("frq", "D", unit="MHz", array=freq)])
    data = np.stack([_spectrum(rng, sweeps, channels)] * 2, axis=-1)
    h2 = fits.BinTableHDU.from_columns([
        fits.Column("jd", "D", array=jd),
        fits.Column("DATA", f"{channels * 2}E", dim=f"(2,{channels})", array=data)])
    fits.HDUList([prim, h1, h2]).writeto(path, overwrite=True)
    return path


def build_sample(outdir: Path, seed: int) -> dict[str, Path]:
    """``nda/``: the sample collection (module docstring)."""
    rng = np.random.default_rng(seed + 50)
    root = Path(outdir) / "nda"
    (root / "routine").mkdir(parents=True, exist_ok=True)
    for k, (target, a, b) in enumerate(NIGHTS):
        t0, t1 = pd.Timestamp(a), pd.Timestamp(b)
        name = product("routine", target, t0, t1)
        folder = root / "routine" / f"{t0:%Y}" / f"{t0:%m}"
        folder.mkdir(parents=True, exist_ok=True)
        write_routine_cdf(folder / f"{name}_V12.cdf", rng, target, t0, t1,
                          range_max_factor=10.0 if k == 1 else 1.0)
        if k == 0:
            write_routine_cdf(folder / f"{name}_V11.cdf", rng, target, t0, t1)
            ql = root / "ql_routine_jupiter" / "B-W" / f"{t0:%Y}" / f"{t0:%m}"
            ql.mkdir(parents=True, exist_ok=True)
            write_grey_png(ql / f"T_{name}.png", rng.integers(0, 255, (24, 48)))
            (ql / f"{name}.pdf").write_bytes(b"%PDF-1.4\n% synthetic quicklook\n%%EOF\n")
    t0, t1 = pd.Timestamp("2018-01-03T00:00"), pd.Timestamp("2018-01-03T08:00")
    fdir = root / "newroutine" / "2018" / "01"
    fdir.mkdir(parents=True, exist_ok=True)
    write_newroutine_fits(fdir / f"{product('newroutine', 'jup', t0, t1, 'orn')}_v1.1.fits",
                          rng, "jup", t0, t1)
    good = next((root / "routine" / "2018" / "01").glob("*201801010000*_V12.cdf"))
    t0, t1 = pd.Timestamp("2018-01-04T00:00"), pd.Timestamp("2018-01-04T08:00")
    broken = root / "routine" / "2018" / "01" / f"{product('routine', 'jup', t0, t1)}_V12.cdf"
    broken.write_bytes(good.read_bytes()[:300])     # truncated mid-descriptor
    return {"nda": root}
