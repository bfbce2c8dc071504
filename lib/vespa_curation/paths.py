"""Where things are: the project root and its top-level folders."""
from __future__ import annotations

import os
from pathlib import Path


def _find_root() -> Path:
    env = os.environ.get("VESPA_CURATION_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "parameters").is_dir() and (parent / "notebooks").is_dir():
            return parent
    return Path.cwd().resolve()


#: The project root (the folder holding parameters/ and notebooks/).
ROOT = _find_root()
PARAMETERS = ROOT / "parameters"
NOTEBOOKS = ROOT / "notebooks"
OUTPUTS = ROOT / "outputs"


def resolve(path: str | os.PathLike, base: Path | None = None) -> Path:
    """An absolute path: ``path`` as is when absolute, else relative to ``base`` (ROOT)."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else ((base or ROOT) / p)
