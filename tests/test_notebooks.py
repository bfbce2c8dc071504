"""The notebooks: committed without outputs, typed parameters cells, executed through
papermill on every embedded sample, and the curator decision round trip across runs."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from vespa_curation import decisions as D
from vespa_curation import runs
from vespa_curation.config import load_config
from vespa_curation.services import get_service, service_names

from test_cli import ROOT, curate

STAGE_NOTEBOOKS = [f"{s}.ipynb" for s in runs.STAGES] + [f"{runs.CURATOR}.ipynb"]
PARAMETERS = ("service", "params_file", "overrides", "run_dir")


def repo_notebooks() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "*.ipynb"], cwd=ROOT, capture_output=True,
                         text=True).stdout.split()
    found = {ROOT / p for p in out} | set((ROOT / "notebooks").glob("*.ipynb"))
    return sorted(p for p in found if p.is_file())


def test_every_notebook_is_committed_without_outputs():
    books = repo_notebooks()
    assert {b.name for b in books} >= set(STAGE_NOTEBOOKS)
    for b in books:
        nb = nbformat.read(b, as_version=4)
        nbformat.validate(nb)
        for i, c in enumerate(nb.cells):
            if c.cell_type == "code":
                assert not c.get("outputs"), f"{b.name} cell {i} holds outputs"
                assert c.get("execution_count") is None, f"{b.name} cell {i} was executed"


@pytest.mark.parametrize("name", STAGE_NOTEBOOKS)
def test_parameters_cell_then_load_params(name):
    import papermill as pm
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    inferred = pm.inspect_notebook(str(ROOT / "notebooks" / name))
    assert list(inferred) == list(PARAMETERS)
    assert inferred["service"]["inferred_type_name"] == "str"
    assert inferred["overrides"]["inferred_type_name"] == "list"
    # the first cell after the parameters checks them, before anything else runs
    assert "load_config(service, params_file, overrides)" in code[1].source
    assert len(code) <= 5, "notebooks stay thin: logic lives in lib/"


# -- kernels started ahead ---------------------------------------------------------------

def test_stage_notebook_imports_are_what_a_kernel_can_run_ahead():
    imports = runs.notebook_imports(ROOT / "notebooks" / "02_qa.ipynb")
    assert "from vespa_curation.runs import notebook_setup" in imports
    assert "from vespa_curation import qa, runs" in imports
    assert all(line.startswith(("import ", "from ")) for line in imports)


def _probe_stage(folder: Path, monkeypatch) -> dict:
    """A stage notebook (in ``folder``) writing its kernel's pid and whether the
    warm-up of :data:`runs.WARM_UP` ran in that kernel."""
    from vespa_curation import paths
    nb = nbformat.v4.new_notebook(metadata={
        "kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"},
        "language_info": {"name": "python"}})
    nb.cells = [nbformat.v4.new_code_cell(
        "service = None\nparams_file = None\noverrides = []\nrun_dir = None",
        metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
        "import os\nimport pathlib\n"
        "pathlib.Path(run_dir, 'probe.txt').write_text("
        "f\"{os.getpid()} {globals().get('_warm_pid')}\")")]
    nbformat.write(nb, folder / "99_probe.ipynb")
    monkeypatch.setattr(paths, "NOTEBOOKS", folder)
    # the warm-up uses `os`, which only the notebook's own imports (run first) bring
    monkeypatch.setitem(runs.WARM_UP, "99_probe", "_warm_pid = os.getpid()")
    return {"service": "hfc1ar", "params_file": None, "overrides": [],
            "run_dir": str(folder)}


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.slow
def test_stage_runs_in_the_kernel_started_ahead_which_then_ends(tmp_path, monkeypatch):
    params = _probe_stage(tmp_path, monkeypatch)
    warm = runs.WarmKernel("99_probe", "hfc1ar")
    pid = warm.km.provisioner.pid
    (tmp_path / "out").mkdir()
    runs.execute_stage("99_probe", tmp_path / "out", params, progress=False, warm=warm)
    ran, warmed = (tmp_path / "probe.txt").read_text().split()
    assert int(ran) == pid and warmed == str(pid)   # imports, then the warm-up, there
    assert _gone(pid)


@pytest.mark.slow
def test_stage_runs_when_the_kernel_started_ahead_died(tmp_path, monkeypatch, caplog):
    params = _probe_stage(tmp_path, monkeypatch)
    warm = runs.WarmKernel("99_probe", "hfc1ar")
    pid = warm.km.provisioner.pid
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while not _gone(pid) and time.monotonic() < deadline:
        os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    _probe_runs_in_papermills_kernel(warm, pid, params, tmp_path, caplog)


def _probe_runs_in_papermills_kernel(warm, pid: int, params: dict, folder: Path,
                                     caplog) -> None:
    """Run the probe stage (:func:`_probe_stage`) given ``warm``, whose kernel ``pid``
    died: papermill's own kernel runs it, and the log says why."""
    (folder / "out").mkdir()
    with caplog.at_level("WARNING", logger="vespa_curation.runs"):
        runs.execute_stage("99_probe", folder / "out", params, progress=False, warm=warm)
    ran, warmed = (folder / "probe.txt").read_text().split()
    assert int(ran) != pid and warmed == "None"      # papermill's own kernel ran it
    assert "died; papermill starts another" in caplog.text


# -- execution on the samples -----------------------------------------------------------

@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> Path:
    from vespa_curation.samples import build_samples
    out = tmp_path_factory.mktemp("samples")
    build_samples(out)
    return out


def _source(name, samples: Path) -> str:
    """The service's declared default source (its embedded sample), in ``samples``."""
    return get_service(name).defaults["source"].replace("outputs/samples", str(samples))


