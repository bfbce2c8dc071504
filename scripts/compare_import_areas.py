"""Compare two DaCHS import areas file by file, masking what differs from run to run.

Used by scripts/compare_import_areas.sh (which builds both areas from two revisions on
the embedded samples); it can also be run on any two import-area folders:

    python scripts/compare_import_areas.py [--dates YYYYmmdd,...] \
        [--root-a DIR --root-b DIR] AREA_A AREA_B

Masked, in file contents and in relative paths:
  * ISO date-times of the given UTC dates (default today): 2026-12-04T20:31:07 with an
    optional fraction, Z or +hh:mm, a space instead of the T too  -> <ISOTIME>
  * run ids 20261204T203107Z of the given dates                    -> <RUNID>
  * the absolute folder a side ran from (--root-a / --root-b), if it appears in a file
    -> <ROOT> (reported per file; the two revisions run from different folders)
  * a sha256 (64 hex digits) equal to the sha256 of a file of the same tree
    -> <sha256 of PATH>: the manifests hash files that hold stamps; those files are
    compared themselves. Every manifest.json's "files" entries are also checked against
    the files of its own tree (sha256 and bytes): a mismatch is a difference.

How files are compared:
  * Parquet: read with pyarrow, to pandas, the same masks on string columns,
    DataFrame.equals (Arrow schema, schema metadata and row groups are reported as
    notes, not counted as differences).
  * FITS (.fits, .fit, .fts): masks on the header cards only, data bytes compared raw;
    whether each smoc.fits / tmoc.fits is byte-identical raw is reported.
  * Everything else (.fits.gz included, not decompressed): the bytes decoded as utf-8
    (surrogateescape), masked, compared.
  * The set of paths (after masking) must be the same on both sides.

Exit: 0 every file identical after masking and the same set of paths, 1 otherwise.
"""
from __future__ import annotations

import argparse
import datetime as dt
import difflib
import hashlib
import json
import os
import re
import sys
from pathlib import Path

HEX64 = re.compile(r"(?<![0-9A-Fa-f])[0-9a-fA-F]{64}(?![0-9A-Fa-f])")
MAX_EXCERPT = 220  # characters of a line shown in an excerpt


class Masker:
    """The masks of one side: run stamps of the given dates, its root folder, the sha256
    of its own files (after :meth:`index_hashes`); records which files needed them."""

    def __init__(self, dates: list[str], root: str | None):
        dates = sorted(set(d for d in dates if d))
        iso = "|".join(f"{d[:4]}-{d[4:6]}-{d[6:8]}" for d in dates)
        runid = "|".join(dates)
        self.iso = re.compile(rf"(?:{iso})[T ]\d{{2}}:\d{{2}}:\d{{2}}"
                              rf"(?:[.,]\d+)?(?:Z|[+-]\d{{2}}:?\d{{2}})?")
        self.runid = re.compile(rf"(?:{runid})T\d{{6}}Z")
        self.root = root.rstrip("/") if root else None
        self.root_hits: set[str] = set()
        self.hashes: dict[str, str] = {}  # sha256 of each file of the tree -> its masked path
        self.hash_hits: set[str] = set()

    def index_hashes(self, area: Path):
        """Remember the sha256 of every file of ``area`` (for the <sha256 of PATH> mask)."""
        for p in sorted(area.rglob("*")):
            if p.is_file() and not p.is_symlink():
                h = hashlib.sha256(p.read_bytes()).hexdigest()
                self.hashes.setdefault(h, self.path(str(p.relative_to(area))))

    def text(self, s: str, where: str | None = None) -> str:
        """``s`` masked; ``where`` (a relative path) is recorded if a root or hash was masked."""
        if self.root and self.root in s:
            if where:
                self.root_hits.add(where)
            s = s.replace(self.root, "<ROOT>")
        if self.hashes:
            def sub(mo):
                name = self.hashes.get(mo.group(0).lower())
                if name is None:
                    return mo.group(0)
                if where:
                    self.hash_hits.add(where)
                return f"<sha256 of {name}>"
            s = HEX64.sub(sub, s)
        s = self.runid.sub("<RUNID>", s)
        return self.iso.sub("<ISOTIME>", s)

    def path(self, rel: str) -> str:
        """A relative path with its run ids and date-times masked."""
        return self.iso.sub("<ISOTIME>", self.runid.sub("<RUNID>", rel))


