"""Compiled per-ring loops (numba) for the geometry steps whose work is a walk along a ring.

The pixel outline emits a few corners per chain step and then looks for corners passed
twice (pinches), the staircase cut looks at each corner's two neighbours,
Douglas–Peucker splits a chord where its farthest vertex lies: written with numpy over
all rings at once they cost a dozen temporary arrays per pass (and one pass per level
of splitting). Here each ring is walked once, in compiled code, with the same
arithmetic (no fast-math), so the results are those of the array formulas they
replaced, bit for bit. ``cache=True`` keeps the machine code beside this file: a new
process (a worker, a papermill kernel) loads it instead of compiling again.

The helpers a kernel calls (``_walk_counter_clockwise`` … for :func:`outline_rings`)
are compiled functions too, and stay in this file: numba drops a cached kernel when
its own source file changes, but not when a function it calls from another file
does ("Notes on Caching", cache limitations, in numba's developer documentation).

The same holds for the loops over many small things that numpy can only do with
temporaries per element: the proof that a ring does not cross itself
(:func:`rings_simple`); each ring's gnomonic plane, densified edges, shoelace area,
unwrapped longitudes and area centroid, each chain's vertices, and the helioprojective →
Carrington arithmetic between numpy's sines and cosines, the vertices a ring keeps,
the outline's points off the pixel-corner grid
(:func:`gnomonic_plane`, :func:`densify_parts`, :func:`signed_areas`,
:func:`unwrap_rings`, :func:`area_centroids`, :func:`chain_vertices`,
:func:`line_of_sight`, :func:`carrington_degrees`, :func:`kept_vertices`,
:func:`off_corner_grid`: numpy's
arithmetic in numpy's order, the same bits, each tested against the numpy formula it
replaced); each polygon's cap for the coverage MOC (:func:`polygon_caps`); and
STC-S numbers written and read as text (:func:`fixed_point_text`,
:func:`stcs_polygon_numbers`).

The public functions are in :mod:`.chaincode`, :mod:`.sregion` and
:mod:`vespa_curation.stcs`; these take and return plain arrays.
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def dp_keep(x, y, offsets, tol2, keep):
    """Douglas–Peucker on closed rings: set ``keep`` for the vertices kept.

    Each ring (of at least 4 vertices) is split at its first vertex and the first
    vertex farthest from it; a chord whose farthest in-between vertex (distance to
    the segment, clamped at its ends) lies more than ``sqrt(tol2[ring])`` away is
    split at the first such farthest vertex. Rings of fewer than 4 vertices are kept.
    """
    n = len(offsets) - 1
    stack = np.empty(2 * (np.max(np.diff(offsets)) + 2 if n else 2), dtype=np.int64)
    for r in range(n):
        a, b = offsets[r], offsets[r + 1]
        if b - a < 4:
            for k in range(a, b):
                keep[k] = True
            continue
        x0, y0 = x[a], y[a]
        far, dfar = a, -1.0
        for k in range(a, b):
            d = (x[k] - x0) ** 2 + (y[k] - y0) ** 2
            if d > dfar:
                dfar, far = d, k
        keep[a] = True
        keep[far] = True
        # chords (s, e); e == b means the ring's first vertex again
        stack[0], stack[1] = a, far
        stack[2], stack[3] = far, b
        top = 4
        t2 = tol2[r]
        while top:
            top -= 2
            s, e = stack[top], stack[top + 1]
            if e - s < 2:
                continue
            ea = a if e == b else e
            ax, ay = x[s], y[s]
            dx, dy = x[ea] - ax, y[ea] - ay
            ll = dx * dx + dy * dy
            if ll == 0:
                ll = 1.0
            dmax, hit = -1.0, -1
            for k in range(s + 1, e):
                px = x[k] - ax
                py = y[k] - ay
                t = (px * dx + py * dy) / ll
                if t < 0.0:
                    t = 0.0
                elif t > 1.0:
                    t = 1.0
                px -= t * dx
                py -= t * dy
                d = px * px + py * py
                if d > dmax:
                    dmax, hit = d, k
            if dmax > t2:
                keep[hit] = True
                stack[top], stack[top + 1] = s, hit
                stack[top + 2], stack[top + 3] = hit, e
                top += 4


@njit(cache=True, nogil=True)
def staircase_cut(x, y, offsets, fixed, cut):
    """Corners of pixel staircases cut, then collinear points dropped (see ``cut_staircases``).

    Returns ``(X, Y, new_offsets)``.
    """
    n = len(offsets) - 1
    N = len(x)
    X = np.empty(2 * N)
    Y = np.empty(2 * N)
    out = np.zeros(n + 1, dtype=np.int64)
    m = 0
    cap = (np.max(np.diff(offsets)) if n else 0) + 2
    tx = np.empty(2 * cap)
    ty = np.empty(2 * cap)
    ok = np.empty(2 * cap, dtype=np.bool_)
    ex = np.empty(cap)      # per vertex of the ring: incoming edge, its length, turn, cut
    ey = np.empty(cap)
    le = np.empty(cap)
    tn = np.empty(cap)
    dd = np.empty(cap)
    for r in range(n):
        a, b = offsets[r], offsets[r + 1]
        c = b - a
        for k in range(c):
            i = a + k
            p = i - 1 if k > 0 else b - 1
            ex[k] = x[i] - x[p]
            ey[k] = y[i] - y[p]
            le[k] = np.hypot(ex[k], ey[k])
        for k in range(c):
            q = k + 1 if k < c - 1 else 0
            tn[k] = np.sign(ex[k] * ey[q] - ey[k] * ex[q])
        for k in range(c):
            p = k - 1 if k > 0 else c - 1
            q = k + 1 if k < c - 1 else 0
            d = 0.0
            if (tn[k] != tn[p] or tn[k] != tn[q]) and not fixed[a + k]:
                d = min(cut, 0.5 * min(le[k], le[q]))
            dd[k] = d
        # two points per vertex, A on the incoming edge and B on the outgoing one; B is
        # left out where it equals A (corner not cut) or the next vertex's A (unit step)
        j = 0
        for k in range(c):
            i = a + k
            q = k + 1 if k < c - 1 else 0
            d, la, lb = dd[k], le[k], le[q]
            fa = d / (la if la != 0 else 1.0)
            fb = d / (lb if lb != 0 else 1.0)
            tx[j] = x[i] - fa * ex[k]
            ty[j] = y[i] - fa * ey[k]
            j += 1
            if not (d == 0 or abs(lb - d - dd[q]) < 1e-12):
                tx[j] = x[i] + fb * ex[q]
                ty[j] = y[i] + fb * ey[q]
                j += 1
        # then points on the line through their neighbours (never fewer than 3)
        kept = 0
        for k in range(j):
            kp = k - 1 if k > 0 else j - 1
            kn = k + 1 if k < j - 1 else 0
            cr = (tx[k] - tx[kp]) * (ty[kn] - ty[k]) - (ty[k] - ty[kp]) * (tx[kn] - tx[k])
            ok[k] = abs(cr) > 1e-9
            if ok[k]:
                kept += 1
        for k in range(j):
            if ok[k] or kept < 3:
                X[m] = tx[k]
                Y[m] = ty[k]
                m += 1
        out[r + 1] = m
    return X[:m], Y[:m], out


@njit(cache=True, nogil=True)
def chain_walk(digits, offsets, dx, dy):
    """Per chain: where its path ends and how far it reaches, relative to the start.

    Returns ``(sum, lo, hi)``, each of shape ``(n, 2)`` (x, y): the end pixel offset,
    and the smallest and largest offsets the path visits (the start included).
    A digit outside 0–7 is no move (``check_chains`` refuses such chains anyway).
    """
    n = len(offsets) - 1
    end = np.zeros((n, 2), dtype=np.int64)
    lo = np.zeros((n, 2), dtype=np.int64)
    hi = np.zeros((n, 2), dtype=np.int64)
    for r in range(n):
        px = py = 0
        lx = ly = hx = hy = 0
        for k in range(offsets[r], offsets[r + 1]):
            d = digits[k]
            if 0 <= d <= 7:
                px += dx[d]
                py += dy[d]
                lx, hx = min(lx, px), max(hx, px)
                ly, hy = min(ly, py), max(hy, py)
        end[r, 0], end[r, 1] = px, py
        lo[r, 0], lo[r, 1] = lx, ly
        hi[r, 0], hi[r, 1] = hx, hy
    return end, lo, hi


@njit(cache=True, nogil=True)
def chain_vertices(digits, offsets, x0, y0, dx, dy, vx, vy):
    """Pixel-centre vertices of each chain: its start, then one per digit (a digit
    outside 0–7 is no move), written to ``vx, vy`` (ragged offsets ``offsets + k``)."""
    at = 0
    for r in range(len(offsets) - 1):
        x = x0[r]
        y = y0[r]
        vx[at] = x
        vy[at] = y
        at += 1
        for k in range(offsets[r], offsets[r + 1]):
            d = digits[k]
            if 0 <= d <= 7:
                x += dx[d]
                y += dy[d]
            vx[at] = x
            vy[at] = y
            at += 1


@njit(cache=True, nogil=True)
def outline_rings(digits, doff, vx, vy, voff, tcount, tstart, tx, ty, tpx, tpy, max_per):
    """Pixel-edge outline of closed chains (see ``chaincode.pixel_outline``).

    ``vx, vy, voff``: the decoded chain vertices (start repeated at the end). The
    ``t*`` arrays are the packed table of outline points per (incoming, outgoing)
    digit, ``tpx, tpy`` the push of a bridge point at a pinch. Returns
    ``(X, Y, offsets, orientation)``.
    """
    n = len(doff) - 1
    X = np.empty(max_per * len(digits) + 4 * n)
    Y = np.empty(len(X))
    table_row = np.empty(len(X), dtype=np.int64)    # table row of each point emitted
    off = np.zeros(n + 1, dtype=np.int64)
    orient = np.zeros(n, dtype=np.int64)
    cap = (np.max(np.diff(doff)) if n else 0) + 1
    ccw_digits = np.empty(cap, dtype=np.int64)      # the chain walked counter-clockwise
    ccw_x = np.empty(cap, dtype=np.int64)
    ccw_y = np.empty(cap, dtype=np.int64)
    m = 0
    for r in range(n):
        n_steps = doff[r + 1] - doff[r]
        if n_steps == 0:   # a one-pixel region: the four corners of its pixel
            m = _pixel_corners(vx[voff[r]], vy[voff[r]], X, Y, m)
            off[r + 1] = m
            continue
        orient[r] = _walk_counter_clockwise(digits, doff[r], n_steps, vx, vy, voff[r],
                                            ccw_digits, ccw_x, ccw_y)
        start = m
        m, n_bridge = _emit_outline(ccw_digits, ccw_x, ccw_y, n_steps, tcount, tstart, tx, ty,
                                    tpx, X, Y, table_row, m)
        off[r + 1] = m
        if n_bridge > 1:
            _push_pinches(X, Y, table_row, start, m, n_bridge, tpx, tpy)
    return X[:m], Y[:m], off, orient


@njit(cache=True, nogil=True)
def _pixel_corners(x0, y0, X, Y, m):
    """The four corners of pixel ``(x0, y0)``, counter-clockwise, written from ``X[m]``;
    returns the next free position."""
    X[m], Y[m] = x0 + 0.5, y0 - 0.5
    X[m + 1], Y[m + 1] = x0 + 0.5, y0 + 0.5
    X[m + 2], Y[m + 2] = x0 - 0.5, y0 + 0.5
    X[m + 3], Y[m + 3] = x0 - 0.5, y0 - 0.5
    return m + 4


@njit(cache=True, nogil=True)
def _walk_counter_clockwise(digits, a, n_steps, vx, vy, v, ccw_digits, ccw_x, ccw_y):
    """One chain (digits from ``a``, vertices from ``v``) in counter-clockwise order.

    Writes its digits and vertices into ``ccw_digits, ccw_x, ccw_y``: as they are
    when the chain is counter-clockwise (or has no area), else walked backwards with
    each digit turned by 180°.  Returns the orientation: +1, -1 (clockwise) or 0.
    """
    area2 = 0.0
    for k in range(n_steps):
        k1 = k + 1 if k < n_steps - 1 else 0
        area2 += float(vx[v + k]) * vy[v + k1] - float(vx[v + k1]) * vy[v + k]
    orientation = 1 if area2 > 0 else (-1 if area2 < 0 else 0)
    if orientation < 0:
        for k in range(n_steps):
            ccw_digits[k] = (digits[a + n_steps - 1 - k] + 4) % 8
            j = (n_steps - k) % n_steps
            ccw_x[k], ccw_y[k] = vx[v + j], vy[v + j]
    else:
        for k in range(n_steps):
            ccw_digits[k] = digits[a + k]
            ccw_x[k], ccw_y[k] = vx[v + k], vy[v + k]
    return orientation


@njit(cache=True, nogil=True)
def _emit_outline(ccw_digits, ccw_x, ccw_y, n_steps, tcount, tstart, tx, ty, tpx,
                  X, Y, table_row, m):
    """The outline points of one counter-clockwise chain, written from ``X[m]``: at each
    vertex the table's points for its (incoming, outgoing) digits.

    Returns the next free position and the number of bridge points emitted.
    """
    n_bridge = 0
    for k in range(n_steps):
        key = ccw_digits[k - 1 if k > 0 else n_steps - 1] * 8 + ccw_digits[k]
        t0 = tstart[key]
        for j in range(tcount[key]):
            X[m] = ccw_x[k] + tx[t0 + j]
            Y[m] = ccw_y[k] + ty[t0 + j]
            table_row[m] = t0 + j
            if tpx[t0 + j] != 0.0:
                n_bridge += 1
            m += 1
    return m, n_bridge


@njit(cache=True, nogil=True)
def _push_pinches(X, Y, table_row, start, end, n_bridge, tpx, tpy):
    """Pinches of the ring ``X[start:end]``: a corner the outline passes twice (pixels
    touching only at a corner).  Only bridge points (emitted for a diagonal step) can
    repeat; each repeated one is pushed off the corner by its table row's push."""
    cand = np.empty(n_bridge, dtype=np.int64)
    keys = np.empty(n_bridge, dtype=np.int64)
    c = 0
    for p in range(start, end):
        if tpx[table_row[p]] != 0.0:
            cand[c] = p
            keys[c] = int(2 * X[p]) * 1_000_003 + int(2 * Y[p])
            c += 1
    order = np.argsort(keys)
    dup = np.zeros(n_bridge, dtype=np.bool_)
    for c in range(1, n_bridge):
        if keys[order[c]] == keys[order[c - 1]] \
                and X[cand[order[c]]] == X[cand[order[c - 1]]] \
                and Y[cand[order[c]]] == Y[cand[order[c - 1]]]:
            dup[order[c]] = True
            dup[order[c - 1]] = True
    for c in range(n_bridge):
        if dup[c]:
            p = cand[c]
            X[p] += tpx[table_row[p]]
            Y[p] += tpy[table_row[p]]


