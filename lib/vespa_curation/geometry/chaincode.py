"""HFC chain codes: vectorized decoding, checks, and the pixel-edge outline.

A chain code is a start pixel (``CC_X_PIX``, ``CC_Y_PIX``) and a string of
digits, each one step to a neighbouring pixel centre (HFC direction table,
x right, y up)::

    digit   0    1     2    3    4    5    6    7
    dx     -1   -1     0    1    1    1    0   -1
    dy      0   -1    -1   -1    0    1    1    1

The digits turn counter-clockwise by 45° each (0 = left, 4 = right).  The same
table is used by HFC's IDL/PHP code, HFCPy and ``sunpy.net.helio.Chaincode``.

Many chains are handled at once as *ragged arrays*: one flat array of values
plus ``offsets`` (length ``n + 1``) so that chain ``i`` owns
``values[offsets[i]:offsets[i + 1]]``.

Functions
---------
check_chains
    Per-chain refusal (rule, reason) for bad digits, wrong length, open chains,
    start pixels off the image.
decode_chains
    Pixel-centre vertices of every chain (start, then one vertex per digit).
pixel_outline
    The outline of the pixel *edges* around each chain (a simple ring whose area
    is the pixel count of the traced region; spurs and diagonal bridges kept).
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from . import kernels

__all__ = [
    "DX",
    "DY",
    "Ragged",
    "check_chains",
    "decode_chains",
    "chain_digits",
    "pixel_outline",
    "ragged_ids",
]

#: x step of each chain-code digit (HFC direction table).
DX = np.array([-1, -1, 0, 1, 1, 1, 0, -1], dtype=np.int64)
#: y step of each chain-code digit (HFC direction table).
DY = np.array([0, -1, -1, -1, 0, 1, 1, 1], dtype=np.int64)
#: Longest chain accepted when the image size is unknown (digits).
MAX_CHAIN_DIGITS = 65536

#: Half-width (pixels) given to a diagonal bridge between two pixels that touch
#: only at a corner (a pinch): the outline passes the shared corner twice, pushed
#: apart by this much each time so that the ring stays simple (area added:
#: at most BRIDGE_EPS/√2 ≈ 0.035 px² per pinch pass; elsewhere the outline is the
#: exact pixel union).
BRIDGE_EPS = 0.05


class Ragged(NamedTuple):
    """Many 2-D polylines in one pair of flat arrays.

    Attributes
    ----------
    x, y : numpy.ndarray
        Flat coordinates.
    offsets : numpy.ndarray
        Integer array of length ``n + 1``; item ``i`` owns
        ``x[offsets[i]:offsets[i + 1]]``.
    """

    x: np.ndarray
    y: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:  # number of polylines
        return len(self.offsets) - 1

    def item(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``(x, y)`` arrays of polyline ``i``."""
        s = slice(self.offsets[i], self.offsets[i + 1])
        return self.x[s], self.y[s]

    @property
    def counts(self) -> np.ndarray:
        """Number of vertices of each polyline."""
        return np.diff(self.offsets)


def ragged_ids(offsets: np.ndarray) -> np.ndarray:
    """Owner index of every flat element, for ragged ``offsets``."""
    counts = np.diff(offsets)
    return np.repeat(np.arange(len(counts)), counts)


def _member(ids: np.ndarray, which: np.ndarray, n: int) -> np.ndarray:
    """``np.isin(ids, which)`` for integer ids in ``range(n)`` (a mask look-up, O(len))."""
    mask = np.zeros(n, dtype=bool)
    mask[which] = True
    return mask[ids]


def _refuse(rule: np.ndarray, reason: np.ndarray, mask: np.ndarray, code: str,
            explain) -> None:
    """Set ``rule[i] = code`` and ``reason[i] = explain(i)`` for the items ``i`` in
    ``mask`` that have no rule yet: checks run in order, and the first one an item
    fails is the one reported."""
    for i in np.flatnonzero(mask & (rule == None)):  # noqa: E711
        rule[i] = code
        reason[i] = explain(i)


def _as_strings(cc: Sequence) -> list[str]:
    out = []
    for c in cc:
        if c is None or (isinstance(c, float) and np.isnan(c)):
            out.append("")
        elif isinstance(c, bytes):
            out.append(c.decode("latin-1"))
        else:
            out.append(str(c))
    return out


