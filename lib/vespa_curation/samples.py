"""The embedded samples: every service's declared sample builder, run once each.

``vespa-curate sample`` (and ``make demo``) build them under ``outputs/samples``; the
services' default ``source`` parameters point there, so a fresh clone runs every service
with no server. Builders are deterministic (seeded): the same seed gives the same
files. Two services may share a builder (hfc1ar and hfc1t3 read one HFC database): it
runs once.
"""
from __future__ import annotations

from pathlib import Path

from .services import all_services


def build_samples(outdir, seed: int = 2005) -> dict[str, Path]:
    """Build every service's sample under ``outdir``; ``{name: path}`` of what was
    written."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    done = set()
    for svc in all_services():
        if svc.sample is None or svc.sample in done:
            continue
        done.add(svc.sample)
        out.update(svc.sample(outdir, seed))
    return out
