"""A solar context HiPS built locally, and a loopback HTTP server to show it in Aladin Lite.

Aladin Lite draws HiPS (hierarchical HEALPix tiles), never a plain FITS map, and it looks
up anything that is not an absolute ``http://`` URL on the CDS registry. For an offline
view the workbench therefore

1. reprojects a solar image (by default the SDO/AIA 171 Å image that sunpy ships for its
   own tests) from helioprojective to a Carrington longitude/latitude plate carrée map,
   using the image's own date and observer (:func:`carrington_map`);
2. writes that map as a HiPS whose HEALPix longitude/latitude *are* the Carrington
   longitude/latitude (labelled as a pseudo-equatorial frame, with ``hips_body = sun`` so
   Aladin shows the body from outside, longitudes growing to the right as seen from
   Earth) (:func:`build_solar_hips`);
3. serves the cache folder on ``127.0.0.1`` from a small threaded HTTP server
   (:func:`serve`), so the browser fetches tiles from this machine only.

Such an image is *context only*: it is not the observation a region was detected on.
The HiPS ``properties`` say so (``obs_title``, ``obs_description``) and the Aladin view
labels it (:mod:`vespa_curation.qa.aladin`).
"""
from __future__ import annotations

import functools
import hashlib
import http.server
import os
import shutil
import sys
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import astropy.units as u
from astropy.io import fits
from astropy.utils import iers
from astropy.wcs import WCS, FITSFixedWarning

from vespa_curation import paths

iers.conf.auto_download = False

__all__ = [
    "CONTEXT_IMAGE",
    "HIPS_BODY",
    "SolarHips",
    "LocalServer",
    "default_context_image",
    "carrington_map",
    "build_solar_hips",
    "read_properties",
    "serve",
]

#: ``hips_body`` written in the HiPS properties (Aladin's planetary mode).
HIPS_BODY = "sun"
#: Name of the default context image inside sunpy's test data.
CONTEXT_IMAGE = "aia_171_level1.fits"
#: Bumped when the HiPS layout changes, so stale caches are rebuilt.
_FORMAT_VERSION = "4"


def default_context_image() -> Path:
    """The SDO/AIA 171 Å test image that sunpy ships (``sunpy/data/test``).

    Returns
    -------
    pathlib.Path
        Absolute path of ``aia_171_level1.fits`` (128×128 pixels, 2011-02-15).
    """
    import sunpy.data.test

    path = Path(sunpy.data.test.__file__).parent / CONTEXT_IMAGE
    if not path.is_file():
        raise FileNotFoundError(
            f"sunpy's test image {CONTEXT_IMAGE} is missing from {path.parent}; "
            "pass image=<a helioprojective FITS file> instead"
        )
    return path


