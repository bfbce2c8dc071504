"""The Aladin view in a real browser: JupyterLab + Debian chromium driven by playwright.

One test, marked ``browser``: a JupyterLab server on 127.0.0.1 opens a copy of
``notebooks/05_aladin.ipynb`` (its demonstration regions), Debian's chromium runs every cell
with every non-loopback request blocked, and the test checks that

- the Aladin view rendered (WebGL canvas, solar HiPS tiles fetched from 127.0.0.1);
- the overlay holds one footprint per region;
- one known vertex is on screen where an independent orthographic (SIN) projection puts
  it, and the polygon outline is drawn there;
- the coverage MOC is a layer of the view;
- a click inside a polygon shows its row (granule_uid, flag, times) under the view — the
  click goes from Aladin through the kernel and back;
- nothing outside the loopback was needed (no CDN, no remote HiPS).

A screenshot is kept in ``tests/artifacts/aladin_view.png`` (git-ignored).
Never downloads a browser: chromium comes from Debian (``scripts/setup_browser.sh``).
"""
from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from vespa_curation.qa.aladin import DEMO_S_REGIONS, stcs_to_aladin

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "tests" / "artifacts"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


def _need_chromium() -> None:
    if CHROMIUM.exists():
        return
    reason = f"{CHROMIUM} is absent (Debian package chromium; scripts/setup_browser.sh installs it)"
    if IN_CI:
        pytest.fail(reason + " — CI installs it, so this is an error")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 serving a copy of the notebook (never the original:
    JupyterLab autosaves outputs)."""
    _need_chromium()
    work = tmp_path_factory.mktemp("lab")
    shutil.copy(ROOT / "notebooks" / "05_aladin.ipynb", work / "05_aladin.ipynb")
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ)
    env.update({
        "JUPYTER_RUNTIME_DIR": str(work / ".runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(work / ".settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(work / ".workspaces"),
        "VESPA_CURATION_ROOT": str(ROOT),
    })
    cmd = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
        "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={work}", "--LabApp.expose_app_in_browser=True",
        "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    # no "news" prompt over the screenshot
    settings = work / ".settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    log = open(work / "jupyterlab.log", "w")
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("JupyterLab did not start:\n" + (work / "jupyterlab.log").read_text()[-3000:])
                time.sleep(0.5)
        yield {"base": base, "token": token, "work": work}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


KERNEL_READY_JS = """() => {
    const w = window.jupyterapp && window.jupyterapp.shell && window.jupyterapp.shell.currentWidget;
    const kernel = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
    return !!(kernel && w.content && w.content.widgets.length > 0
              && kernel.connectionStatus === 'connected' && kernel.status === 'idle');
}"""


#: Sub-observer point of the default context image (SDO/AIA, 2011-02-15): Carrington
#: (22.75, -6.82). Its visible hemisphere ends 90 deg from there: west limb at 112.75,
#: north pole hidden (visible up to latitude 83.2). Each check: view centre, field of
#: view, a probe inside (with data) and one outside (no data). A longitude or latitude
#: flip of the map would swap them.
_L0, _B0 = 22.75, -6.82
EDGE_CHECKS = [
    ((_L0 + 90, _B0), 180, [(_L0 + 86, _B0), (_L0 + 95, _B0)]),
    ((_L0 + 90, 70.0), 120, [(_L0, 78.0), (_L0 + 180, 86.0)]),
]


#: A point inside the first demonstration polygon (Carrington 20..30 x 10..20 deg).
CLICK_AT = (25.0, 15.0)


def _click_inside(page, lon, lat) -> str:
    """Click the view at Carrington (lon, lat) and return the row panel's text once it
    names what was clicked (Aladin's click → the kernel → the panel)."""
    x, y = page.evaluate(f"""() => {{
        const a = globalThis.vespaAladin.views.at(-1);
        const r = a.aladinDiv.getBoundingClientRect();
        const [px, py] = a.world2pix({lon}, {lat});
        return [r.x + px, r.y + py];
    }}""")
    page.mouse.click(x, y)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.vespa-aladin-row')]"
        ".some(e => e.innerText.includes('polygon'))", timeout=60_000)
    return page.evaluate("() => [...document.querySelectorAll('.vespa-aladin-row')]"
                         ".map(e => e.innerText).join(' ')")


