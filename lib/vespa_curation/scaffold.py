"""``vespa-curate collection new``: a declaration proposed from a folder of files.

:func:`propose` scans the folder: it groups the files by kind (extension and name
pattern, digits and version suffixes generalised: ``wi_wa_rad1_l3-akr_*_v*.cdf``),
chooses the reader (CDF → ``vespa-cdf``, TFCat JSON → ``tfcat``, FITS → ``fits``), reads
the first file of the largest group and lists the ``VESPA_*`` attributes that name
epn_core columns (they become ``columns``), those that do not (reported), and the
required columns nothing fills (they need a constant: ``--set column=value``). It writes
``parameters/collections/<name>.yaml``; :func:`dry_run` then maps and validates the first
files, so the curator sees what a row will look like and what is missing.
"""
from __future__ import annotations

import re
import os
from pathlib import Path
from typing import Mapping

import pandas as pd
import yaml

from . import epncore
from .formats.cdf import TIME_VARIABLES, guess_layout, open_cdf, read_vespa_cdf
from .formats.fits import read_fits_header
from .formats.tfcat import read_catalogue
from .sources.files import file_stem
from .services.from_yaml import MUST_FILL, folder, load_collection

READERS = {".cdf": "vespa-cdf", ".json": "tfcat", ".fits": "fits", ".fts": "fits"}


def pattern_of(name: str) -> str:
    """``wi_wa_rad1_l3-akr_20000101_v01.cdf`` → ``wi_wa_rad1_l3-akr_*_v*.cdf``: runs of
    four or more digits and the version suffix generalised."""
    stem, dot, ext = name.partition(".")
    stem = re.sub(r"_[vV]\d+(?:\.\d+)*$", "_v*", stem)
    stem = re.sub(r"\d{4,}", "*", stem)
    return f"{stem}{dot}{ext}"


def scan(root: Path) -> list[tuple[str, str, list[Path]]]:
    """(pattern, reader, files) of each kind of data file under ``root``, largest first
    (files of no known reader — quicklooks, READMEs — are left out)."""
    groups: dict[tuple[str, str], list[Path]] = {}
    for p in sorted(root.rglob("*")):
        if not p.is_file():
            continue
        ext = p.suffix.lower()
        reader = READERS.get(ext)
        if reader == "tfcat" and not _is_tfcat(p):
            continue
        if reader:
            groups.setdefault((pattern_of(p.name), reader), []).append(p)
    return sorted(((k[0], k[1], v) for k, v in groups.items()), key=lambda g: -len(g[2]))


def _is_tfcat(p: Path) -> bool:
    head = p.read_text(encoding="utf-8", errors="replace")[:4000]
    return '"FeatureCollection"' in head and '"crs"' in head


def _inspect(files: list[Path], reader: str) -> tuple[Path, dict, dict]:
    """(the first readable file, its record fields, the ``files:`` keys its layout
    needs): for a CDF the time, frequency and data variables, guessed from their
    types, units and DEPEND_1."""
    errors = []
    for path in files[:5]:
        try:
            if reader != "vespa-cdf":
                read = {"tfcat": read_catalogue, "fits": read_fits_header}[reader]
                return path, read(path), {}
            layout = guess_layout(open_cdf(path))
            if not layout["frequency"]:
                raise ValueError("no frequency axis (a variable whose UNITS is a "
                                 "frequency, or the data variable's DEPEND_1)")
            keys = {"frequency": layout["frequency"]}
            if layout["time"] not in (None, *TIME_VARIABLES[:1]):
                keys["time"] = layout["time"]
            if layout["data"]:
                keys["spectrum_variable"] = layout["data"]
            return path, read_vespa_cdf(path, layout["frequency"], layout["time"]), keys
        except (ValueError, OSError) as exc:
            errors.append(f"{path.name}: {exc}")
    raise ValueError("no readable file among the first ones: " + "; ".join(errors))