def _read_image(image: str | os.PathLike) -> tuple[np.ndarray, fits.Header]:
    """The first 2-D image HDU of a FITS file as floats, and a copy of its header (kept
    after the file is closed); astropy's header-verification warnings are silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fits.verify.VerifyWarning)
        with fits.open(image) as hdul:
            hdu = next((h for h in hdul if h.data is not None and h.data.ndim == 2), None)
            if hdu is None:
                raise ValueError(f"{image}: no 2-D image HDU")
            return np.asarray(hdu.data, dtype=float), hdu.header.copy()


def _observer_keys(header: fits.Header, image) -> dict:
    """``HGLN_OBS, HGLT_OBS, DSUN_OBS`` of ``header`` as floats: the observer's position,
    without which helioprojective pixels cannot be placed in Carrington coordinates.
    A missing keyword raises ValueError naming it."""
    keys = {}
    for key in ("HGLN_OBS", "HGLT_OBS", "DSUN_OBS"):
        if key not in header:
            raise ValueError(
                f"{image}: header has no {key}; the Carrington reprojection needs the "
                "observer position (HGLN_OBS, HGLT_OBS, DSUN_OBS)"
            )
        keys[key] = float(header[key])
    return keys


def carrington_map(
    image: str | os.PathLike | None = None,
    *,
    resolution: u.Quantity = 0.5 * u.deg,
) -> tuple[np.ndarray, fits.Header]:
    """Reproject a helioprojective image onto a Carrington longitude/latitude map.

    Parameters
    ----------
    image : path-like, optional
        FITS file with a helioprojective WCS (``HPLN``/``HPLT``) and observer keywords
        (``DATE-OBS``, ``HGLN_OBS``, ``HGLT_OBS``, ``DSUN_OBS``). Default:
        :func:`default_context_image`.
    resolution : `~astropy.units.Quantity`
        Pixel size of the output map (angle).

    Returns
    -------
    data : numpy.ndarray
        ``log10`` of the image values (clipped at 1), shape ``(180/res, 360/res)``;
        NaN where the Sun was not visible from the observer.
    header : astropy.io.fits.Header
        ``CRLN-CAR``/``CRLT-CAR`` WCS covering longitudes 0–360° and latitudes −90–90°,
        with the image's date and observer (Carrington longitudes of that date).
    """
    import sunpy.coordinates  # noqa: F401  (registers the solar WCS frames)
    from reproject import reproject_interp

    image = Path(image) if image is not None else default_context_image()
    data, header = _read_image(image)
    date = header.get("DATE-OBS") or header.get("DATE_OBS")
    if not date:
        raise ValueError(f"{image}: header has no DATE-OBS")
    observer = _observer_keys(header, image)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs_in = WCS(header)
    if not wcs_in.wcs.ctype[0].startswith("HPLN"):
        raise ValueError(f"{image}: not a helioprojective image (CTYPE1={wcs_in.wcs.ctype[0]})")

    step = resolution.to_value(u.deg)
    nx, ny = int(round(360 / step)), int(round(180 / step))
    out = fits.Header()
    out["NAXIS"] = 2
    out["NAXIS1"], out["NAXIS2"] = nx, ny
    out["CTYPE1"], out["CTYPE2"] = "CRLN-CAR", "CRLT-CAR"
    out["CUNIT1"], out["CUNIT2"] = "deg", "deg"
    out["CDELT1"], out["CDELT2"] = 360 / nx, 180 / ny
    out["CRVAL1"], out["CRVAL2"] = 180.0, 0.0
    out["CRPIX1"], out["CRPIX2"] = (nx + 1) / 2, (ny + 1) / 2
    out["DATE-OBS"] = date
    out.update(observer)
    if "RSUN_REF" in header:
        out["RSUN_REF"] = header["RSUN_REF"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs_out = WCS(out)
    positive = np.where(np.isfinite(data) & (data > 1), data, 1.0)
    # roundtrip_coords (reproject's default) blanks the far side: a Carrington point
    # behind the limb does not come back to itself through the 2-D helioprojective image.
    car, footprint = reproject_interp((np.log10(positive), wcs_in), wcs_out, shape_out=(ny, nx))
    car[footprint == 0] = np.nan
    out["BUNIT"] = "log10(DN)"
    out["COMMENT"] = f"Carrington map of {image.name} (context image)"
    return car.astype(np.float32), out


@dataclass(frozen=True)
class SolarHips:
    """A HiPS built by :func:`build_solar_hips`.

    Attributes
    ----------
    path : pathlib.Path
        The HiPS folder (holds ``properties`` and ``Norder*/``).
    title : str
        Its ``obs_title`` (says it is context only).
    date_obs : str
        Date of the source image.
    center : tuple of float
        Carrington (longitude, latitude) in degrees of the sub-observer point.
    source : str
        What the image is (file, instrument, date), for captions.
    """

    path: Path
    title: str
    date_obs: str
    center: tuple[float, float]
    source: str = ""


def read_properties(hips_dir: str | os.PathLike) -> dict[str, str]:
    """Read a HiPS ``properties`` file into a dict (``key = value`` lines)."""
    props = {}
    for line in (Path(hips_dir) / "properties").read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            props[key.strip()] = value.strip()
    return props


def _cache_key(image: Path, resolution: float, level: int, tile_size: int) -> str:
    """A short hash naming a HiPS in the cache. It changes with the layout version, the
    image (path, size, modification time) and the build parameters, so a changed input
    is never answered from a stale cache."""
    st = image.stat()
    raw = f"{_FORMAT_VERSION}|{image.resolve()}|{st.st_size}|{st.st_mtime_ns}|{resolution}|{level}|{tile_size}"
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def build_solar_hips(
    image: str | os.PathLike | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    resolution: u.Quantity = 0.5 * u.deg,
    order: int = 3,
    tile_size: int = 64,
    overwrite: bool = False,
) -> SolarHips:
    """Build (or reuse from the cache) a Carrington-frame solar HiPS of a context image.

    Parameters
    ----------
    image : path-like, optional
        Helioprojective FITS image (default :func:`default_context_image`).
    cache_dir : path-like, optional
        Folder receiving HiPS folders (default ``outputs/cache/hips`` under the project
        root). The HiPS lands in ``<cache_dir>/<image stem>-<key>/``; an existing one
        with the same key (image, size, date, parameters) is reused.
    resolution : `~astropy.units.Quantity`
        Pixel size of the intermediate Carrington map.
    order : int
        HiPS order of the tiles written (3, with an ``Allsky.png`` of the same order, is
        what Aladin Lite draws at every zoom: it uses the all-sky image up to order 3).
    tile_size : int
        Tile width in pixels (64 at order 3: 0.11° pixels, finer than the context
        images sunpy ships).
    overwrite : bool
        Rebuild even when the cache holds this HiPS.

    Returns
    -------
    SolarHips
    """
    image = Path(image) if image is not None else default_context_image()
    cache = paths.resolve(cache_dir) if cache_dir is not None else paths.OUTPUTS / "cache" / "hips"
    step = resolution.to_value(u.deg)
    name = f"{image.stem}-{_cache_key(image, step, order, tile_size)}"
    target = cache / name
    if target.is_dir() and (target / "properties").is_file() and not overwrite:
        return _describe(target)

    data, header = carrington_map(image, resolution=resolution)
    cuts = _pixel_cuts(data)
    properties = _properties(name, image, header, order, tile_size, cuts)
    cache.mkdir(parents=True, exist_ok=True)
    # written aside, then renamed: a reader never sees a half-written HiPS
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=cache))
    try:
        tiles = write_hips_tiles(data, tmp, order=order, tile_size=tile_size, cuts=cuts)
        properties["vespa_tiles"] = str(tiles)
        (tmp / "properties").write_text(
            "".join(f"{k:<24}= {v}\n" for k, v in properties.items()), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _describe(target)


def _pixel_cuts(data: np.ndarray) -> tuple[float, float]:
    """Display cuts of a map: its 1st and 99.7th percentiles (finite values), so a few
    bright pixels do not wash out the disk; (0, 1) for a map without data."""
    finite = data[np.isfinite(data)]
    lo, hi = np.percentile(finite, [1.0, 99.7]) if finite.size else (0.0, 1.0)
    return lo, hi


def _properties(name: str, image: Path, header: fits.Header, order: int, tile_size: int,
                cuts: tuple[float, float]) -> dict[str, str]:
    """The HiPS ``properties`` (keywords of the IVOA HiPS recommendation and Aladin's
    ``hips_body``, plus ``vespa_*`` ones) of the Carrington map of ``image`` (``header``
    from :func:`carrington_map`).

    ``obs_title`` and ``obs_description`` say the image is context only; ``hips_frame``
    is equatorial because the tiles' RA/Dec carry Carrington longitude/latitude, and
    ``hips_body`` puts Aladin Lite in planetary mode. The initial view is the
    sub-observer point; ``vespa_*`` keep what :func:`_describe` reads back.
    """
    date_obs = str(header["DATE-OBS"])
    lon0, lat0 = _sub_observer(header)
    instrument = _instrument(image)
    title = f"CONTEXT ONLY - {instrument} {date_obs[:19]} (not the regions' own observation)"
    lo, hi = cuts
    return {
        "creator_did": f"ivo://vespa_curation/P/context/{name}",
        "obs_title": title,
        "obs_description": (
            f"Context image only: {image.name} ({instrument}, {date_obs}) reprojected to "
            "Carrington longitude/latitude for that date (longitude = HiPS RA, latitude = "
            "HiPS Dec). It is not the observation the regions were detected on."
        ),
        "dataproduct_type": "image",
        "hips_version": "1.4",
        "hips_frame": "equatorial",
        "hips_body": HIPS_BODY,
        "hips_order": str(order),
        "hips_order_min": str(order),
        "hips_tile_width": str(tile_size),
        "hips_tile_format": "png",
        "hips_creator": "vespa_curation.qa.hips",
        "hips_initial_ra": f"{lon0:.6f}",
        "hips_initial_dec": f"{lat0:.6f}",
        "hips_pixel_cut": f"{lo:.4g} {hi:.4g}",
        "vespa_date_obs": date_obs,
        "vespa_source_image": image.name,
        "vespa_source": f"{instrument} {date_obs[:19]} ({image.name})",
        "vespa_carrington_center": f"{lon0:.6f} {lat0:.6f}",
    }


def _tile_wcs(order: int, tile_size: int):
    """Yield ``(index, [WCS, ...])`` for every HiPS tile of ``order`` (HPX projection,
    pseudo-equatorial), after ``reproject.hips`` (BSD-3, astropy/reproject
    ``tile_header_2d``), vectorized over tiles; border tiles of the HPX plane come with a
    second, rotated WCS."""
    from astropy.coordinates import ICRS
    from astropy.wcs.utils import celestial_frame_to_wcs
    from astropy_healpix import HEALPix

    n = 12 * 4**order
    hp = HEALPix(nside=2**order, order="nested", frame=ICRS())
    base = celestial_frame_to_wcs(ICRS(), projection="HPX")
    base.wcs.crval = 0.0, 0.0
    res = 45 / tile_size / 2**order
    base.wcs.cd = [[-res, -res], [res, -res]]
    base.wcs.set_pv([(2, 1, 4), (2, 2, 3)])
    index = np.arange(n)[:, None]
    dx = np.array([[0.5, 0.9, 0.9, 0.1, 0.1, 0.75]])
    dy = np.array([[0.5, 0.1, 0.9, 0.9, 0.1, 0.25]])
    lon, lat = hp.healpix_to_lonlat(np.broadcast_to(index, (n, 6)), dx=np.broadcast_to(dx, (n, 6)),
                                    dy=np.broadcast_to(dy, (n, 6)))
    ox, oy = base.wcs_world2pix(lon.to_value(u.deg), lat.to_value(u.deg), 0)
    border = np.max(np.hypot(ox[:, 1:5] - ox[:, :1], oy[:, 1:5] - oy[:, :1]), axis=1) > tile_size
    for i in range(n):
        wcs = base.deepcopy()
        wcs.wcs.crpix = [-ox[i, 5] - 0.5 + tile_size / 4, -oy[i, 5] - 0.5 + tile_size / 4]
        out = [wcs]
        if border[i]:
            other = base.deepcopy()
            other.wcs.crpix = [-wcs.wcs.crpix[1] + tile_size + 1, -wcs.wcs.crpix[0] + tile_size + 1]
            out.append(other)
        yield i, out


def _sample_car(data: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Bilinear samples of a full-sphere plate carree map (lon 0-360 across, lat -90-90
    up) at (lon, lat) in degrees; NaN outside the data."""
    from scipy.ndimage import map_coordinates

    ny, nx = data.shape
    padded = np.concatenate([data[:, -1:], data, data[:, :1]], axis=1)  # wrap 0/360
    col = np.mod(lon, 360.0) / (360.0 / nx) - 0.5 + 1
    row = (lat + 90.0) / (180.0 / ny) - 0.5
    ok = np.isfinite(col) & np.isfinite(row)
    out = np.full(lon.shape, np.nan)
    out[ok] = map_coordinates(padded, [np.clip(row[ok], 0, ny - 1), col[ok]],
                              order=1, mode="nearest", prefilter=False)
    return out