def short(s: str) -> str:
    """repr of ``s``, cut to MAX_EXCERPT characters."""
    r = repr(s)
    return r if len(r) <= MAX_EXCERPT else r[:MAX_EXCERPT] + "…"


def walk(area: Path, m: Masker):
    """{normalized relative path: (real relative path, kind)}; kind file|symlink|dir."""
    out, clashes = {}, []
    for dirpath, dirnames, filenames in os.walk(area):
        d = Path(dirpath)
        for name in sorted(dirnames + filenames):
            p = d / name
            rel = str(p.relative_to(area))
            kind = "symlink" if p.is_symlink() else "dir" if p.is_dir() else "file"
            if kind == "dir" and any(os.scandir(p)):
                continue  # a non-empty folder is described by its files
            key = m.path(rel)
            if key in out:
                clashes.append((key, out[key][0], rel))
            out[key] = (rel, kind)
    return out, clashes


# ---------------------------------------------------------------- text / bytes
def text_diff(ta: str, tb: str) -> str:
    """The first differing line of two masked texts, and a few lines of diff after it."""
    la, lb = ta.splitlines(keepends=True), tb.splitlines(keepends=True)
    for i, (x, y) in enumerate(zip(la, lb)):
        if x != y:
            col = next((k for k, (c1, c2) in enumerate(zip(x, y)) if c1 != c2), min(len(x), len(y)))
            lo = max(0, col - 60)
            return (f"first differing line {i + 1} (column {col + 1}):\n"
                    f"      A: {short(x[lo:lo + 200])}\n      B: {short(y[lo:lo + 200])}"
                    + extra_lines(la, lb))
    if len(la) != len(lb):
        i = min(len(la), len(lb))
        nxt = la[i] if len(la) > i else lb[i]
        return (f"A has {len(la)} lines, B {len(lb)}; first extra line {i + 1} "
                f"(in {'A' if len(la) > i else 'B'}): {short(nxt)}")
    return "differ (no line difference found?)"


def extra_lines(la, lb, n=8) -> str:
    """A few lines of unified diff after the first difference (context 0)."""
    d = list(difflib.unified_diff(la, lb, "A", "B", n=0, lineterm=""))[2:2 + n]
    if not d:
        return ""
    return "\n      unified diff (first lines):\n" + "\n".join(
        "        " + (ln[:MAX_EXCERPT].rstrip("\n")) for ln in d)


def cmp_text(fa: Path, fb: Path, ma: Masker, mb: Masker, rel: str):
    """(identical after masking, why not, info) of two files compared as masked text."""
    ba, bb = fa.read_bytes(), fb.read_bytes()
    if ba == bb and not (ma.root and ma.root.encode() in ba):
        return True, "", {"raw_identical": True}
    ta = ma.text(ba.decode("utf-8", "surrogateescape"), rel)
    tb = mb.text(bb.decode("utf-8", "surrogateescape"), rel)
    info = {"raw_identical": ba == bb}
    if ta == tb:
        return True, "", info
    return False, text_diff(ta, tb), info


# ---------------------------------------------------------------- FITS
def fits_hdus(b: bytes):
    """[(header bytes, data bytes incl. padding)] of a FITS file; raises on bad layout."""
    out, pos = [], 0
    while pos < len(b):
        start = pos
        cards = {}
        end = False
        while not end:
            block = b[pos:pos + 2880]
            if len(block) < 2880:
                raise ValueError("truncated header")
            pos += 2880
            for k in range(36):
                card = block[k * 80:(k + 1) * 80].decode("ascii", "replace")
                key = card[:8].strip()
                if key == "END":
                    end = True
                    break
                if card[8:10] == "= ":
                    val = card[10:].split("/")[0].strip()
                    cards[key] = val
        header = b[start:pos]
        bitpix = abs(int(cards.get("BITPIX", "8")))
        naxis = int(cards.get("NAXIS", "0"))
        n = 0
        if naxis:
            n = 1
            for i in range(1, naxis + 1):
                n *= int(cards.get(f"NAXIS{i}", "0"))
        n = bitpix // 8 * int(cards.get("GCOUNT", "1")) * (int(cards.get("PCOUNT", "0")) + n)
        size = (n + 2879) // 2880 * 2880
        out.append((header, b[pos:pos + size]))
        pos += size
    return out