def propose(name: str, root: Path, doi: str | None = None, bib: str | None = None,
            sets: Mapping[str, str] | None = None) -> tuple[dict, dict]:
    """(the declaration, what the scan found) for the files under ``root``."""
    kinds = scan(root)
    if not kinds:
        raise ValueError(f"no CDF, TFCat or FITS file under {root}")
    pattern, reader, files = kinds[0]
    first, fields, layout = _inspect(files, reader)
    attrs = {k[len("VESPA_"):].lower(): v for k, v in fields.items()
             if k.startswith("VESPA_") and not k.endswith("_UNIT")}
    columns = sorted(c for c in attrs if c in epncore.COLUMNS and c not in (
        "time_min", "time_max", "spectral_range_min", "spectral_range_max",
        "time_sampling_step_min", "time_sampling_step_max"))
    unknown = sorted(c for c in attrs if c not in epncore.COLUMNS
                     and c not in ("time_sampling_step",))
    constants = {k: yaml.safe_load(v) if isinstance(v, str) else v
                 for k, v in (sets or {}).items()}
    if reader == "tfcat":
        constants.setdefault("dataproduct_type", "ca")
    missing = [c for c in MUST_FILL if c not in columns and c not in constants]
    target = attrs.get("target_name") or constants.get("target_name")
    decl = {
        "title": str(fields.get("TITLE") or fields.get("LOGICAL_SOURCE_DESCRIPTION")
                     or name.replace("_", " ")),
        "description": f"Collection {name}: {len(files)} file(s) {pattern} (describe it "
                       "here).",
        "creator": str(fields.get("PI_NAME") or fields.get("PROJECT")
                       or "Observatoire de Paris (edit)"),
        "subjects": [str(target).split(">")[0].split("#")[0]] if target else [name],
        **({"doi": doi} if doi else {}), **({"bib_reference": bib} if bib else {}),
        "files": {"patterns": [pattern], "reader": reader, **layout},
        **({"columns": columns} if columns else {}),
        "constants": constants,
        **({"links": links} if (links := propose_links(root, files, bib)) else {}),
        "archive_url": f"https://example.org/{name}",
        "source": source_of(root),
    }
    found = {"kinds": [(p, r, len(f)) for p, r, f in kinds], "columns": columns,
             "unknown_attributes": unknown, "missing": missing, "first_file": str(first),
             "links": decl.get("links", [])}
    return decl, found


#: Quicklooks found beside data files by name: extension → content type.
QUICKLOOKS = {".png": "image/png", ".jpg": "image/jpeg", ".gif": "image/gif",
              ".pdf": "application/pdf"}


def propose_links(root: Path, files: list[Path], bib: str | None) -> list[dict]:
    """Datalinks by naming: a quicklook ``{stem}.<png|jpg|gif|pdf>`` beside a data
    file (#preview), a README of the folder (#documentation), the article."""
    out = []
    for ext, ctype in QUICKLOOKS.items():
        if any(p.with_name(file_stem(p.name) + ext).is_file() for p in files):
            out.append({"semantics": "#preview", "file": "{stem}" + ext,
                        "content_type": ctype,
                        "description": f"Quicklook of the data file ({ext[1:].upper()})"})
    readme = sorted(p for p in root.iterdir() if p.is_file()
                    and p.name.upper().startswith("README"))
    if readme:
        out.append({"semantics": "#documentation", "file": readme[0].name,
                    "content_type": "text/plain" if readme[0].suffix in ("", ".txt")
                    else "text/markdown" if readme[0].suffix == ".md" else "text/html",
                    "description": "README of the collection"})
    if bib:
        url = (f"https://doi.org/{bib}" if bib.startswith("10.")
               else f"https://ui.adsabs.harvard.edu/abs/{bib}")
        out.append({"semantics": "#documentation", "url": url,
                    "description": "The article presenting the data"})
    return out


