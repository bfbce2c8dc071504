"""The DaCHS resource descriptor (``q.rd``) of one exported EPN-TAP service.

The RD declares what the export already computed: the ``//epntap2#table-2_0`` mixin with
the service's frame and the optional columns present, ``granule_uid`` as primary key with
``dupePolicy="dropOld"`` (a re-exported granule replaces its row), an updating data
element reading ``data/*.vot`` through ``voTableGrammar`` with a plain
``<rowmaker idmaps="*"/>`` (the VOTables hold final values), a GiST index on s_region and
a B-tree index on time_min, and the meta ``dachs val`` requires.

Retractions: a last data element reads ``retract/*.txt`` (one granule_uid per line)
and deletes those granules (from epn_core and from the extras' tables keyed by
granule_uid, e.g. the datalinks) when each file is processed.

Extension points (no need to touch this writer):

- ``Service.rd_extras(service, context) -> str | dict``: XML added to the RD. A string goes
  inside ``<resource>`` after the import data elements (a links table, its data
  element, a datalink service, a static TFCat service); a dict may give
  ``{"resource": xml, "table": xml, "meta": xml}`` where ``table`` goes inside the
  epn_core ``<table>`` (e.g. ``_associatedDatalinkService`` meta) and ``meta`` at the top.
  ``context`` is an :class:`RDContext`.
- ``fragments`` argument of :func:`render_rd`: the same dict, for callers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence
from xml.sax.saxutils import escape, quoteattr

from .. import epncore

#: RD fragment slots.
SLOTS = ("meta", "table", "resource")


@dataclass(frozen=True)
class RDContext:
    """What an RD fragment may depend on."""

    schema: str
    frame: str
    columns: Sequence[str]
    server_url: str
    has_links: bool = False
    has_retract: bool = False
    extra_files: Sequence[str] = field(default_factory=tuple)


def _meta(name: str, value) -> str:
    return f'  <meta name="{name}">{escape(str(value))}</meta>\n'


def _merge(into: dict[str, list[str]], extra) -> None:
    if not extra:
        return
    if isinstance(extra, str):
        into["resource"].append(extra)
        return
    if not isinstance(extra, Mapping):
        raise TypeError("an RD fragment is XML text or a dict of slot -> XML text")
    for slot, xml in extra.items():
        if slot not in SLOTS:
            raise ValueError(f"unknown RD fragment slot {slot!r}: one of {SLOTS}")
        if xml:
            into[slot].append(xml)


def render_rd(service, columns: Sequence[str], *, creation_date: str,
              server_url: str = "http://localhost:8080", has_links: bool = False,
              has_retract: bool = True, extra_files: Sequence[str] = (),
              fragments: Mapping[str, str] | str | None = None) -> str:
    """The text of ``q.rd`` for ``service`` exporting ``columns``.

    Parameters
    ----------
    service : vespa_curation.services.Service
        Gives name (= schema), title, description, subjects, creator,
        spatial_frame_type, meta and, optionally, rd_extras.
    columns : sequence of str
        The epn_core columns the export writes (optional ones become the mixin's
        ``optional_columns``).
    creation_date : str
        ISO date-time of the service's first publication (kept between exports).
    fragments : dict or str, optional
        Extra XML (see the module docstring).
    """
    schema = service.name
    frame = service.spatial_frame_type
    for c in columns:
        epncore.column(c)
    optional = epncore.optional_columns(columns)
    ctx = RDContext(schema=schema, frame=frame, columns=tuple(columns),
                    server_url=server_url.rstrip("/"), has_links=has_links,
                    has_retract=has_retract, extra_files=tuple(extra_files))
    parts: dict[str, list[str]] = {s: [] for s in SLOTS}
    extras = getattr(service, "rd_extras", None)
    if extras is not None:
        _merge(parts, extras(service, ctx))
    _merge(parts, fragments)

    subjects = list(getattr(service, "subjects", ()) or ())
    if not subjects:
        raise ValueError(f"service {schema}: at least one subject is needed (dachs val)")
    out = [f'<?xml version="1.0" encoding="utf-8"?>\n'
           f'<!-- Written by vespa_curation.export: edit the service definition, '
           f'not this file. -->\n'
           f'<resource schema="{schema}" resdir=".">\n']
    out.append(_meta("title", service.title))
    out.append(_meta("description", " ".join(str(service.description).split())))
    out.append(_meta("creationDate", creation_date))
    for s in subjects:
        out.append(_meta("subject", s))
    out.append(_meta("creator.name", service.creator))
    out.append(_meta("contentLevel", "Research"))
    out.append(_meta("type", "Catalog"))
    for key, value in dict(getattr(service, "meta", {}) or {}).items():
        out.append(_meta(key, value))
    out += parts["meta"]
    opt = " ".join(optional)
    out.append(
        f'\n  <table id="epn_core" onDisk="True" adql="True" primary="granule_uid"\n'
        f'      dupePolicy="dropOld">\n'
        f'    <mixin spatial_frame_type={quoteattr(frame)}\n'
        f'      optional_columns={quoteattr(opt)}>//epntap2#table-2_0</mixin>\n'
        f'    <index columns="s_region" method="GIST"/>\n'
        f'    <index columns="time_min"/>\n')
    out += parts["table"]
    out.append('  </table>\n\n')
    out.append(IMPORTED_TABLE)
    out.append(
        '  <data id="import" updating="True">\n'
        '    <sources pattern="data/*.vot">\n'
        f'      {IGNORE_IMPORTED}\n'
        '    </sources>\n'
        '    <voTableGrammar/>\n'
        '    <make table="epn_core">\n'
        '      <rowmaker idmaps="*"/>\n'
        f'{REMEMBER_IMPORTED}'
        '    </make>\n'
        '  </data>\n')
    out += ["\n" + p.rstrip() + "\n" for p in parts["resource"]]
    if has_retract:   # after the extras: `dachs imp` runs data elements in RD order,
        # and the retraction also deletes rows the extras' imports (links) read
        out.append(RETRACT_DATA % {"ignore": IGNORE_IMPORTED, "remember": REMEMBER_IMPORTED,
                                   "also": repr(RETRACT_ALSO)})
    out.append('</resource>\n')
    return "".join(out)


#: Tables of an RD's extras keyed by the epn_core granule_uid (by table id): a retraction
#: deletes their rows of the retracted granules too (e.g. the datalinks table).
RETRACT_ALSO = ("links",)

#: Data element deleting the granules listed in retract/*.txt (one uid per line), from
#: epn_core and from the RD's tables in :data:`RETRACT_ALSO`. Written after every other
#: data element, so that on a full rebuild those tables are filled before it runs.
RETRACT_DATA = '''
  <data id="retract" updating="True">
    <sources pattern="retract/*.txt">
      %(ignore)s
    </sources>
    <embeddedGrammar>
      <iterator><code>
        return iter(())
      </code></iterator>
    </embeddedGrammar>
    <make table="epn_core">
      <script type="newSource" lang="python" name="delete retracted granules">
        with open(sourceToken, encoding="utf-8") as f:
          uids = [l.strip() for l in f if l.strip() and not l.startswith("#")]
        if uids:
          rd = table.tableDef.rd
          for qname in [table.tableDef.getQName()] + [
              t.getQName() for t in rd.tables if t.id in %(also)s]:
            table.connection.execute(
              "DELETE FROM "+qname+" WHERE granule_uid = ANY(%%(uids)s)", {"uids": uids})
      </script>
%(remember)s    </make>
  </data>
'''


# -- nightly imports read only new files (DaCHS ignoreSources, fromdb) --------------------
#: Files of the import area already imported: ``<ignoreSources fromdb>`` makes a nightly
#: ``dachs imp`` skip them, and a ``sourceDone`` script records each file in the same
#: transaction as its rows (a killed import records nothing). ``dachs drop`` (a full
#: rebuild) drops this table with epn_core, so the next import reads every file.
IMPORTED_TABLE = '''  <table id="imported_sources" onDisk="True" primary="source">
    <meta name="description">Files of the import area already imported (read by
      ignoreSources: a nightly dachs imp reads only new files).</meta>
    <column name="source" type="text"
      description="inputsDir-relative path of an imported file"/>
    <column name="imported" type="timestamp" description="When it was imported"/>
  </table>

  <data id="bookkeeping" updating="True">
    <make table="imported_sources"/>
  </data>

'''
IGNORE_IMPORTED = '<ignoreSources fromdb="SELECT source FROM \\schema.imported_sources"/>'
REMEMBER_IMPORTED = '''      <script type="sourceDone" lang="python" name="remember imported file">
        table.connection.execute(
          "INSERT INTO "+table.tableDef.rd.schema+".imported_sources"
          " (source, imported) VALUES (%(s)s, now() AT TIME ZONE 'UTC')"
          " ON CONFLICT (source) DO UPDATE SET imported = EXCLUDED.imported",
          {"s": utils.getRelativePath(sourceToken, base.getConfig("inputsDir"),
            liberalChars=True)})
      </script>
'''
