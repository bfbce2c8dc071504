"""Hand rows over to TOPCAT or Aladin Desktop through SAMP.

:func:`send_rows` writes the rows as the typed epn_core VOTable the export writes (units,
UCDs, ``s_region`` as STC-S with ``xtype="adql:REGION"``), then sends
``table.load.votable`` with its ``file://`` URL to the applications on the SAMP hub that
load tables (all of them, or those whose name contains ``to``), waiting for each to
answer. The SAMP client is pyvo's (astropy's ``astropy.samp``, deprecated since astropy 8
in its favour; the same code), set not to use the internet (loopback only) and not
callable (it receives nothing, so it opens no port of its own).

Nothing raises for the usual situations: :class:`Sent` carries a one-line message —
"No SAMP hub is running: ..." when neither TOPCAT nor Aladin (each starts a hub) nor
another hub runs.
"""
from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .. import paths

log = logging.getLogger("vespa_curation.qa")

MTYPE = "table.load.votable"
NO_HUB = ("No SAMP hub is running: start TOPCAT or Aladin Desktop (either starts one), "
          "then send again.")
_count = itertools.count(1)


def _samp():
    try:
        import pyvo.samp as samp
    except ImportError:  # pyvo without samp: astropy's (deprecated) copy
        import astropy.samp as samp
    samp.conf.use_internet = False
    return samp


@dataclass
class Sent:
    """What :func:`send_rows` did: ``ok``, a one-line ``message``, who got the table."""

    ok: bool
    message: str
    recipients: list = field(default_factory=list)
    url: str | None = None

    def __str__(self) -> str:
        return self.message

    def _repr_html_(self) -> str:
        import html
        color = "#060" if self.ok else "#a00"
        return f"<span style='color:{color}'>{html.escape(self.message)}</span>"


def write_selection(rows: pd.DataFrame, frame: str, name: str,
                    folder: Path | None = None, columns=None) -> Path:
    """The rows as a typed epn_core VOTable in ``folder`` (default
    ``outputs/cache/samp``); its path."""
    from ..export.votable import write_epn_votable
    folder = Path(folder) if folder is not None else paths.OUTPUTS / "cache" / "samp"
    folder.mkdir(parents=True, exist_ok=True)
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)[:60]
    path = folder / f"{safe}-{time.strftime('%Y%m%dT%H%M%S')}-{next(_count)}.vot"
    return write_epn_votable(rows, path, frame, name=safe, fmt="tabledata",
                             columns=columns)


def send_rows(rows: pd.DataFrame, *, frame: str = "body", name: str = "vespa-curate",
              to: str | None = None, folder: Path | None = None, timeout: float = 20,
              columns=None) -> Sent:
    """Send ``rows`` (epn_core columns; ``qa_*`` left out) to the SAMP applications
    that load tables.

    Parameters
    ----------
    rows : DataFrame
        The selected rows.
    frame : str
        The service's spatial_frame_type (units and UCDs of c1..c3).
    name : str
        The table's name in TOPCAT/Aladin.
    to : str, optional
        Only applications whose SAMP name contains this (``"topcat"``, ``"aladin"``).
    timeout : float
        Seconds each application has to load the table.
    """
    if not len(rows):
        return Sent(False, "Nothing selected: no row sent.")
    path = write_selection(rows, frame, name, folder, columns)
    url = path.resolve().as_uri()
    samp = _samp()
    client = samp.SAMPIntegratedClient(name="vespa-curate", callable=False,
                                       description="VESPA curation workbench",
                                       addr="127.0.0.1")
    try:
        client.connect()
    except samp.SAMPHubError:
        return Sent(False, NO_HUB, url=url)
    try:
        return _send(client, url, name, len(rows), to, timeout)
    finally:
        client.disconnect()


def _send(client, url: str, name: str, n: int, to: str | None, timeout: float) -> Sent:
    """Call each subscribed application (matching ``to``) and wait for its answer."""
    names = {cid: str(client.get_metadata(cid).get("samp.name", cid))
             for cid in client.get_subscribed_clients(MTYPE)}
    if to:
        names = {c: v for c, v in names.items() if to.lower() in v.lower()}
    if not names:
        who = f"named like {to!r} " if to else ""
        return Sent(False, f"The SAMP hub runs, but no application {who}there loads "
                    "tables: start TOPCAT or Aladin Desktop.", url=url)
    message = {"samp.mtype": MTYPE, "samp.params": {"url": url, "name": name,
                                                    "table-id": Path(url).stem}}
    done, failed = [], []
    for cid, label in names.items():
        try:
            r = client.call_and_wait(cid, message, str(int(timeout)))
            ok = str(r.get("samp.status", "")).lower() != "samp.error"
        except Exception as exc:  # noqa: BLE001 — a client that times out or refuses
            log.warning("SAMP: %s did not load the table: %s", label, exc)
            ok = False
        (done if ok else failed).append(label)
    msg = f"Sent {n} row(s) to {', '.join(done)}" if done else "No application loaded the table"
    if failed:
        msg += f"; {', '.join(failed)} did not load it"
    return Sent(bool(done), msg + ".", done, url)


__all__ = ["send_rows", "write_selection", "Sent", "NO_HUB", "MTYPE"]