def _shoot_widget(page, path):
    """Screenshot of the Aladin view's div (a clip of the page: an element screenshot
    waits for the element to stop moving, which a WebGL view may never do)."""
    rect = page.evaluate("""() => {
        const r = globalThis.vespaAladin.views.at(-1).aladinDiv.getBoundingClientRect();
        return {x: r.x, y: r.y, width: r.width, height: r.height};
    }""")
    page.screenshot(path=str(path), clip=rect)


def _patch(rgb, xy, half=3):
    """Median RGB of a small patch around screen position ``xy`` (grid lines are thin)."""
    x, y = (int(round(v)) for v in xy)
    return np.median(rgb[y - half:y + half + 1, x - half:x + half + 1].reshape(-1, 3), axis=0)


def _expected_screen_xy(lon, lat, lon0, lat0, width, height, fov):
    """Screen position (px, from the canvas's top-left) of a Carrington point in Aladin's
    planetary view: orthographic (SIN) projection centred on (lon0, lat0), longitude
    growing to the right (the body seen from outside), ``fov`` degrees across the width
    mapping the projection's [-1, 1] x range."""
    lam, phi = math.radians(lon - lon0), math.radians(lat)
    phi0 = math.radians(lat0)
    x = math.cos(phi) * math.sin(lam)
    y = math.cos(phi0) * math.sin(phi) - math.sin(phi0) * math.cos(phi) * math.cos(lam)
    half = width / 2 / math.sin(math.radians(min(fov, 180) / 2))
    return width / 2 + x * half, height / 2 - y * half