#: Relative size of the rounding band of an orientation (a 2×2 determinant of
#: differences): far wider than the bound of its floating-point error, ≈ 3.3e-16 of
#: ``|detleft| + |detright|`` (Shewchuk, "Adaptive precision floating-point arithmetic
#: and fast robust geometric predicates", 1997, the ``ccwerrboundA`` of orient2d).
_ORIENT_BAND = 1e-12


@njit(cache=True, nogil=True)
def _side(ax, ay, bx, by, cx, cy):
    """Side of ``c`` from the line ``a → b``: +1 left, -1 right, 0 too close to say
    (within :data:`_ORIENT_BAND` of the determinant's terms)."""
    left = (bx - ax) * (cy - ay)
    right = (by - ay) * (cx - ax)
    det = left - right
    band = _ORIENT_BAND * (abs(left) + abs(right))
    if det > band:
        return 1
    if det < -band:
        return -1
    return 0


@njit(cache=True, nogil=True)
def unit_vectors(lon, lat, out):
    """``out[i]`` = the unit vector of ``lon[i]``, ``lat[i]`` (deg): numpy's formula
    (:func:`.sphere.unit_vectors`) in one pass, with the same sines and cosines (the C
    library's, which numpy's float64 ``sin``/``cos`` call here: the same bits, tested)
    — 2.6× faster than numpy's five passes and their temporaries."""
    f = np.pi / 180.0
    for i in range(len(lon)):
        lo = lon[i] * f
        la = lat[i] * f
        cl = np.cos(la)
        out[i, 0] = cl * np.cos(lo)
        out[i, 1] = cl * np.sin(lo)
        out[i, 2] = np.sin(la)