def source_of(root: Path) -> str:
    """``files:DIR`` for the folder: relative to the project when inside it."""
    from .paths import ROOT
    root = root.resolve()
    try:
        return f"files:{root.relative_to(ROOT).as_posix()}"
    except ValueError:
        return f"files:{root}"


def render(name: str, decl: Mapping) -> str:
    """The declaration's YAML, with a head saying what to edit."""
    head = (f"# {name} — proposed by `vespa-curate collection new`: edit the title, "
            "description, creator and\n# subjects, and check the constants "
            "(docs/services.md, \"Collections declared in YAML\").\n")
    return head + yaml.safe_dump(dict(decl), sort_keys=False, allow_unicode=True,
                                 width=88)


def write(name: str, decl: Mapping, overwrite: bool = False) -> Path:
    """Write ``parameters/collections/<name>.yaml`` (refused when it exists, unless
    ``overwrite``), and check it loads."""
    path = folder() / f"{name}.yaml"
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists (use --force to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(render(name, decl), encoding="utf-8")
    try:
        _loads(tmp, name)
    except Exception:
        tmp.unlink()
        raise
    os.replace(tmp, path)
    return path


def _loads(tmp: Path, name: str) -> None:
    """Refuse (DeclarationError) a declaration that would not load, before it is in
    place where ``vespa-curate list`` and ``run all`` find it."""
    import shutil
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        shutil.copy(tmp, Path(d) / f"{name}.yaml")
        load_collection(Path(d) / f"{name}.yaml")


def dry_run(name: str, n: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Map and validate the first ``n`` files of the collection, as the harvest does,
    writing nothing: (accepted rows, quarantine lines)."""
    from .config import load_config
    from .harvest import map_validate, preflight
    from .sources import open_source
    from .times import utc_now
    cfg = load_config(name, overrides={"limit": n, "workers": 1})
    preflight(cfg)
    svc = load_collection(folder() / f"{name}.yaml")
    src = open_source(cfg["source"])
    rows, quarantine = [], []
    try:
        for chunk in svc.source.records(src, cfg, None):
            acc, q, _ = map_validate(name, chunk, cfg, utc_now())
            rows.append(acc)
            quarantine.append(q)
    finally:
        src.close()
    return (pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(),
            pd.concat(quarantine, ignore_index=True) if quarantine else pd.DataFrame())


def summary(found: Mapping, rows: pd.DataFrame | None = None,
            quarantine: pd.DataFrame | None = None) -> str:
    """What the curator reads after ``collection new``."""
    lines = ["kinds of files: " + "; ".join(f"{p} ({r}, {k} file(s))"
                                            for p, r, k in found["kinds"]),
             "columns from VESPA_* attributes: " + (", ".join(found["columns"]) or "none"),
             "VESPA_* attributes naming no EPN-TAP column (reported per row): "
             + (", ".join(found["unknown_attributes"]) or "none")]
    lines.append("links by naming: " + (", ".join(
        f"{k['semantics']} {k.get('file') or k.get('url')}" for k in found["links"])
        or "none"))
    lines.append("EDIT archive_url (the folder's public URL): until then access_url "
                 "points to example.org")
    if found["missing"]:
        lines.append("REQUIRED columns nothing fills (give them with --set column=value "
                     "or under constants): " + ", ".join(found["missing"]))
    if rows is not None and len(rows):
        row = rows.iloc[0]
        lines.append(f"a row will look like ({len(rows)} row(s) from the first files):")
        lines += [f"  {c:28s} {row[c]}" for c in rows.columns
                  if not str(c).startswith("qa_") and _shown(row[c])]
    if quarantine is not None:
        for _, q in quarantine.iterrows():
            lines.append(f"refused: {q['source_id']}: {q['rule']}: {q['reason']}")
    return "\n".join(lines)


def _shown(v) -> bool:
    try:
        return bool(pd.notna(v))
    except (TypeError, ValueError):
        return True
