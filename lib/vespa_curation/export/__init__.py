"""Export to the DaCHS import area: typed VOTables, the RD, the manifest, atomically.

``write_import_area(service, rows, ...)`` is the entry point (docs/architecture.md).
"""
from .area import read_manifest, verify_area, write_import_area
from .rd import RDContext, render_rd
from .votable import ExportError, read_votable, write_epn_votable, write_table_votable

__all__ = ["write_import_area", "read_manifest", "verify_area", "render_rd", "RDContext",
           "ExportError", "write_epn_votable", "write_table_votable", "read_votable"]