def _errors(nb_path: Path) -> list[str]:
    nb = nbformat.read(nb_path, as_version=4)
    return [f"{o.get('ename')}: {o.get('evalue')}" for c in nb.cells
            if c.cell_type == "code" for o in c.get("outputs", [])
            if o.get("output_type") == "error"]


@pytest.mark.slow
@pytest.mark.parametrize("name", service_names())
def test_stage_notebooks_run_on_sample(name, samples, tmp_path):
    overrides = [f"source={_source(name, samples)}", f"outputs={tmp_path}/runs",
                 f"dachs_inputs={tmp_path}/dachs", f"decisions={tmp_path}/decisions.csv"]
    params = load_config(name, None, overrides)
    res = runs.run_service(params, runs.utc_stamp(), overrides=overrides, progress=False)
    assert res.ok, res.error
    folder = res.folder
    for stage in runs.STAGES:
        assert (folder / f"{stage}.ipynb").is_file()
        assert _errors(folder / f"{stage}.ipynb") == []
    for f in ("rows.parquet", "harvest.json", "report.html", "report.json", "export.json",
              "run.log", "figures/flags.png" if name == "hfc1ar" else "figures/quarantine.png"):
        assert (folder / f).is_file(), f
    report = json.loads((folder / "report.json").read_text())
    assert report["counts"]["rows"] > 0
    export = json.loads((folder / "export.json").read_text())
    assert export["exported"] == report["counts"]["rows"]
    # the executed notebook shows the injected parameters, and the log the stages
    nb = nbformat.read(folder / "01_harvest.ipynb", as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and f"run_dir = \"{folder}\"" in injected[0].source
    log = (folder / "run.log").read_text()
    assert all(f"stage {s} done" in log for s in runs.STAGES)
    # the stages ran in this environment's python (the venv's kernel)
    assert f"kernel python: {sys.prefix}/bin/python" in log


def _vot_uids(path: Path) -> set[str]:
    from vespa_curation.export.votable import read_votable
    return set(read_votable(path)["granule_uid"].astype(str))


@pytest.mark.slow
def test_curator_notebook_and_decision_round_trip(samples, tmp_path):
    """cli run → curator notebook → a rejection → next runs: retracted when published
    before, absent from a fresh export, decision file untouched by the runs."""
    dec = tmp_path / "decisions" / "hfc1ar.csv"
    common = ["-p", f"source={_source('hfc1ar', samples)}", "-p", f"outputs={tmp_path}/runs",
              "-p", f"decisions={dec}", "--no-progress"]
    p = curate("run", "hfc1ar", "-p", f"dachs_inputs={tmp_path}/dachs", *common)
    assert p.returncode == 0, p.stderr[-3000:]
    (run1,) = list((tmp_path / "runs").glob("*/hfc1ar"))
    area = tmp_path / "dachs" / "hfc1ar"
    (vot1,) = list((area / "data").glob("*.vot"))
    exported = _vot_uids(vot1)

    # the curator notebook runs unattended on that folder (no click awaited)
    params = load_config("hfc1ar", None, {"decisions": str(dec),
                                          "outputs": f"{tmp_path}/runs"})
    nbp = runs.notebook_parameters(params, run1, None, [f"decisions={dec}",
                                                         f"outputs={tmp_path}/runs"])
    out = runs.execute_stage(runs.CURATOR, run1, nbp, progress=False)
    assert _errors(out) == []
    assert not dec.exists(), "running the curator notebook records nothing by itself"

    # the curator rejects a limb region (as the widget's button does)
    rows = pd.read_parquet(run1 / "rows.parquet")
    flagged = rows[rows["qa_geom_flag"].astype(str).str.contains("limb")]
    uid = str(flagged["granule_uid"].iloc[0])
    assert uid in exported
    D.append_decision(dec, uid, "reject", "tester", "outline follows a flare ribbon")
    before = dec.read_text()

    # next run over everything, same import area: the granule is retracted
    p = curate("run", "hfc1ar", "-p", f"dachs_inputs={tmp_path}/dachs", "-p", "full=true",
               *common)
    assert p.returncode == 0, p.stderr[-3000:]
    run2 = sorted((tmp_path / "runs").glob("*/hfc1ar"))[-1]
    assert run2 != run1
    ex2 = json.loads((run2 / "export.json").read_text())
    assert ex2["rejected_by_curator"] == 1 and ex2["retracted"] == 1
    retract = (area / "retract" / f"{run2.parent.name}.txt").read_text().split()
    assert retract == [uid]
    state = pd.read_parquet(area / "state" / "granules.parquet")
    assert uid not in set(state["granule_uid"])
    q = pd.read_csv(run2 / "quarantine.csv")
    line = q[q["granule_uid"] == uid].iloc[0]
    assert line["rule"] == D.REJECT_RULE and "tester" in line["reason"]

    # a fresh import area (never published): the granule is simply not exported
    params3 = load_config("hfc1ar", None, {"source": _source("hfc1ar", samples),
                                           "outputs": f"{tmp_path}/runs3",
                                           "dachs_inputs": f"{tmp_path}/dachs3",
                                           "decisions": str(dec)})
    res = runs.run_service(params3, runs.utc_stamp(), overrides=[
        f"source={_source('hfc1ar', samples)}", f"outputs={tmp_path}/runs3",
        f"dachs_inputs={tmp_path}/dachs3", f"decisions={dec}"], progress=False)
    assert res.ok, res.error
    (vot3,) = list((tmp_path / "dachs3" / "hfc1ar" / "data").glob("*.vot"))
    assert _vot_uids(vot3) == exported - {uid}
    assert not list((tmp_path / "dachs3" / "hfc1ar" / "retract").glob("*.txt"))
    assert dec.read_text() == before, "runs never rewrite the decisions file"