def _colorize(values: np.ndarray, cuts: tuple[float, float]) -> np.ndarray:
    """RGBA uint8 of values scaled between ``cuts`` (a gold ramp, like AIA 171 Å
    renderings, red always above blue); NaN is transparent."""
    lo, hi = cuts
    ok = np.isfinite(values)
    x = np.clip((np.where(ok, values, lo) - lo) / (hi - lo or 1.0), 0.0, 1.0)
    x = 0.15 + 0.85 * x  # never black: data stays distinguishable from the background
    rgba = np.stack([x ** 0.6, x ** 1.1, x ** 2.5, ok.astype(float)], axis=-1)
    return (rgba * 255 + 0.5).astype(np.uint8)


def write_hips_tiles(
    data: np.ndarray,
    directory: Path,
    *,
    order: int,
    tile_size: int,
    cuts: tuple[float, float],
) -> int:
    """Write PNG tiles (``Norder<order>/Dir<d>/Npix<i>.png``) and ``Norder3/Allsky.png``
    of a plate carree map whose longitude/latitude are taken as HiPS RA/Dec.

    Returns
    -------
    int
        Number of tiles written (tiles with no data are left out).
    """
    from PIL import Image

    n_tiles = 12 * 4**order
    yy, xx = np.mgrid[0:tile_size, 0:tile_size]
    tiles: dict[int, np.ndarray] = {}
    for index, wcss in _tile_wcs(order, tile_size):
        samples = []
        for wcs in wcss:
            with np.errstate(invalid="ignore"):
                lon, lat = wcs.wcs_pix2world(xx, yy, 0)
            samples.append(_sample_car(data, lon, lat))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            values = np.nanmean(samples, axis=0) if len(samples) > 1 else samples[0]
        if not np.isfinite(values).any():
            continue
        # FITS-like arrays have their first row at the bottom, PNG tiles at the top.
        tiles[index] = _colorize(values, cuts)[::-1]
        folder = directory / f"Norder{order}" / f"Dir{(index // 10000) * 10000}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(tiles[index], "RGBA").save(folder / f"Npix{index}.png")
    if order == 3:  # Aladin draws Allsky.png of order 3 at low zoom
        per_row = int(np.sqrt(n_tiles))
        rows = int(np.ceil(n_tiles / per_row))
        sky = np.zeros((rows * tile_size, per_row * tile_size, 4), dtype=np.uint8)
        for index, rgba in tiles.items():
            r, c = divmod(index, per_row)
            sky[r * tile_size:(r + 1) * tile_size, c * tile_size:(c + 1) * tile_size] = rgba
        Image.fromarray(sky, "RGBA").save(directory / "Norder3" / "Allsky.png")
    return len(tiles)