@njit(cache=True, nogil=True)
def _apart(x, y, i, i1, j, j1):
    """Whether segments ``i → i1`` and ``j → j1`` are proven not to meet: the ends of
    one lie, both surely, on one side of the other's line."""
    s1 = _side(x[i], y[i], x[i1], y[i1], x[j], y[j])
    s2 = _side(x[i], y[i], x[i1], y[i1], x[j1], y[j1])
    if s1 != 0 and s1 == s2:
        return True
    s3 = _side(x[j], y[j], x[j1], y[j1], x[i], y[i])
    s4 = _side(x[j], y[j], x[j1], y[j1], x[i1], y[i1])
    return s3 != 0 and s3 == s4


@njit(cache=True, nogil=True)
def rings_simple(x, y, offsets, simple):
    """Set ``simple[r]`` when closed ring ``r`` (its first vertex not repeated at its
    end, no vertex repeated next to itself) is proven simple: every two edges meet at
    most at the vertex they share. False is *undecided*, not "crosses": a ring whose
    edges come within rounding of touching, or of folding back on each other, is left
    to an exact test (GEOS's).

    Proof by orientations with a band wider than their rounding error (never a
    tolerance on distances): two consecutive edges meet only at their shared vertex
    unless they are collinear and fold back; two other edges are apart when both ends
    of one lie surely on one side of the other's line, or when their x ranges (exact:
    the sweep below) or y ranges do not overlap. The sweep visits edges by their
    smallest x, so a ring of m edges costs O(m log m) plus its pairs that overlap.
    """
    n = len(offsets) - 1
    width = 0
    for r in range(n):
        width = max(width, offsets[r + 1] - offsets[r])
    xlo = np.empty(width)
    xhi = np.empty(width)
    ylo = np.empty(width)
    yhi = np.empty(width)
    for r in range(n):
        a = offsets[r]
        m = offsets[r + 1] - a
        simple[r] = False
        if m < 3:
            continue
        ok = True
        for k in range(m):
            if not (np.isfinite(x[a + k]) and np.isfinite(y[a + k])):
                ok = False
                break
        # consecutive edges p0 → p1 → p2: a fold back (collinear, turning back) overlaps
        for k in range(m):
            if not ok:
                break
            p0, p1, p2 = a + k, a + (k + 1) % m, a + (k + 2) % m
            ux, uy = x[p1] - x[p0], y[p1] - y[p0]
            vx, vy = x[p2] - x[p1], y[p2] - y[p1]
            if _side(x[p0], y[p0], x[p1], y[p1], x[p2], y[p2]) == 0 \
                    and not ux * vx + uy * vy > 0:
                ok = False
        if not ok:
            continue
        for k in range(m):
            k1 = a + (k + 1) % m
            xlo[k] = min(x[a + k], x[k1])
            xhi[k] = max(x[a + k], x[k1])
            ylo[k] = min(y[a + k], y[k1])
            yhi[k] = max(y[a + k], y[k1])
        order = np.argsort(xlo[:m])
        for s in range(m):
            if not ok:
                break
            i = order[s]
            for t in range(s + 1, m):
                j = order[t]
                if xlo[j] > xhi[i]:
                    break
                if ylo[j] > yhi[i] or ylo[i] > yhi[j]:
                    continue
                d = abs(i - j)
                if d == 1 or d == m - 1:
                    continue
                if not _apart(x, y, a + i, a + (i + 1) % m, a + j, a + (j + 1) % m):
                    ok = False
                    break
        simple[r] = ok