def cmp_fits(fa: Path, fb: Path, ma: Masker, mb: Masker, rel: str):
    """Two FITS files: header cards masked, data bytes raw (as masked text if the layout
    is not parsed)."""
    ba, bb = fa.read_bytes(), fb.read_bytes()
    info = {"raw_identical": ba == bb}
    if ba == bb:
        return True, "", info
    try:
        ha, hb = fits_hdus(ba), fits_hdus(bb)
    except Exception as e:  # not a layout this parser knows: whole file as text
        ok, why, _ = cmp_text(fa, fb, ma, mb, rel)
        if ok:
            return True, "", info
        return False, f"(FITS layout not parsed: {e}; compared as masked bytes) " + why, info
    if len(ha) != len(hb):
        return False, f"HDUs: A {len(ha)}, B {len(hb)}", info
    for i, ((h1, d1), (h2, d2)) in enumerate(zip(ha, hb)):
        c1 = [h1[k:k + 80].decode("ascii", "surrogateescape") for k in range(0, len(h1), 80)]
        c2 = [h2[k:k + 80].decode("ascii", "surrogateescape") for k in range(0, len(h2), 80)]
        m1 = [ma.text(c, rel) for c in c1]
        m2 = [mb.text(c, rel) for c in c2]
        if m1 != m2:
            for j, (x, y) in enumerate(zip(m1, m2)):
                if x != y:
                    return False, (f"HDU {i} header card {j + 1}:\n      A: {short(x.rstrip())}\n"
                                   f"      B: {short(y.rstrip())}"), info
            return False, f"HDU {i} header: A {len(m1)} cards, B {len(m2)}", info
        if d1 != d2:
            k = next((k for k, (x, y) in enumerate(zip(d1, d2)) if x != y), min(len(d1), len(d2)))
            return False, (f"HDU {i} data: {len(d1)} vs {len(d2)} bytes, first differing byte "
                           f"{k}: A {d1[k:k + 16].hex()} B {d2[k:k + 16].hex()}"), info
    return True, "", info


# ---------------------------------------------------------------- Parquet
def mask_frame(df, m: Masker, rel: str):
    """A copy of ``df`` with the masks applied to its string (and string category) columns."""
    import pandas as pd
    df = df.copy()
    for c in df.columns:
        s = df[c]
        if isinstance(s.dtype, pd.CategoricalDtype):
            if s.cat.categories.dtype == object:
                df[c] = s.astype(object).map(lambda v: m.text(v, rel) if isinstance(v, str) else v)
            continue
        if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
            df[c] = s.map(lambda v: m.text(v, rel) if isinstance(v, str) else v)
    return df


def frames_equal(a, b) -> bool:
    """DataFrame.equals, or cell reprs when the cells hold arrays."""
    try:
        return bool(a.equals(b))
    except Exception:  # cells holding arrays: compare by repr
        return a.shape == b.shape and list(a.columns) == list(b.columns) and all(
            list(map(repr, a[c])) == list(map(repr, b[c])) for c in a.columns)


def cell_eq(x, y) -> bool:
    """Two cells equal (NaN equals NaN; arrays element-wise)."""
    import numpy as np
    try:
        if isinstance(x, float) and isinstance(y, float) and np.isnan(x) and np.isnan(y):
            return True
    except Exception:
        pass
    try:
        r = x == y
        return bool(r.all()) if hasattr(r, "all") else bool(r)
    except Exception:
        return repr(x) == repr(y)


