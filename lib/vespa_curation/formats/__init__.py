"""File formats, one module each: what the workbench reads from and writes to them.

- :mod:`.cdf` — CDF global attributes and axes (cdflib), and writing small CDFs;
- :mod:`.fits` — FITS headers and small axis columns (astropy.io.fits, memory-mapped);
- :mod:`.tfcat` — TFCat time–frequency catalogues (writing hfc1t3's features, reading
  catalogues of a collection).

Importing this package registers each format's reader in
:data:`.registry.READERS` (``Files(reader="fits")``).
"""
from . import cdf, fits, tfcat  # noqa: F401 — each registers its reader
from .registry import READERS, Reader, register_reader

__all__ = ["READERS", "Reader", "register_reader"]