@njit(cache=True, nogil=True)
def _dot3(a0, a1, a2, b0, b1, b2):
    """a · b summed as numpy's ``einsum("ij,ij->i")`` sums three products here:
    (a0 b0 + a2 b2) + a1 b1 (what makes :func:`gnomonic_plane` give numpy's bits)."""
    return (a0 * b0 + a2 * b2) + a1 * b1


@njit(cache=True, nogil=True)
def _vector_sum(v, s, e):
    """The sum of vectors ``v[s:e]``, added in order (as ``np.bincount`` adds)."""
    c0 = 0.0
    c1 = 0.0
    c2 = 0.0
    for i in range(s, e):
        c0 += v[i, 0]
        c1 += v[i, 1]
        c2 += v[i, 2]
    return c0, c1, c2


@njit(cache=True, nogil=True, error_model="numpy")
def gnomonic_plane(v, offsets, x, y, cosd):
    """The gnomonic projection of each ring about its mean direction, as
    :func:`.sregion.gnomonic` defined it with numpy (centre = the normalised sum of the
    ring's unit vectors ``v``; east ``e1`` = z × centre, or y when the centre is a pole;
    north ``e2`` = centre × e1): ``x``, ``y`` and ``cosd`` (cosine from the centre) of
    every vertex, in one walk per ring instead of three gathered (N, 3) temporaries.
    A vertex 90° or more from its centre gets cosd ≤ 0 and an infinite or NaN x, y
    (numpy's division, not an error)."""
    for r in range(len(offsets) - 1):
        s, e = offsets[r], offsets[r + 1]
        c0, c1, c2 = _vector_sum(v, s, e)
        norm = np.sqrt((c0 * c0 + c1 * c1) + c2 * c2)
        if norm == 0.0:
            norm = 1.0
        c0 /= norm
        c1 /= norm
        c2 /= norm
        a0 = 0.0 * c2 - 1.0 * c1            # e1 = (0, 0, 1) × c, as np.cross
        a1 = 1.0 * c0 - 0.0 * c2
        a2 = 0.0 * c1 - 0.0 * c0
        if np.sqrt((a0 * a0 + a1 * a1) + a2 * a2) < 1e-9:
            a0 = 0.0
            a1 = 1.0
            a2 = 0.0
        norm = np.sqrt((a0 * a0 + a1 * a1) + a2 * a2)
        a0 /= norm
        a1 /= norm
        a2 /= norm
        b0 = c1 * a2 - c2 * a1              # e2 = c × e1
        b1 = c2 * a0 - c0 * a2
        b2 = c0 * a1 - c1 * a0
        for i in range(s, e):
            cv = _dot3(v[i, 0], v[i, 1], v[i, 2], c0, c1, c2)
            cosd[i] = cv
            x[i] = _dot3(v[i, 0], v[i, 1], v[i, 2], a0, a1, a2) / cv
            y[i] = _dot3(v[i, 0], v[i, 1], v[i, 2], b0, b1, b2) / cv


