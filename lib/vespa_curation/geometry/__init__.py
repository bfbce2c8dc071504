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
from .chaincode import Ragged, check_chains, decode_chains, pixel_outline
from .hfc_ar import COLUMNS, GeometryParts, hfc_ar_geometry, hfc_ar_polygons
from .solar import CONVENTIONS, convention_for, hpc_to_hgc, observers
from .sregion import check_polygon, check_polygons

__all__ = [
    "COLUMNS", "CONVENTIONS", "GeometryParts", "Ragged", "check_chains", "check_polygon",
    "check_polygons", "convention_for", "decode_chains", "hfc_ar_geometry", "hfc_ar_polygons",
    "hpc_to_hgc", "observers", "pixel_outline",
]