def frame_diff(a, b) -> str:
    """Where two masked DataFrames differ: shape, columns, dtypes, first differing cells."""
    lines = []
    if a.shape != b.shape:
        lines.append(f"shape A {a.shape}, B {b.shape}")
    if list(a.columns) != list(b.columns):
        sa, sb = set(a.columns), set(b.columns)
        lines.append(f"columns only in A: {sorted(sa - sb)}; only in B: {sorted(sb - sa)}"
                     + ("" if sa != sb else "; same set, other order"))
    common = [c for c in a.columns if c in set(b.columns)]
    dt = [f"{c}: {a[c].dtype} vs {b[c].dtype}" for c in common if a[c].dtype != b[c].dtype]
    if dt:
        lines.append("dtypes differ: " + "; ".join(dt[:6]))
    n = min(len(a), len(b))
    shown = 0
    for c in common:
        xa, xb = a[c].iloc[:n].tolist(), b[c].iloc[:n].tolist()
        bad = [i for i in range(n) if not cell_eq(xa[i], xb[i])]
        if bad:
            i = bad[0]
            lines.append(f"column {c!r}: {len(bad)} of {n} rows differ; first row {i}: "
                         f"A {short(str(xa[i]))[:100]} | B {short(str(xb[i]))[:100]}")
            shown += 1
            if shown >= 6:
                lines.append("…")
                break
    if not shown and a.shape == b.shape and not dt:
        # equal values, other index or metadata
        if not a.index.equals(b.index):
            lines.append(f"index differs: A {a.index[:5].tolist()} B {b.index[:5].tolist()}")
    return "\n      ".join(lines) or "DataFrame.equals is False (no cell difference found)"


def cmp_parquet(fa: Path, fb: Path, ma: Masker, mb: Masker, rel: str):
    """Two Parquet files compared as masked tables; schema and row groups go to ``info``."""
    import pyarrow.parquet as pq
    info = {"raw_identical": fa.read_bytes() == fb.read_bytes()}
    ta, tb = pq.read_table(fa), pq.read_table(fb)
    sa = ta.schema.remove_metadata() if ta.schema.metadata else ta.schema
    sb = tb.schema.remove_metadata() if tb.schema.metadata else tb.schema
    info["arrow_schema_equal"] = sa.equals(sb)
    info["schema_metadata_equal"] = (ta.schema.metadata or {}) == (tb.schema.metadata or {})
    if not info["arrow_schema_equal"]:
        diffs = [f"{f1.name}: {f1.type} vs {f2.type}"
                 for f1, f2 in zip(sa, sb) if not f1.equals(f2)]
        info["schema_diff"] = "; ".join(diffs[:6]) or f"A {len(sa)} fields, B {len(sb)}"
    fa_meta = pq.ParquetFile(fa).metadata
    fb_meta = pq.ParquetFile(fb).metadata
    info["row_groups"] = (fa_meta.num_row_groups, fb_meta.num_row_groups)
    da, db = mask_frame(ta.to_pandas(), ma, rel), mask_frame(tb.to_pandas(), mb, rel)
    if frames_equal(da, db):
        return True, "", info
    return False, frame_diff(da, db), info


# ---------------------------------------------------------------- manifests
def check_manifests(area: Path) -> list[str]:
    """Every manifest.json's "files" {relpath: {sha256, bytes}} against its folder."""
    out = []
    for man in sorted(area.rglob("manifest.json")):
        try:
            files = json.loads(man.read_text(encoding="utf-8")).get("files") or {}
        except Exception as e:
            out.append(f"{man.relative_to(area)}: unreadable ({e})")
            continue
        for rel, ent in files.items():
            f = man.parent / rel
            if not isinstance(ent, dict):
                continue
            if not f.is_file():
                out.append(f"{man.relative_to(area)}: {rel} missing")
                continue
            b = f.read_bytes()
            if "sha256" in ent and hashlib.sha256(b).hexdigest() != ent["sha256"]:
                out.append(f"{man.relative_to(area)}: sha256 of {rel} does not match")
            if "bytes" in ent and len(b) != ent["bytes"]:
                out.append(f"{man.relative_to(area)}: {rel} has {len(b)} bytes, "
                           f"manifest {ent['bytes']}")
    return out