@njit(cache=True, nogil=True)
def next_dots(v, offsets, out):
    """``out[i]`` = v[i] · v[next vertex of its ring] (the cosine of each edge)."""
    for r in range(len(offsets) - 1):
        s, e = offsets[r], offsets[r + 1]
        for i in range(s, e):
            j = i + 1 if i + 1 < e else s
            out[i] = _dot3(v[i, 0], v[i, 1], v[i, 2], v[j, 0], v[j, 1], v[j, 2])


@njit(cache=True, nogil=True)
def signed_areas(x, y, offsets, out):
    """Planar shoelace area of each ring, as ``0.5 * bincount(ring, x y[next] - x[next] y)``
    sums it (in vertex order, from 0)."""
    for r in range(len(offsets) - 1):
        s, e = offsets[r], offsets[r + 1]
        acc = 0.0
        for i in range(s, e):
            j = i + 1 if i + 1 < e else s
            acc += x[i] * y[j] - x[j] * y[i]
        out[r] = 0.5 * acc


@njit(cache=True, nogil=True, error_model="numpy")
def densify_parts(x, y, offsets, max_len, limit, k):
    """How many parts each edge of :func:`.sregion.densify` is cut into (``k``, per
    vertex: ⌈length / max_len⌉, at least 1, as numpy's ``ceil(...).astype(int64)``
    then ``maximum(..., 1)`` gives it — a NaN, infinite or huge ratio gives 1); every
    edge of a ring that would pass ``limit`` vertices is left whole. Returns whether
    any edge is cut."""
    cut = False
    for r in range(len(offsets) - 1):
        s, e = offsets[r], offsets[r + 1]
        total = 0
        for i in range(s, e):
            j = i + 1 if i + 1 < e else s
            q = np.ceil(np.hypot(x[j] - x[i], y[j] - y[i]) / max_len[i])
            k[i] = np.int64(q) if q >= 1.0 and q < 9.2e18 else 1
            total += k[i]
        if total > limit:
            for i in range(s, e):
                k[i] = 1
        else:
            for i in range(s, e):
                if k[i] > 1:
                    cut = True
    return cut


