"""Geometry of solar features: chain code → pixels → helioprojective → Carrington → s_region.

Entry point for the pipeline: :func:`hfc_ar_polygons` (one chunk of HFC
active-region records → one s_region per record, or a rule + reason).

Pieces for QA figures and other services:

- :func:`~.chaincode.decode_chains` — pixel-centre vertices of many chains
  (flat arrays + offsets, :class:`~.chaincode.Ragged`);
- :func:`~.chaincode.pixel_outline` — the pixel-edge outline of each chain;
- :func:`hfc_ar_geometry` — the frame of :func:`hfc_ar_polygons` plus
  :class:`GeometryParts` (decoded chain, outline, clipped helioprojective
  outline, Carrington vertices, which outline vertices were clipped or are
  diagonal-bridge points);
- :mod:`.solar` — per-code pixel conventions, observers, closed-form HPC → HGC;
- :func:`~.sregion.check_polygon` / :func:`~.sregion.check_polygons` —
  pgSphere's polygon rules checked on the sphere (reusable by the validator).
"""
import importlib

#: Name → the submodule defining it, imported at first use (PEP 562): a kernel that
#: needs ``geometry.moc`` or ``geometry.sregion`` (the export's) does not load numba's
#: kernels and the solar ephemeris with them (≈ 0.5 s).
_WHERE = {
    "Ragged": "chaincode", "check_chains": "chaincode", "decode_chains": "chaincode",
    "pixel_outline": "chaincode",
    "COLUMNS": "hfc_ar", "GeometryParts": "hfc_ar", "hfc_ar_geometry": "hfc_ar",
    "hfc_ar_polygons": "hfc_ar",
    "CONVENTIONS": "solar", "convention_for": "solar", "hpc_to_hgc": "solar",
    "observers": "solar",
    "check_polygon": "sregion", "check_polygons": "sregion",
}


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_WHERE))

__all__ = [
    "COLUMNS", "CONVENTIONS", "GeometryParts", "Ragged", "check_chains", "check_polygon",
    "check_polygons", "convention_for", "decode_chains", "hfc_ar_geometry", "hfc_ar_polygons",
    "hpc_to_hgc", "observers", "pixel_outline",
]
