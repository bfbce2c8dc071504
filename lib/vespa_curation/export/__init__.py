"""The export stage and what it writes: typed VOTables, the RD, the import area's new
version.

- :func:`run` (:mod:`.stage`) — the stage the ``03_export`` notebook calls;
- :func:`write_run` (:mod:`.writer`) — one run's rows added to an import area;
- :mod:`.votable`, :mod:`.rd` — the files' content.
"""
from .rd import render_rd
from .stage import run
from .votable import ExportError, read_votable, write_epn_votable, write_table_votable
from .writer import RunExport, write_run

__all__ = ["run", "write_run", "RunExport", "render_rd", "ExportError",
           "write_epn_votable", "write_table_votable", "read_votable"]