@njit(cache=True, nogil=True)
def densify_fill(x, y, offsets, k, out_x, out_y, out_offsets):
    """The densified rings: each edge's ``k`` parts, its start first, at fractions
    j / k along it (``x + f (x_next - x)``, as :func:`.sregion.densify` computed it)."""
    at = 0
    out_offsets[0] = 0
    for r in range(len(offsets) - 1):
        s, e = offsets[r], offsets[r + 1]
        for i in range(s, e):
            j = i + 1 if i + 1 < e else s
            for m in range(k[i]):
                f = m / k[i]
                out_x[at] = x[i] + f * (x[j] - x[i])
                out_y[at] = y[i] + f * (y[j] - y[i])
                at += 1
        out_offsets[r + 1] = at


@njit(cache=True, nogil=True)
def unwrap_rings(lon, offsets, out):
    """Longitudes unwrapped along each ring, as :func:`.sregion.unwrap_lon` computed
    them with numpy: steps folded into [-180, 180) (0 at a ring's first vertex), one
    running sum over all the vertices in order, and each ring shifted so that its
    first vertex is its longitude in [0, 360)."""
    c = 0.0
    for r in range(len(offsets) - 1):
        s, e = offsets[r], offsets[r + 1]
        if e == s:
            continue
        c = c + 0.0                           # the step at a ring's start is 0
        shift = (lon[s] % 360.0) - c
        out[s] = c + shift
        for i in range(s + 1, e):
            c = c + (((lon[i] - lon[i - 1]) + 180.0) % 360.0 - 180.0)
            out[i] = c + shift


@njit(cache=True, nogil=True, error_model="numpy")
def area_centroids(u, lat, offsets, cx, cy):
    """Area centroid of each ring of unwrapped longitudes ``u`` and latitudes, as
    :func:`.sregion.ring_centroids` computed it with numpy (bincount sums in vertex
    order): the vertex mean where the ring has no area (|area| < 1e-12), NaN under 3
    vertices; longitude not yet folded."""
    for r in range(len(offsets) - 1):
        s, e = offsets[r], offsets[r + 1]
        a2 = 0.0
        sx = 0.0
        sy = 0.0
        su = 0.0
        sl = 0.0
        for i in range(s, e):
            j = i + 1 if i + 1 < e else s
            cross = u[i] * lat[j] - u[j] * lat[i]
            a2 += cross
            sx += (u[i] + u[j]) * cross
            sy += (lat[i] + lat[j]) * cross
            su += u[i]
            sl += lat[i]
        a = a2 / 2
        if e - s < 3:
            cx[r] = np.nan
            cy[r] = np.nan
        elif np.abs(a) < 1e-12:
            cx[r] = su / (e - s)
            cy[r] = sl / (e - s)
        else:
            cx[r] = sx / (6 * a)
            cy[r] = sy / (6 * a)


@njit(cache=True, nogil=True)
def polygon_caps(v, starts, counts, centre, cos_radius):
    """A cap holding each polygon (vertices ``v[starts[k]:starts[k] + counts[k]]``,
    unit vectors): its vertices' mean direction (``centre``) and the smallest cosine
    from it to a vertex (``cos_radius``), in one walk per polygon (the coverage MOC's
    test of polygons inside the union so far; any cap holding the polygon is right
    there, these numbers need not be numpy's bits)."""
    for k in range(len(starts)):
        s, e = starts[k], starts[k] + counts[k]
        c0, c1, c2 = _vector_sum(v, s, e)
        norm = max(np.sqrt(c0 * c0 + c1 * c1 + c2 * c2), 1e-300)
        c0 /= norm
        c1 /= norm
        c2 /= norm
        least = np.inf
        for i in range(s, e):
            least = min(least, v[i, 0] * c0 + v[i, 1] * c1 + v[i, 2] * c2)
        centre[k, 0] = c0
        centre[k, 1] = c1
        centre[k, 2] = c2
        cos_radius[k] = least