def test_aladin_view_offline_in_chromium(jupyterlab):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    blocked: list[str] = []
    served: list[str] = []

    def route(r):
        host = urllib.parse.urlsplit(r.request.url).hostname or ""
        if r.request.url.startswith(("data:", "blob:")) or host in LOOPBACK:
            served.append(r.request.url)
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    regions = [stcs_to_aladin(s)[1] for s in DEMO_S_REGIONS]
    url = f"{jupyterlab['base']}/lab/tree/05_aladin.ipynb?token={jupyterlab['token']}"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--enable-unsafe-swiftshader", "--disable-background-networking"],
        )
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1100})
            context.route("**/*", route)
            page = context.new_page()
            console: list[str] = []
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            page.goto(url)
            # wait for the notebook and its kernel, then run every cell with JupyterLab's
            # own command (the app is exposed by --LabApp.expose_app_in_browser)
            page.wait_for_function(KERNEL_READY_JS, timeout=180_000, polling=500)
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            page.wait_for_function(
                "() => globalThis.vespaAladin && globalThis.vespaAladin.views.length > 0",
                timeout=180_000,
            )
            count_js = """() => {
                const a = globalThis.vespaAladin.views.at(-1);
                return a.getOverlays().filter(o => o.overlayItems)
                        .reduce((n, o) => n + o.overlayItems.length, 0);
            }"""
            page.wait_for_function(f"() => ({count_js})() >= {len(regions)}", timeout=120_000)
            # let the HiPS tiles arrive and the view settle
            page.wait_for_function(
                "() => performance.getEntriesByType('resource')"
                ".filter(e => e.name.includes('/Norder')).length > 0",
                timeout=60_000,
            )
            page.wait_for_timeout(4000)
            page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
            page.locator(".aladin-widget").last.scroll_into_view_if_needed()
            page.wait_for_timeout(1500)
            n_footprints = page.evaluate(count_js)
            state = page.evaluate("""() => {
                const a = globalThis.vespaAladin.views.at(-1);
                const div = a.aladinDiv;
                const r = div.getBoundingClientRect();
                const canvas = div.querySelector('canvas');
                return {
                    center: a.getRaDec(), fov: a.getFov(), size: a.getSize(),
                    rect: {x: r.x, y: r.y, w: r.width, h: r.height},
                    body: a.getBaseImageLayer().hipsBody,
                    survey: a.getBaseImageLayer().url,
                    webgl2: !!document.createElement('canvas').getContext('webgl2'),
                };
            }""")
            lon, lat = (float(v) for v in regions[0][0])
            vertex_px = page.evaluate(
                f"() => globalThis.vespaAladin.views.at(-1).world2pix({lon}, {lat})")
            outline = page.evaluate(f"""() => {{
                // colour of the overlay canvas (where Aladin draws footprints) around the vertex
                const a = globalThis.vespaAladin.views.at(-1);
                const c = a.view.catalogCanvas;
                const ctx = c.getContext('2d');
                const r = window.devicePixelRatio || 1;
                const [x, y] = a.world2pix({lon}, {lat});
                const d = ctx.getImageData(Math.round(x * r) - 3, Math.round(y * r) - 3, 7, 7).data;
                let painted = 0;
                for (let i = 3; i < d.length; i += 4) if (d[i] > 0) painted++;
                return painted;
            }}""")
            # HiPS placement: look at both sides of the context image's visible-hemisphere
            # edge (90 deg from its sub-observer point), across the west limb and across
            # the pole: solar data inside, bare background outside.
            edge_px = []
            for k, (view_center, fov, probes) in enumerate(EDGE_CHECKS):
                page.evaluate("() => { const a = globalThis.vespaAladin.views.at(-1); "
                              f"a.gotoRaDec({view_center[0]}, {view_center[1]}); a.setFoV({fov}); }}")
                page.wait_for_timeout(3000)
                edge_px.append(page.evaluate(
                    "() => { const a = globalThis.vespaAladin.views.at(-1); return ["
                    + ", ".join(f"a.world2pix({p[0]}, {p[1]})" for p in probes) + "]; }"))
                _shoot_widget(page, ARTIFACTS / f"aladin_edge{k}.png")
            page.evaluate("() => { const a = globalThis.vespaAladin.views.at(-1); "
                          f"a.gotoRaDec({state['center'][0]}, {state['center'][1]}); "
                          f"a.setFoV({state['fov'][0]}); }}")
            page.wait_for_timeout(2000)
            mocs = page.evaluate("""() => {
                const a = globalThis.vespaAladin.views.at(-1);
                return a.getOverlays().filter(o => o.type === 'moc').map(o => o.name);
            }""")
            clicked = _click_inside(page, *CLICK_AT)
            shot = ARTIFACTS / "aladin_view.png"
            page.screenshot(path=str(shot), full_page=False)
            _shoot_widget(page, ARTIFACTS / "aladin_widget.png")
            (ARTIFACTS / "aladin_view.json").write_text(json.dumps({
                "state": state, "vertex": [lon, lat], "vertex_px": vertex_px,
                "blocked": blocked, "console": console[-50:],
            }, indent=1))
        finally:
            browser.close()

    assert state["webgl2"], "no WebGL2 in headless chromium (needs --enable-unsafe-swiftshader)"
    assert state["body"] == "sun", "the local solar HiPS is not the base layer"
    assert state["survey"].startswith("http://127.0.0.1:"), state["survey"]
    hips_tiles = [u for u in served if "/Norder" in u]
    assert hips_tiles, "no HiPS tile was fetched from 127.0.0.1"
    # one footprint per region
    assert n_footprints == len(regions)
    # the known vertex: where an independent SIN projection puts it, and outlined there
    width, height = state["size"]
    lon0, lat0 = state["center"]
    ex, ey = _expected_screen_xy(lon, lat, lon0, lat0, width, height, state["fov"][0])
    assert vertex_px is not None, "the known vertex is off screen"
    assert abs(vertex_px[0] - ex) < 3 and abs(vertex_px[1] - ey) < 3, (vertex_px, (ex, ey))
    assert outline > 0, "no footprint drawn at the known vertex"
    # the coverage MOC layer, and the row of the polygon clicked
    assert len(mocs) == 1 and mocs[0].startswith("coverage MOC"), mocs
    assert "demo_0" in clicked and "ok" in clicked, clicked
    assert "2011-02-15T12:00:00" in clicked and "demo_1" not in clicked, clicked
    # the solar map sits where sunpy put it: data inside the visible hemisphere's edge,
    # none beyond it
    from PIL import Image

    for k, probes_px in enumerate(edge_px):
        rgb = np.asarray(Image.open(ARTIFACTS / f"aladin_edge{k}.png").convert("RGB")).astype(int)
        inside, outside = (_patch(rgb, xy) for xy in probes_px)
        assert inside[0] - inside[2] > 40, f"edge check {k}: no solar data inside: RGB {inside}"
        assert abs(outside[0] - outside[2]) < 15, f"edge check {k}: solar data beyond the edge: RGB {outside}"
    # nothing outside the loopback was needed: everything above ran with it blocked
    needed = [u for u in blocked if "aladin-lite" in u or "esm.sh" in u or "/Norder" in u
              or u.rstrip("/").endswith("/properties")]
    assert not needed, needed
