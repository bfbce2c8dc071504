"""Curator widgets: browse flagged regions, accept / reject / override, per granule.

:class:`CuratorBrowser` shows one region at a time (the side-by-side QA figure), with the
decision in force, and appends the curator's decision to the service's decisions file
(:mod:`vespa_curation.decisions`). Nothing here blocks: a notebook executed unattended
builds the browser and moves on.
"""
from __future__ import annotations

import getpass
import io
import json
from pathlib import Path
from typing import Mapping

import pandas as pd

from .. import decisions as D
from . import figures as F
from .report import flag_label, flagged as flagged_rows, gallery_order, records_for_rows


class CuratorBrowser:
    """Browse the flagged regions of a run folder and record decisions.

    Parameters
    ----------
    params : mapping
        Checked run parameters (``service``, ``decisions``).
    run_dir : path
        A run folder holding ``rows.parquet`` (and ``records.parquet`` for figures).
    only_flagged : bool
        Browse only flagged regions (``qa_geom_flag`` not ``ok``, or a quietly odd
        record: ``qa_flags``; all when none is).
    curator : str, optional
        Name recorded with each decision (default: the login name).
    """

    def __init__(self, params: Mapping, run_dir, only_flagged: bool = True,
                 curator: str | None = None):
        from ..config import as_config
        self.params = as_config(params)
        self.run_dir = Path(run_dir)
        self.path = self.params.decisions_path
        rows = pd.read_parquet(self.run_dir / "rows.parquet")
        rows = rows.iloc[gallery_order(rows)].reset_index(drop=True)
        flagged = rows[flagged_rows(rows)]
        self.rows = (flagged if (only_flagged and len(flagged)) else rows).reset_index(drop=True)
        rp = self.run_dir / "records.parquet"
        self.records = pd.read_parquet(rp) if rp.is_file() else None
        self._pngs = self._report_pngs()
        self.curator = curator or _login()
        self.index = 0
        self._ui = None

    # -- data --------------------------------------------------------------------------
    @property
    def uids(self) -> list[str]:
        """The granule_uids browsed, in gallery order."""
        return self.rows["granule_uid"].astype(str).tolist()

    def _report_pngs(self) -> dict:
        """The QA report's PNG of each granule (``report.json``), so a figure already
        drawn is shown rather than drawn again."""
        rep = self.run_dir / "report.json"
        if not rep.is_file():
            return {}
        g = json.loads(rep.read_text(encoding="utf-8")).get("gallery", [])
        return {x["granule_uid"]: self.run_dir / x["png"] for x in g}

    def decision_in_force(self, uid: str) -> dict | None:
        """The latest decision recorded for ``uid`` (None when there is none)."""
        cur = D.latest(D.load_decisions(self.path))
        if uid not in cur.index:
            return None
        return {"granule_uid": uid, **cur.loc[uid].to_dict()}

    def decisions_table(self) -> pd.DataFrame:
        """The decisions in force (one line per granule)."""
        return D.latest(D.load_decisions(self.path)).reset_index()

    def decide(self, granule_uid: str, decision: str, reason: str = "",
               override: str | None = None, curator: str | None = None) -> dict:
        """Append a decision to the decisions file (what the buttons call)."""
        return D.append_decision(self.path, granule_uid, decision,
                                 curator or self.curator, reason, override)

    def send(self, uids=None, to: str | None = None):
        """Send rows to TOPCAT / Aladin Desktop through SAMP (:mod:`.samp`): ``uids``
        (default: the region shown); returns what happened, in one line when no hub
        runs."""
        from .samp import send_rows
        if uids is None:
            uids = self.uids[self.index:self.index + 1]
        elif isinstance(uids, str):
            uids = [uids]
        sel = self.rows[self.rows["granule_uid"].astype(str).isin([str(u) for u in uids])]
        svc = self.params.definition
        return send_rows(sel, frame=svc.spatial_frame_type, to=to,
                         name=f"{svc.name} selection", columns=svc.column_facts)

    def _samp_controls(self):
        """Rows to send (the shown region by default) and the SAMP button."""
        import ipywidgets as W
        pick = W.SelectMultiple(options=self.uids, rows=4, description="rows",
                                layout=W.Layout(width="520px"))
        button = W.Button(description="send to TOPCAT / Aladin (SAMP)")
        status = W.HTML()

        def on_send(_):
            chosen = list(pick.value) or self.uids[self.index:self.index + 1]
            sent = self.send(chosen)
            color = "#060" if sent.ok else "#a00"
            status.value = f"<span style='color:{color}'>{sent.message}</span>"
        button.on_click(on_send)
        return W.VBox([W.HTML("<b>Look at rows in TOPCAT or Aladin Desktop</b> (none "
                              "chosen: the region shown)"), pick,
                       W.HBox([button, status])])

    def figure_png(self, uid: str) -> bytes:
        """The side-by-side figure of ``uid`` as PNG (the report's, else drawn now)."""
        p = self._pngs.get(uid)
        if p is not None and p.is_file():
            return p.read_bytes()
        row = self.rows[self.rows["granule_uid"].astype(str) == uid].iloc[0].to_dict()
        if self.records is None or "CC" not in self.records:
            fig = F.new_figure(6, 1)
            fig.text(0.5, 0.5, f"{uid}: no source record to draw", ha="center")
        else:
            rec = records_for_rows(pd.DataFrame([row]), self.records,
                                   self.params["service"])
            if rec["CC"].isna().all():
                fig = F.new_figure(6, 1)
                fig.text(0.5, 0.5, f"{uid}: no source record to draw", ha="center")
            else:
                fig = F.region_figure(rec.iloc[0].to_dict(), row, F.trace(rec), 0)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90)
        return buf.getvalue()

    # -- user interface ----------------------------------------------------------------
    def widget(self):
        """The ipywidgets user interface (built once)."""
        if self._ui is None:
            self._ui = self._build()
        return self._ui

    def _build(self):
        """Lay out the browser: previous / granule / next, the figure under its flag and
        the decision in force, and the decision form, whose button appends to the
        decisions file and moves to the next region."""
        import ipywidgets as W

        n = len(self.rows)
        title = W.HTML()
        image = W.Image(format="png", layout=W.Layout(max_width="1100px"))
        pick = W.Dropdown(options=self.uids, description="granule", layout=W.Layout(width="420px"))
        prev_b, next_b = W.Button(description="◀ previous"), W.Button(description="next ▶")
        curator = W.Text(value=self.curator, description="curator")
        reason = W.Text(placeholder="why (kept with the decision)", description="reason",
                        layout=W.Layout(width="520px"))
        decision = W.ToggleButtons(options=list(D.DECISIONS), value="accept",
                                   description="decision")
        override = W.Dropdown(options=list(D.OVERRIDES), value="convex_hull",
                              description="outline", disabled=True)
        record = W.Button(description="record decision", button_style="primary")
        status = W.HTML()

        def show(i):
            if not n:
                title.value = "<b>No region in this run.</b>"
                return
            self.index = i % n
            uid = self.uids[self.index]
            if pick.value != uid:
                pick.value = uid
            row = self.rows.iloc[self.index]
            cur = self.decision_in_force(uid)
            now = (f"decision in force: <b>{cur['decision']}</b>"
                   + (f" ({cur['override']})" if cur.get("override") else "")
                   + f" by {cur['curator']} at {cur['time']}" if cur else "no decision yet")
            title.value = (f"<b>{self.index + 1}/{n}</b> &nbsp; {uid} &nbsp; flag "
                           f"<b>{flag_label(row)}</b> &nbsp; — {now}")
            image.value = self.figure_png(uid)

        def on_record(_):
            if not n:
                return
            uid = self.uids[self.index]
            try:
                line = self.decide(uid, decision.value, reason.value,
                                   override.value if decision.value == "override" else None,
                                   curator.value)
            except D.DecisionError as e:
                status.value = f"<span style='color:#a00'>{e}</span>"
                return
            status.value = (f"recorded <b>{line['decision']}</b> for {uid} in "
                            f"<code>{self.path}</code>; the next export honours it")
            reason.value = ""
            show(self.index + 1)

        prev_b.on_click(lambda _: show(self.index - 1))
        next_b.on_click(lambda _: show(self.index + 1))
        pick.observe(lambda ch: show(self.uids.index(ch["new"])) if ch["new"] else None,
                     names="value")
        decision.observe(lambda ch: setattr(override, "disabled", ch["new"] != "override"),
                         names="value")
        record.on_click(on_record)
        show(0)
        return W.VBox([
            W.HTML(f"<p>{n} region(s) to review from <code>{self.run_dir}</code>; decisions "
                   f"go to <code>{self.path}</code>.</p>"),
            W.HBox([prev_b, pick, next_b]), title, image,
            W.HBox([decision, override]), W.HBox([curator, reason]), record, status,
            self._samp_controls()])

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget())


def _login() -> str:
    """The login name, or ``"curator"`` where the system has none (some containers)."""
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 — no login name in some containers
        return "curator"