@njit(cache=True, nogil=True)
def fixed_point_text(q, digits, buf, ends):
    """Write ``" "`` + optional ``-`` + integer part + ``.`` + ``digits`` decimals of
    each ``q[k] / 10**digits`` (``q``: the numbers already scaled and rounded to
    integers) into ``buf``, one after the other; ``ends[k]``: the byte count after
    number ``k``. Returns the bytes written. Unsigned integer arithmetic only (its
    divisions by 10 compile to multiplications)."""
    scale = np.uint64(10) ** np.uint64(digits)
    ten = np.uint64(10)
    pos = 0
    for k in range(len(q)):
        x = q[k]
        buf[pos] = 32
        pos += 1
        if x < 0:
            buf[pos] = 45
            pos += 1
            x = -x
        ux = np.uint64(x)
        ip = ux // scale
        fp = ux - ip * scale
        n = 1
        t = ip
        while t >= ten:
            t //= ten
            n += 1
        for j in range(n - 1, -1, -1):
            buf[pos + j] = np.uint8(48) + np.uint8(ip % ten)
            ip //= ten
        pos += n
        buf[pos] = 46
        pos += 1
        for j in range(digits - 1, -1, -1):
            buf[pos + j] = np.uint8(48) + np.uint8(fp % ten)
            fp //= ten
        pos += digits
        ends[k] = pos
    return pos


#: Exact powers of ten (10**22 is the largest a double holds exactly).
_POW10 = np.array([10.0 ** k for k in range(23)])
#: The words of an STC-S polygon's head (lower case): the frames it may name besides
#: ``…Frame``.
_POLYGON = np.frombuffer(b"polygon", dtype=np.uint8)
_FRAME_SUFFIX = np.frombuffer(b"frame", dtype=np.uint8)
_ICRS = np.frombuffer(b"icrs", dtype=np.uint8)
_FK5 = np.frombuffer(b"fk5", dtype=np.uint8)
_J2000 = np.frombuffer(b"j2000", dtype=np.uint8)
_GALACTIC = np.frombuffer(b"galactic", dtype=np.uint8)
_UNKNOWN = np.frombuffer(b"unknown", dtype=np.uint8)


@njit(cache=True, nogil=True)
def _lower_is(data, at, word):
    """Whether ``data[at:at + len(word)]``, ASCII letters lowered, is ``word``."""
    for j in range(len(word)):
        c = data[at + j]
        if 65 <= c <= 90:
            c += 32
        if c != word[j]:
            return False
    return True


@njit(cache=True, nogil=True)
def _frame_word(data, p, e):
    """End of the frame word at ``p`` when it is one STC-S names (``…frame`` of more
    than 5 characters, ``icrs``, ``fk5``, ``j2000``, ``galactic``, ``unknown``, any
    case), else -1."""
    q = p
    while q < e and (48 <= data[q] <= 57 or 65 <= data[q] <= 90 or 97 <= data[q] <= 122
                     or data[q] == 95):
        q += 1
    n = q - p
    if n > 5 and _lower_is(data, q - 5, _FRAME_SUFFIX):
        return q
    if (n == 4 and _lower_is(data, p, _ICRS)) or (n == 3 and _lower_is(data, p, _FK5)) \
            or (n == 5 and _lower_is(data, p, _J2000)) \
            or (n == 8 and _lower_is(data, p, _GALACTIC)) \
            or (n == 7 and _lower_is(data, p, _UNKNOWN)):
        return q
    return -1


@njit(cache=True, nogil=True)
def _decimal(data, p, e):
    """The number ``-?digits[.digits]`` at ``p`` (ending at a space or ``e``), by
    Clinger's fast path: at most 15 digits, so ``digits / 10**decimals`` is one
    correctly rounded division of exact doubles — the double ``float()`` reads.
    Returns ``(value, end)``; end -1 for any other word (left to Python)."""
    neg = p < e and data[p] == 45
    q = p + 1 if neg else p
    m = 0
    digits = 0
    decimals = -1
    while q < e and data[q] != 32:
        c = data[q]
        if 48 <= c <= 57:
            m = m * 10 + (c - 48)
            digits += 1
            if decimals >= 0:
                decimals += 1
        elif c == 46 and decimals < 0:
            decimals = 0
        else:
            return 0.0, -1
        q += 1
    if digits == 0 or digits > 15:
        return 0.0, -1
    v = m / _POW10[max(decimals, 0)]
    return (-v if neg else v), q