def _instrument(image: Path) -> str:
    """A label for captions, e.g. ``SDO/AIA 171``: ``TELESCOP``, ``INSTRUME`` (left out
    when the telescope already names it) and ``WAVELNTH``; the file stem when the header
    names neither telescope nor instrument."""
    _, header = _read_image(image)
    telescope = str(header.get("TELESCOP", "")).strip()
    instrument = str(header.get("INSTRUME", "")).strip()
    if instrument.split("_")[0] in telescope:  # e.g. SDO/AIA + AIA_3
        instrument = ""
    wave = header.get("WAVELNTH")
    name = " ".join(p for p in (telescope, instrument) if p) or image.stem
    return f"{name} {wave:g}" if isinstance(wave, (int, float)) else name


def _sub_observer(header: fits.Header) -> tuple[float, float]:
    """Carrington (lon, lat) in deg of the point facing the observer."""
    from astropy.coordinates import SkyCoord
    from sunpy.coordinates import HeliographicCarrington, HeliographicStonyhurst

    obstime = header["DATE-OBS"]
    observer = SkyCoord(
        header["HGLN_OBS"] * u.deg, header["HGLT_OBS"] * u.deg, header["DSUN_OBS"] * u.m,
        frame=HeliographicStonyhurst, obstime=obstime,
    )
    car = observer.transform_to(HeliographicCarrington(observer=observer, obstime=obstime))
    return float(car.lon.to_value(u.deg)) % 360.0, float(car.lat.to_value(u.deg))