# ---------------------------------------------------------------- main
def main(argv=None) -> int:
    """Compare two areas, print the report; 0 all identical, 1 differences."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("area_a")
    ap.add_argument("area_b")
    ap.add_argument("--dates", default="",
                    help="UTC dates YYYYmmdd to mask, comma-separated (default today)")
    ap.add_argument("--root-a", help="folder side A ran from, masked as <ROOT> in A")
    ap.add_argument("--root-b", help="folder side B ran from, masked as <ROOT> in B")
    args = ap.parse_args(argv)
    today = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d")
    dates = [d for d in args.dates.split(",") if d] or [today]
    ma, mb = Masker(dates, args.root_a), Masker(dates, args.root_b)
    A, B = Path(args.area_a), Path(args.area_b)
    wa, clash_a = walk(A, ma)
    wb, clash_b = walk(B, mb)
    ma.index_hashes(A)
    mb.index_hashes(B)
    print(f"\nmasking dates {', '.join(sorted(set(dates)))}; A = {A}; B = {B}")
    problems = 0
    for side, clashes in (("A", clash_a), ("B", clash_b)):
        for key, r1, r2 in clashes:
            print(f"PATH CLASH in {side}: {r1} and {r2} both normalize to {key}")
            problems += 1
    for side, area in (("A", A), ("B", B)):
        for msg in check_manifests(area):
            print(f"MANIFEST MISMATCH in {side}: {msg}")
            problems += 1
    only_a = sorted(set(wa) - set(wb))
    only_b = sorted(set(wb) - set(wa))
    for k in only_a:
        print(f"ONLY IN A: {wa[k][0]}  ({wa[k][1]})")
    for k in only_b:
        print(f"ONLY IN B: {wb[k][0]}  ({wb[k][1]})")
    common = sorted(set(wa) & set(wb))
    n_same, differing, notes = 0, [], []
    raw = {}
    for key in common:
        ra, ka = wa[key]
        rb, kb = wb[key]
        fa, fb = A / ra, B / rb
        try:
            if ka != kb:
                ok, why, info = False, f"kind {ka} vs {kb}", {}
            elif ka == "symlink":
                ta, tb = ma.text(os.readlink(fa), key), mb.text(os.readlink(fb), key)
                ok, why, info = ta == tb, f"symlink -> {os.readlink(fa)} vs {os.readlink(fb)}", {}
            elif ka == "dir":
                ok, why, info = True, "", {}
            elif key.endswith(".parquet"):
                ok, why, info = cmp_parquet(fa, fb, ma, mb, key)
            elif key.endswith((".fits", ".fit", ".fts")):
                ok, why, info = cmp_fits(fa, fb, ma, mb, key)
            else:
                ok, why, info = cmp_text(fa, fb, ma, mb, key)
        except Exception as e:
            ok, why, info = False, f"comparison failed: {type(e).__name__}: {e}", {}
        raw[key] = info.get("raw_identical")
        if key.endswith(".parquet") and info:
            if not info.get("arrow_schema_equal", True):
                notes.append(f"{key}: Arrow schema differs ({info.get('schema_diff')})")
            if not info.get("schema_metadata_equal", True):
                notes.append(f"{key}: Arrow schema metadata (e.g. pandas) differs")
            if info.get("row_groups") and info["row_groups"][0] != info["row_groups"][1]:
                ra_, rb_ = info["row_groups"]
                notes.append(f"{key}: row groups A {ra_}, B {rb_}")
        if ok:
            n_same += 1
        else:
            differing.append((key, why))

    print(f"\nfiles compared: {len(common)} (A has {len(wa)}, B has {len(wb)}; "
          f"only in A: {len(only_a)}, only in B: {len(only_b)})")
    print(f"identical after masking: {n_same}")
    print(f"raw byte-identical: {sum(1 for k in common if raw.get(k))} of {len(common)}")
    for name in ("smoc.fits", "tmoc.fits"):
        hits = [k for k in common if k.endswith("/" + name) or k == name]
        for k in hits:
            print(f"{k}: raw byte-identical = {bool(raw.get(k))}")
        if not hits:
            print(f"{name}: not present in both areas")
    nonraw = [k for k in common if raw.get(k) is False and k not in {d[0] for d in differing}]
    if nonraw:
        print(f"identical only after masking / as tables ({len(nonraw)}):")
        for k in nonraw:
            print(f"  {k}")
    hits = sorted(ma.root_hits | mb.root_hits)
    if hits:
        print(f"clone folder masked as <ROOT> in ({len(hits)}): " + ", ".join(hits))
    hh = sorted(ma.hash_hits | mb.hash_hits)
    if hh:
        print(f"sha256 of files of the tree replaced by <sha256 of PATH> in ({len(hh)}): "
              + ", ".join(hh))
    if notes:
        print("notes (not counted as differences):")
        for n in notes:
            print(f"  {n}")
    if differing:
        print(f"\nDIFFERING FILES ({len(differing)}):")
        for key, why in differing:
            print(f"- {key}\n      {why}")
    ok = not differing and not only_a and not only_b and not problems
    print("\nRESULT: " + ("ALL IDENTICAL" if ok else "DIFFERENCES FOUND"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
