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

Datalinks: a service that declares ``links`` gets a links table, its import and a DaCHS
datalink service (:func:`datalink_fragment`), which also serves the import area's
``Service.served_files`` folder (hfc1t3's TFCat files) with DaCHS's static renderer.

Coverage: the time coverage of the import area (its T-MOC, degraded to a few MJD
intervals, :mod:`vespa_curation.export.coverage`) goes into a static ``<coverage>``
element, which DaCHS publishes as the resource's ``coverage.temporal`` metadata. No
``<updater>``: ``dachs limits`` would find no temporal columns in an epn_core table
(its heuristics look for obscore/SSAP columns or a UCD of exactly ``time.start``;
EPN-TAP's time_min is ``time.start;obs``) and would compute a *sky* MOC from s_region
(``SMOC(order, s_region)``), which for a body frame would declare Carrington
longitudes as ICRS. So no spatial coverage is declared in the RD: DaCHS's is ICRS
only; the body-frame MOC stays in the import area (``coverage/smoc.fits``).

Extension point: the ``fragments`` argument of :func:`render_rd` adds XML to the RD; a
string goes inside ``<resource>`` after the import data elements; a dict may give
``{"resource": xml, "table": xml, "meta": xml}`` where ``table`` goes inside the
epn_core ``<table>`` and ``meta`` at the top.
"""
from __future__ import annotations

from typing import Mapping, Sequence
from xml.sax.saxutils import escape, quoteattr

from .. import epncore

#: RD fragment slots.
SLOTS = ("meta", "table", "resource")


def _extra_column(col) -> str:
    """A column of the service's own beside the mixin's (its facts from the service)."""
    attrs = {"name": col.name, "type": col.dachs_type, "description": col.description}
    if col.unit:
        attrs["unit"] = col.unit
    if col.ucd:
        attrs["ucd"] = col.ucd
    return "    <column " + " ".join(f"{k}={quoteattr(str(v))}" for k, v in attrs.items()) \
        + "/>\n"


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


def coverage_element(temporal: Sequence[Sequence[float]] | None) -> str:
    """The RD's ``<coverage>`` element: one ``<temporal>`` MJD interval per item."""
    if not temporal:
        return ""
    lines = "".join(f"    <temporal>{float(a):.6f} {float(b):.6f}</temporal>\n"
                    for a, b in temporal)
    return f"  <coverage>\n{lines}  </coverage>\n"


def _resource_meta(service, subjects, creation_date: str) -> list[str]:
    """The resource's meta lines (title, description, dates, subjects, creator, ...)."""
    out = [_meta("title", service.title),
           _meta("description", " ".join(str(service.description).split())),
           _meta("creationDate", creation_date)]
    out += [_meta("subject", s) for s in subjects]
    out += [_meta("creator.name", service.creator), _meta("contentLevel", "Research"),
            _meta("type", "Catalog")]
    out += [_meta(k, v) for k, v in dict(getattr(service, "meta", {}) or {}).items()]
    return out


def render_rd(service, columns: Sequence[str], *, creation_date: str,
              has_retract: bool = True,
              fragments: Mapping[str, str] | str | None = None,
              temporal: Sequence[Sequence[float]] | None = None) -> str:
    """The text of ``q.rd`` for ``service`` exporting ``columns``.

    Parameters
    ----------
    service : vespa_curation.services.Service
        Gives name (= schema), title, description, subjects, creator,
        spatial_frame_type, meta, and whether it declares datalinks.
    columns : sequence of str
        The epn_core columns the export writes (optional ones become the mixin's
        ``optional_columns``).
    creation_date : str
        ISO date-time of the service's first publication (kept between exports).
    fragments : dict or str, optional
        Extra XML (see the module docstring).
    temporal : sequence of (float, float), optional
        MJD intervals of the time coverage (the RD's ``<coverage>``).
    """
    schema = service.name
    frame = service.spatial_frame_type
    facts = getattr(service, "column_facts", epncore.COLUMNS)
    for c in columns:
        if c not in facts:
            raise KeyError(f"{c!r} is not a column of {schema}")
    optional = epncore.optional_columns(columns)
    extra = [facts[c] for c in columns if c not in epncore.COLUMNS]
    parts: dict[str, list[str]] = {s: [] for s in SLOTS}
    if service.links is not None:
        _merge(parts, datalink_fragment(schema, static_dir=service.served_files,
                                        title=service.title))
    _merge(parts, fragments)

    subjects = list(getattr(service, "subjects", ()) or ())
    if not subjects:
        raise ValueError(f"service {schema}: at least one subject is needed (dachs val)")
    out = [f'<?xml version="1.0" encoding="utf-8"?>\n'
           f'<!-- Written by vespa_curation.export: edit the service definition, '
           f'not this file. -->\n'
           f'<resource schema="{schema}" resdir=".">\n']
    out += _resource_meta(service, subjects, creation_date)
    out += parts["meta"]
    out.append(coverage_element(temporal))
    opt = " ".join(optional)
    out.append(
        f'\n  <table id="epn_core" onDisk="True" adql="True" primary="granule_uid"\n'
        f'      dupePolicy="dropOld">\n'
        f'    <mixin spatial_frame_type={quoteattr(frame)}\n'
        f'      optional_columns={quoteattr(opt)}>//epntap2#table-2_0</mixin>\n'
        f'    <index columns="s_region" method="GIST"/>\n'
        f'    <index columns="time_min"/>\n')
    out += [_extra_column(c) for c in extra]
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


# -- the datalink service of a service that declares links --------------------------------

#: ``sourceDone`` script of the links import: a granule exported again (its content
#: changed) comes with all its links, so the links an earlier file gave it and this file
#: does not (a changed URL, a link dropped) are deleted — rows of the granules of this
#: file read from other files. Same transaction as the rows (a killed import leaves
#: both). Retractions delete links in :data:`RETRACT_DATA`.
REPLACE_LINKS = '''      <script type="sourceDone" lang="python" name="drop superseded links">
        feeder.flush()   # this file's rows, still in the feeder's batch
        src = utils.getRelativePath(sourceToken, base.getConfig("inputsDir"),
          liberalChars=True)
        table.connection.execute(
          "DELETE FROM "+table.tableDef.getQName()+" WHERE source_file != %(s)s"
          " AND granule_uid IN (SELECT granule_uid FROM "+table.tableDef.getQName()
          +" WHERE source_file = %(s)s)", {"s": src})
      </script>
'''


def datalink_fragment(schema: str, *, static_dir: str | None = None,
                      title: str | None = None) -> dict[str, str]:
    """RD XML (slots of :func:`render_rd`) of a service that declares datalinks: the
    links table, its import from ``links/*.vot`` (a nightly import reads only new files,
    as the epn_core import does) and the datalink service ``dl``.

    Parameters
    ----------
    schema : str
        The service's schema.
    static_dir : str, optional
        A resdir-relative folder the ``dl`` service also serves with DaCHS's static
        renderer (``<server_url>/<schema>/q/dl/static/<file>``), e.g. ``tfcat``.
    """
    ignore, remember = IGNORE_IMPORTED, REMEMBER_IMPORTED
    allowed = "dlget,dlmeta" + (",static" if static_dir else "")
    static = (f'    <property name="staticData">{static_dir}</property>\n'
              if static_dir else "")
    resource = f'''
  <table id="links" onDisk="True" primary="granule_uid,access_url,semantics" dupePolicy="dropOld">
    <meta name="description">Datalinks of the epn_core granules, one row per link;
      served by the dl service (not queryable through TAP).</meta>
    <column name="granule_uid" type="text" description="granule_uid of the epn_core row"/>
    <column name="access_url" type="text" description="URL of the linked resource"/>
    <column name="semantics" type="text" description="IVOA datalink semantics"/>
    <column name="content_type" type="text" description="MIME type of the resource"/>
    <column name="description" type="text" description="What the link gives"/>
    <column name="content_length" type="bigint" unit="byte"
      description="Size of the resource, when known"/>
    <column name="source_file" type="text"
      description="The links file of the import area this row was read from"/>
    <index columns="granule_uid"/>
    <index columns="source_file"/>
  </table>

  <data id="import_links" updating="True">
    <sources pattern="links/*.vot">
      {ignore}
    </sources>
    <voTableGrammar/>
    <make table="links">
      <rowmaker idmaps="*">
        <map key="source_file">\\inputRelativePath</map>
      </rowmaker>
{REPLACE_LINKS}{remember}    </make>
  </data>

  <service id="dl" allowed="{allowed}">
    <meta name="title">{(title or schema)} datalinks</meta>
    <meta name="description">Links (previews, files, data services, documentation)
      of each granule of {schema}.epn_core.</meta>
{static}    <datalinkCore>
      <descriptorGenerator procDef="//datalink#fromtable">
        <bind key="tableName">"{schema}.epn_core"</bind>
        <bind key="idColumn">"granule_uid"</bind>
      </descriptorGenerator>
      <metaMaker semantics="#this">
        <code>
          with base.getTableConn() as conn:
            rows = list(conn.queryToDicts(
              "SELECT access_url, semantics, content_type, description, content_length"
              " FROM {schema}.links WHERE granule_uid=%(uid)s"
              " ORDER BY semantics, access_url", {{"uid": descriptor.pubDID}}))
          for r in rows:
            yield descriptor.makeLink(r["access_url"], semantics=r["semantics"],
              contentType=r["content_type"], description=r["description"],
              contentLength=r["content_length"])
        </code>
      </metaMaker>
    </datalinkCore>
  </service>
'''
    table = '''    <meta name="_associatedDatalinkService">
      <meta name="serviceId">dl</meta>
      <meta name="idColumn">granule_uid</meta>
    </meta>
'''
    return {"resource": resource, "table": table}