@njit(cache=True, nogil=True)
def stcs_polygon_numbers(data, starts, ends, vals, counts, plain):
    """Read ``Polygon <frame> x y x y …`` texts (``data[starts[i]:ends[i]]``, ASCII) in
    the form this project writes: ``polygon`` in any case, one space, a frame word
    STC-S names, then numbers (:func:`_decimal`) between single spaces, an even count.
    Each such text's numbers go to ``vals`` one after the other, its vertex count to
    ``counts[i]``, and ``plain[i]`` is set; any other text (another shape, white
    space, an exponent, 16 digits, an odd count …) is left unset for Python's reader.
    Returns the numbers written."""
    pos = 0
    for i in range(len(starts)):
        p, e = starts[i], ends[i]
        plain[i] = False
        if e - p < 8 or not _lower_is(data, p, _POLYGON) or data[p + 7] != 32:
            continue
        p = _frame_word(data, p + 8, e)
        if p < 0 or (p < e and (data[p] != 32 or p + 1 == e)):
            continue
        p = p + 1 if p < e else p
        k = 0
        while p < e:
            v, q = _decimal(data, p, e)
            if q < 0 or (q < e and q + 1 == e):
                break
            vals[pos + k] = v
            k += 1
            p = q + 1 if q < e else q
        if p < e or k % 2:
            continue
        pos += k
        counts[i] = k // 2
        plain[i] = True
    return pos


@njit(cache=True, nogil=True, error_model="numpy")
def line_of_sight(cphi, clam, slam, sphi, image, cb, sb, cl, sl, dist, rsun, rsun2,
                  x, east, q, xyz):
    """Helioprojective → heliographic, the arithmetic between the trigonometry
    (:func:`.solar.hpc_to_hgc`, which computes the sines and cosines, and the
    ``arctan2``/``arcsin`` after, with numpy): per point ``i`` of image ``image[i]``,
    the distance ``d`` along the line of sight to the sphere of radius ``rsun``
    (``rsun2`` = rsun**2; NaN past the limb), the point's ``x`` and its ``east`` and
    north components in the observer's frame, ``q`` = north / rsun clipped to [-1, 1]
    (the sine of the latitude; NaN where ``d`` is not finite) and, when ``xyz`` has
    rows, the Carrington unit vector. numpy's formula in numpy's order
    (``(D cos a)**2 - D**2 + rsun**2``, ...), one pass instead of two dozen
    temporaries."""
    with_xyz = xyz.shape[0] > 0
    for i in range(len(cphi)):
        k = image[i]
        big_d = dist[k]
        cosa = cphi[i] * clam[i]
        t = big_d * cosa
        d = big_d * cosa - np.sqrt((t * t - big_d * big_d) + rsun2)
        px = d * cphi[i] * slam[i]
        py = d * sphi[i]
        pz = big_d - d * cosa
        e = pz * cb[k] - py * sb[k]
        n = py * cb[k] + pz * sb[k]
        x[i] = px
        east[i] = e
        s = n / rsun
        if not np.isfinite(d):
            s = np.nan
        elif s < -1.0:
            s = -1.0
        elif s > 1.0:
            s = 1.0
        q[i] = s
        if with_xyz:
            xyz[i, 0] = (cl[k] * e - sl[k] * px) / rsun
            xyz[i, 1] = (sl[k] * e + cl[k] * px) / rsun
            xyz[i, 2] = n / rsun


@njit(cache=True, nogil=True, error_model="numpy")
def carrington_degrees(lon_rad, lat_rad, image, l0, lon, lat):
    """Longitudes ``rad2deg(lon_rad) + l0[image]`` taken into [0, 360) as ``np.mod``
    takes them, and latitudes ``rad2deg(lat_rad)``, in place of ``lon``, ``lat``
    (numpy's constants, 180/π; NaN stays NaN)."""
    r2d = 180.0 / np.pi
    for i in range(len(lon_rad)):
        lon[i] = (lon_rad[i] * r2d + l0[image[i]]) % 360.0
        lat[i] = lat_rad[i] * r2d


@njit(cache=True, nogil=True)
def kept_vertices(keep, offsets, x, y, lon, lat, xyz, ox, oy, olon, olat, oxyz, new_offsets):
    """The vertices ``keep`` of each ring, the same vertex's values from ``x, y, lon,
    lat`` and the rows of ``xyz``, in order, into ``ox, oy, olon, olat, oxyz`` (sized
    for ``keep.sum()``), and the rings' new ``new_offsets``: five boolean selections
    and a count per ring in one pass."""
    p = 0
    new_offsets[0] = 0
    for r in range(len(offsets) - 1):
        for i in range(offsets[r], offsets[r + 1]):
            if keep[i]:
                ox[p] = x[i]
                oy[p] = y[i]
                olon[p] = lon[i]
                olat[p] = lat[i]
                oxyz[p, 0] = xyz[i, 0]
                oxyz[p, 1] = xyz[i, 1]
                oxyz[p, 2] = xyz[i, 2]
                p += 1
        new_offsets[r + 1] = p


@njit(cache=True, nogil=True, error_model="numpy")
def off_corner_grid(x, y, out):
    """Whether each point lies off the grid of pixel corners (the half-integers):
    ``|x mod 1 − 0.5| > 1e-9`` or the same of ``y``, with ``np.mod``'s values (Python's
    ``%``), into ``out``; one pass instead of nine over the outline."""
    for i in range(len(x)):
        out[i] = abs(x[i] % 1.0 - 0.5) > 1e-9 or abs(y[i] % 1.0 - 0.5) > 1e-9
