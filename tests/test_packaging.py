"""pyproject.toml and environment.yml list the same dependencies."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# conda-forge splits dask[distributed] into two packages
CONDA_ALIASES = {"dask[distributed]": {"dask", "distributed"}}


def _name(req: str) -> str:
    return re.split(r"[<>=!~ ;]", req.strip(), maxsplit=1)[0].lower()


def test_environment_matches_pyproject():
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    conda = {_name(d) for d in env if isinstance(d, str)} - {"python", "pip"}
    expected = set()
    for req in py:
        n = _name(req)
        expected |= CONDA_ALIASES.get(n, {n})
    assert conda == expected, (f"only in environment.yml: {sorted(conda - expected)}; "
                               f"only in pyproject.toml: {sorted(expected - conda)}")


def test_python_version_agrees():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    assert "python=3.11" in env
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert meta["requires-python"] == ">=3.11"


def test_console_script_declared():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["vespa-curate"] == "vespa_curation.cli:main"
