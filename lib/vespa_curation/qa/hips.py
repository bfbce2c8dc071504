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
_FORMAT_VERSION = "1"


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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fits.verify.VerifyWarning)
        with fits.open(image) as hdul:
            hdu = next((h for h in hdul if h.data is not None and h.data.ndim == 2), None)
            if hdu is None:
                raise ValueError(f"{image}: no 2-D image HDU")
            return np.asarray(hdu.data, dtype=float), hdu.header.copy()


def _observer_keys(header: fits.Header, image) -> dict:
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
    """

    path: Path
    title: str
    date_obs: str
    center: tuple[float, float]


def read_properties(hips_dir: str | os.PathLike) -> dict[str, str]:
    """Read a HiPS ``properties`` file into a dict (``key = value`` lines)."""
    props = {}
    for line in (Path(hips_dir) / "properties").read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            props[key.strip()] = value.strip()
    return props


def _cache_key(image: Path, resolution: float, level: int, tile_size: int) -> str:
    st = image.stat()
    raw = f"{_FORMAT_VERSION}|{image.resolve()}|{st.st_size}|{st.st_mtime_ns}|{resolution}|{level}|{tile_size}"
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def build_solar_hips(
    image: str | os.PathLike | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    resolution: u.Quantity = 0.5 * u.deg,
    level: int = 1,
    tile_size: int = 256,
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
    level : int
        Deepest HiPS order written (tiles of ``tile_size`` pixels: order 1 with 256-pixel
        tiles gives 0.11° pixels, finer than the context images sunpy ships).
    tile_size : int
        HiPS tile width in pixels.
    overwrite : bool
        Rebuild even when the cache holds this HiPS.

    Returns
    -------
    SolarHips
    """
    from reproject import reproject_interp
    from reproject.hips import reproject_to_hips

    image = Path(image) if image is not None else default_context_image()
    cache = paths.resolve(cache_dir) if cache_dir is not None else paths.OUTPUTS / "cache" / "hips"
    step = resolution.to_value(u.deg)
    name = f"{image.stem}-{_cache_key(image, step, level, tile_size)}"
    target = cache / name
    if target.is_dir() and (target / "properties").is_file() and not overwrite:
        return _describe(target)

    data, header = carrington_map(image, resolution=resolution)
    date_obs = str(header["DATE-OBS"])
    lon0, lat0 = _sub_observer(header)
    instrument = _instrument(image)
    title = f"CONTEXT ONLY - {instrument} {date_obs[:19]} (not the regions' own observation)"

    # The HiPS's longitude/latitude are the Carrington ones: relabel the plate carree map
    # as a pseudo-equatorial one so reproject copies it pixel for pixel (no rotation).
    sky = fits.Header()
    for key in ("NAXIS", "NAXIS1", "NAXIS2", "CDELT1", "CDELT2", "CRVAL1", "CRVAL2",
                "CRPIX1", "CRPIX2", "CUNIT1", "CUNIT2"):
        sky[key] = header[key]
    sky["CTYPE1"], sky["CTYPE2"] = "RA---CAR", "DEC--CAR"
    sky["RADESYS"] = "ICRS"
    finite = data[np.isfinite(data)]
    lo, hi = np.percentile(finite, [1.0, 99.7]) if finite.size else (0.0, 1.0)
    properties = {
        "obs_title": title,
        "obs_description": (
            f"Context image only: {image.name} ({instrument}, {date_obs}) reprojected to "
            "Carrington longitude/latitude for that date (longitude = HiPS RA, latitude = "
            "HiPS Dec). It is not the observation the regions were detected on."
        ),
        "hips_body": HIPS_BODY,
        "hips_creator": "vespa_curation.qa.hips",
        "hips_initial_ra": f"{lon0:.6f}",
        "hips_initial_dec": f"{lat0:.6f}",
        "hips_initial_fov": "180",
        "hips_pixel_cut": f"{lo:.4g} {hi:.4g}",
        "hips_data_range": f"{finite.min() if finite.size else 0:.4g} {finite.max() if finite.size else 1:.4g}",
        "vespa_date_obs": date_obs,
        "vespa_source_image": image.name,
        "vespa_carrington_center": f"{lon0:.6f} {lat0:.6f}",
    }
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=cache))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            reproject_to_hips(
                (data, sky),
                coord_system_out="equatorial",
                reproject_function=reproject_interp,
                output_directory=tmp / "hips",
                level=level,
                tile_size=tile_size,
                properties=properties,
            )
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp / "hips", target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _describe(target)


def _instrument(image: Path) -> str:
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
    props = read_properties(target)
    lon, lat = (float(v) for v in props["vespa_carrington_center"].split())
    return SolarHips(path=target, title=props["obs_title"], date_obs=props["vespa_date_obs"],
                     center=(lon, lat))


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
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        httpd.daemon_threads = True
        thread = threading.Thread(target=httpd.serve_forever, name=f"hips-{root.name}", daemon=True)
        thread.start()
        server = LocalServer(root=root, url=f"http://127.0.0.1:{httpd.server_address[1]}/",
                             _httpd=httpd, _thread=thread)
        _SERVERS[root] = server
        return server