def chain_digits(cc: Sequence) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Digits of many chain codes as one flat array.

    Parameters
    ----------
    cc : sequence of str
        Chain-code strings (None/NaN read as empty).

    Returns
    -------
    digits : numpy.ndarray of int64
        All digits, concatenated; any character other than ``0``–``7`` gives
        a value outside 0–7.
    offsets : numpy.ndarray
        Ragged offsets (length ``len(cc) + 1``).
    bad : numpy.ndarray of int64
        Number of characters outside ``0``–``7`` in each chain.
    """
    strings = _as_strings(cc)
    lens = np.fromiter((len(s) for s in strings), dtype=np.int64, count=len(strings))
    offsets = np.zeros(len(strings) + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    # 'replace' keeps one byte per character, so offsets stay valid.
    buf = np.frombuffer("".join(strings).encode("ascii", errors="replace"), dtype=np.uint8)
    digits = buf.astype(np.int64) - 48
    badmask = (digits < 0) | (digits > 7)
    bad = np.bincount(ragged_ids(offsets), weights=badmask, minlength=len(strings)).astype(np.int64)
    return digits, offsets, bad


def decode_chains(cc: Sequence, x0, y0, *, digits=None) -> Ragged:
    """Pixel-centre vertices of many chain codes at once (one compiled walk per chain).

    Parameters
    ----------
    cc : sequence of str
        Chain codes.  A character outside ``0``–``7`` is decoded as no move
        (use :func:`check_chains` to refuse such records).
    x0, y0 : array_like of int
        Start pixel of each chain (``CC_X_PIX``, ``CC_Y_PIX``).
    digits : tuple, optional
        ``chain_digits(cc)`` when already computed (``cc`` is then not read).

    Returns
    -------
    Ragged
        ``len(chain) + 1`` vertices per chain: the start, then one vertex per
        digit (the same vertices as ``sunpy.net.helio.Chaincode(...).coordinates``
        with ``xdelta = ydelta = 1``).
    """
    digits, doff, _ = chain_digits(cc) if digits is None else digits
    n = len(doff) - 1
    x0 = np.ascontiguousarray(np.asarray(x0, dtype=np.int64).reshape(n))
    y0 = np.ascontiguousarray(np.asarray(y0, dtype=np.int64).reshape(n))
    doff = np.ascontiguousarray(doff, dtype=np.int64)
    voff = doff + np.arange(n + 1)  # one extra vertex (the start) per chain
    vx = np.empty(voff[-1], dtype=np.int64)
    vy = np.empty(voff[-1], dtype=np.int64)
    kernels.chain_vertices(np.ascontiguousarray(digits, dtype=np.int64), doff, x0, y0,
                           DX, DY, vx, vy)
    return Ragged(vx, vy, voff)


def check_chains(cc: Sequence, cc_length, x0, y0, naxis1, naxis2, *,
                 digits=None) -> tuple[np.ndarray, np.ndarray]:
    """Refuse chains that cannot be decoded into a region, with a reason.

    Checks, in this order (the first failure is reported): a character outside
    ``0``–``7`` (``chaincode.bad_digit``); ``CC_LENGTH`` different from the
    number of digits (``chaincode.length_mismatch``; a missing CC_LENGTH is not
    checked); a start pixel outside ``0 ≤ x < NAXIS1, 0 ≤ y < NAXIS2``
    (``chaincode.start_off_image``, missing NAXIS not checked); more digits than
    twice the image's perimeter, or :data:`MAX_CHAIN_DIGITS` when the image size is
    unknown (``chaincode.too_long``); a path leaving the image by more than a pixel
    (``chaincode.off_image``); a chain that does not return to its start pixel
    (``chaincode.not_closed``).

    Parameters
    ----------
    cc : sequence of str
    cc_length, x0, y0, naxis1, naxis2 : array_like
        ``CC_LENGTH``, ``CC_X_PIX``, ``CC_Y_PIX``, ``NAXIS1``, ``NAXIS2``
        (NaN allowed where a value is missing).

    Returns
    -------
    rule, reason : numpy.ndarray of object
        None where the chain is acceptable.
    """
    digits, doff, bad = chain_digits(cc) if digits is None else digits
    n = len(doff) - 1
    lens = np.diff(doff)
    cc_length, x0, y0, naxis1, naxis2 = (np.asarray(v, dtype=float).reshape(n)
                                         for v in (cc_length, x0, y0, naxis1, naxis2))
    # where each path ends, and the smallest and largest offsets it visits
    end, lo, hi = kernels.chain_walk(np.ascontiguousarray(digits, dtype=np.int64),
                                     np.ascontiguousarray(doff, dtype=np.int64), DX, DY)
    sumx, sumy = end[:, 0], end[:, 1]
    rule = np.full(n, None, dtype=object)
    reason = np.full(n, None, dtype=object)

    def put(mask, code, explain):
        _refuse(rule, reason, mask, code, explain)

    strings = _as_strings(cc) if bad.any() else None
    put(bad > 0, "chaincode.bad_digit", lambda i: _bad_digit_reason(strings[i], bad[i]))
    put(np.isfinite(cc_length) & (cc_length != lens), "chaincode.length_mismatch",
        lambda i: f"CC_LENGTH is {cc_length[i]:.0f} but the chain code has {lens[i]} digits")
    off = (~np.isfinite(x0)) | (~np.isfinite(y0))
    off |= x0 < 0
    off |= y0 < 0
    off |= np.isfinite(naxis1) & (x0 >= naxis1)
    off |= np.isfinite(naxis2) & (y0 >= naxis2)
    put(off, "chaincode.start_off_image",
        lambda i: f"start pixel ({x0[i]:g}, {y0[i]:g}) is outside the "
                  f"{naxis1[i]:g}×{naxis2[i]:g} image")
    # a chain longer than twice the image's perimeter cannot outline one region (and
    # would cost time and memory downstream)
    known = np.isfinite(naxis1) & np.isfinite(naxis2)
    limit = np.where(known, 4.0 * (naxis1 + naxis2), MAX_CHAIN_DIGITS)
    put(lens > limit, "chaincode.too_long",
        lambda i: f"chain code has {lens[i]} digits, more than {limit[i]:.0f} (twice the "
                  f"perimeter of the {naxis1[i]:g}×{naxis2[i]:g} image)")
    # a path leaving the image (one pixel of slack for 1-based conventions)
    out = (x0 + lo[:, 0] < -1) | (y0 + lo[:, 1] < -1)
    out |= np.isfinite(naxis1) & (x0 + hi[:, 0] > naxis1)
    out |= np.isfinite(naxis2) & (y0 + hi[:, 1] > naxis2)
    put(out, "chaincode.off_image",
        lambda i: f"the chain leaves the {naxis1[i]:g}×{naxis2[i]:g} image")
    put((sumx != 0) | (sumy != 0), "chaincode.not_closed",
        lambda i: f"chain does not return to its start pixel: it ends "
                  f"({sumx[i]:+.0f}, {sumy[i]:+.0f}) pixels away")
    return rule, reason


def _bad_digit_reason(chain: str, n_bad: int) -> str:
    chars = sorted({c for c in chain if c not in "01234567"})
    pos = next(k for k, c in enumerate(chain) if c not in "01234567")
    return (f"chain code holds {n_bad} character(s) outside 0-7 "
            f"({', '.join(repr(c) for c in chars)}; first at position {pos})")


# --------------------------------------------------------------------------
# Pixel-edge outline
# --------------------------------------------------------------------------

def _angle(d: int) -> int:
    """Direction angle (degrees, counter-clockwise from +x) of digit ``d``."""
    return (180 + 45 * d) % 360


def _corner(angle: float) -> tuple[float, float]:
    """Pixel corner (relative to the centre) at ``angle`` (45, 135, 225 or 315)."""
    a = np.deg2rad(angle)
    return (0.5 * np.sign(np.cos(a)), 0.5 * np.sign(np.sin(a)))


def _build_table():
    """Outline points emitted at a vertex, for each (incoming, outgoing) digit.

    The traversal has the region on its left (counter-clockwise); the outline
    walks the outside of the pixel squares.  Arriving along an axis the outline
    is on the pixel's right-hand edge; arriving diagonally it is at the corner
    shared with the previous pixel (the "bridge" point).  It then turns around
    the pixel, by the same sense as the chain turns, emitting the pixel corners
    it passes, up to the edge (or bridge corner) where it leaves.
    """
    table = {}
    for a in range(8):
        for b in range(8):
            ta, tb = _angle(a), _angle(b)
            tau = (tb - ta + 180) % 360 - 180
            if tau == -180:
                tau = 180
            a_diag, b_diag = a % 2 == 1, b % 2 == 1
            entry = ta + 180 if a_diag else ta - 90
            exit_ = tb if b_diag else tb - 90
            sweep = tau + 90 * (a_diag + b_diag)
            if a_diag and b_diag and tau == -90:
                sweep = 90  # (a diag, b diag, right turn) e.g. top of an inverted V
            # check: exit angle reached
            assert (entry + sweep - exit_) % 360 == 0, (a, b, entry, sweep, exit_)
            pts = []
            step = 1 if sweep > 0 else -1
            for s in range(step, sweep, step):
                ang = (entry + s) % 360
                if ang % 90 == 45:
                    pts.append(_corner(ang))
            pts = [(px, py, 0.0, 0.0) for px, py in pts]
            if b_diag:
                # the corner shared with the next pixel; if the outline passes it twice
                # (a pinch) it is pushed off by BRIDGE_EPS along the outward normal
                r = np.deg2rad(tb - 90)
                pts.append((DX[b] / 2, DY[b] / 2, BRIDGE_EPS * np.cos(r), BRIDGE_EPS * np.sin(r)))
            table[a, b] = pts
    return table


def _pack_table():
    table = _build_table()
    cnt = np.zeros(64, dtype=np.int64)
    pts_all = []
    start = np.zeros(64, dtype=np.int64)
    for k in range(64):
        a, b = divmod(k, 8)
        pts = table[a, b]
        start[k] = len(pts_all)
        cnt[k] = len(pts)
        pts_all.extend(pts)
    arr = np.array(pts_all, dtype=float).reshape(-1, 4)
    return cnt, start, arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3]


_TCOUNT, _TSTART, _TX, _TY, _TPX, _TPY = _pack_table()


def pixel_outline(cc: Sequence, x0, y0, return_orientation: bool = False, *, digits=None,
                  chain: Ragged | None = None):
    """Outline of the pixel edges around many closed chains (:func:`.kernels.outline_rings`).

    The chain code runs through the centres of the boundary pixels; the region
    it bounds is the set of pixels on and inside it.  The outline follows the
    outer edges of those pixel squares, so its area equals the pixel count of
    the region (plus at most ``BRIDGE_EPS``/√2 px² per pass through a pinch).  One-pixel-wide
    spurs stay (as 1-pixel-wide strips) and pixels touching only diagonally
    stay joined by a thin bridge, so the outline is one simple ring.
    Clockwise chains (HFC's own tracers) are reversed first; the output rings
    are all counter-clockwise (x right, y up).

    Parameters
    ----------
    cc : sequence of str
        *Valid, closed* chain codes (see :func:`check_chains`).  An empty chain
        is a one-pixel region.
    x0, y0 : array_like
        Start pixels.
    return_orientation : bool
        Also return +1 (chain counter-clockwise), -1 (clockwise) or 0 (no area:
        a line of pixels) for every chain.
    digits, chain : optional
        ``chain_digits(cc)`` and ``decode_chains(...)`` when already computed.

    Returns
    -------
    Ragged
        Outline vertices in pixel coordinates (pixel centres at integers), ring
        not repeated at its end.
    """
    digits, doff, bad = chain_digits(cc) if digits is None else digits
    if bad.any():
        raise ValueError("chain codes with characters outside 0-7: rows "
                         f"{np.flatnonzero(bad)[:10]}")
    verts = decode_chains(None, x0, y0, digits=(digits, doff, bad)) if chain is None else chain
    i64 = lambda a: np.ascontiguousarray(a, dtype=np.int64)  # noqa: E731
    X, Y, ooff, orient = kernels.outline_rings(
        i64(digits), i64(doff), i64(verts.x), i64(verts.y), i64(verts.offsets),
        _TCOUNT, _TSTART, _TX, _TY, _TPX, _TPY, int(_TCOUNT.max()))
    out = Ragged(X, Y, ooff)
    if return_orientation:
        return out, orient
    return out