def _describe(target: Path) -> SolarHips:
    """The :class:`SolarHips` of a HiPS folder, read back from its ``properties``, so a
    cached HiPS is described exactly as a freshly built one."""
    props = read_properties(target)
    lon, lat = (float(v) for v in props["vespa_carrington_center"].split())
    return SolarHips(path=target, title=props["obs_title"], date_obs=props["vespa_date_obs"],
                     center=(lon, lat), source=props.get("vespa_source", props["obs_title"]))


# --------------------------------------------------------------------------- server


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Static files with CORS (the notebook page's origin differs from the server's)."""

    def end_headers(self) -> None:
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (stdlib signature)
        pass


@dataclass
class LocalServer:
    """A threaded static HTTP server on 127.0.0.1 (see :func:`serve`).

    Attributes
    ----------
    root : pathlib.Path
        The folder served.
    url : str
        Base URL, ``http://127.0.0.1:<port>/`` (absolute, as Aladin Lite needs).
    """

    root: Path
    url: str
    _httpd: http.server.ThreadingHTTPServer
    _thread: threading.Thread

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def url_for(self, path: str | os.PathLike) -> str:
        """Absolute URL of ``path`` (a file or folder under :attr:`root`), ending in ``/``
        for folders."""
        rel = Path(path).resolve().relative_to(self.root)
        tail = "/" if Path(path).is_dir() else ""
        return self.url + "/".join(rel.parts) + tail

    def stop(self) -> None:
        """Stop serving and forget this server."""
        self._httpd.shutdown()
        self._httpd.server_close()
        _SERVERS.pop(self.root, None)


class _Server(http.server.ThreadingHTTPServer):
    """Threaded server whose threads never keep the process alive, quiet about clients
    that drop a connection."""

    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        # a browser dropping a tile request it no longer needs is not an error
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


_SERVERS: dict[Path, LocalServer] = {}
_LOCK = threading.Lock()


def serve(root: str | os.PathLike, port: int = 0) -> LocalServer:
    """Serve ``root`` on ``127.0.0.1`` from a daemon thread (one server per folder).

    Parameters
    ----------
    root : path-like
        Folder to serve (read-only static files, CORS open).
    port : int
        Port to bind; 0 picks a free one.

    Returns
    -------
    LocalServer
        The running server; calling :func:`serve` again with the same folder returns it.
    """
    root = Path(root).resolve()
    with _LOCK:
        server = _SERVERS.get(root)
        if server is not None and server._thread.is_alive():
            return server
        handler = functools.partial(_Handler, directory=str(root))
        httpd = _Server(("127.0.0.1", port), handler)
        thread = threading.Thread(target=httpd.serve_forever, name=f"hips-{root.name}", daemon=True)
        thread.start()
        server = LocalServer(root=root, url=f"http://127.0.0.1:{httpd.server_address[1]}/",
                             _httpd=httpd, _thread=thread)
        _SERVERS[root] = server
        return server
