"""vespa-curate: exit codes, parameters refused before any work, the run lock."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from vespa_curation import cli, kernelfork, runs

ROOT = Path(__file__).resolve().parents[1]
EXE = Path(sys.executable).parent / "vespa-curate"


def curate(*args, env=None, timeout=600) -> subprocess.CompletedProcess:
    """Run the installed console script (as cron would)."""
    cmd = [str(EXE)] if EXE.exists() else [sys.executable, "-m", "vespa_curation.cli"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, cwd=ROOT,
                          env=dict(os.environ, **(env or {})), timeout=timeout,
                          stdin=subprocess.DEVNULL)


def test_help_documents_exit_codes():
    p = curate("--help")
    assert p.returncode == 0
    for code, words in [(0, "completed"), (1, "stage notebook failed"),
                        (2, "bad parameter"), (3, "lock")]:
        assert f"  {code}  " in p.stdout and words in p.stdout, p.stdout
    r = curate("run", "--help")
    assert "exit codes" in r.stdout and "-p KEY=VALUE" in r.stdout


def test_unknown_service_exits_2_and_writes_nothing(tmp_path):
    out = tmp_path / "runs"
    p = curate("run", "nosuch", "-p", f"outputs={out}")
    assert p.returncode == cli.USAGE
    assert "unknown service 'nosuch'" in p.stderr and "hfc1ar" in p.stderr
    assert not out.exists()


@pytest.mark.parametrize("override, words", [
    ("bogus=1", "unknown parameter 'bogus'"),
    ("chunk_size=-3", "'chunk_size'"),
    ("workers=many", "'workers'"),
    ("source=ftp://x", "'source'"),
    ("novalue", "not of the form key=value"),
])
def test_bad_parameter_exits_2_before_any_notebook(tmp_path, override, words):
    out = tmp_path / "runs"
    p = curate("run", "hfc1ar", "-p", f"outputs={out}", "-p", override)
    assert p.returncode == cli.USAGE, p.stderr
    assert words in p.stderr
    assert not out.exists(), "a refused run must not leave a run folder"
    assert "papermill" not in p.stderr       # no notebook started


def test_run_all_checks_every_service_first(tmp_path):
    out = tmp_path / "runs"
    p = curate("run", "all", "-p", f"outputs={out}", "-p", "nonsense=1")
    assert p.returncode == cli.USAGE
    assert "unknown parameter 'nonsense'" in p.stderr
    assert not out.exists()


def test_missing_params_file_exits_2(tmp_path):
    p = curate("run", "hfc1ar", "-f", str(tmp_path / "absent.yaml"),
               "-p", f"outputs={tmp_path}/runs")
    assert p.returncode == cli.USAGE and "absent.yaml" in p.stderr


def test_publish_and_params_refuse_unknown_service():
    assert curate("publish", "nosuch").returncode == cli.USAGE
    p = curate("params", "nosuch")
    assert p.returncode == cli.USAGE and "unknown service" in p.stderr


def test_params_prints_schema():
    p = curate("params", "hfc1ar")
    assert p.returncode == 0
    for key in ("source", "outputs", "dachs_inputs", "decisions", "qa_gallery"):
        assert key in p.stdout


def test_usage_error_is_2():
    assert curate("frobnicate").returncode == 2
    assert curate("run").returncode == 2


# -- lock -------------------------------------------------------------------------------

def test_second_run_exits_3_while_locked(tmp_path):
    out = tmp_path / "runs"
    with runs.RunLock(out, what="test holder"):
        p = curate("run", "hfc1ar", "-p", f"outputs={out}")
    assert p.returncode == cli.LOCKED, p.stderr
    assert "test holder" in p.stderr and f"pid {os.getpid()}" in p.stderr
    assert "--wait" in p.stderr
    assert [x.name for x in out.iterdir()] == [runs.LOCK_NAME]   # no run folder


def test_publish_exits_3_while_locked(tmp_path):
    out = tmp_path / "runs"
    with runs.RunLock(out, what="nightly run"):
        p = curate("publish", "hfc1ar", "-p", f"outputs={out}",
                   "-p", f"dachs_inputs={tmp_path}/dachs")
    assert p.returncode == cli.LOCKED and "nightly run" in p.stderr


def test_lock_waits_then_proceeds(tmp_path):
    holder = runs.RunLock(tmp_path, what="first").acquire()
    threading.Timer(0.8, holder.release).start()
    t0 = time.monotonic()
    with runs.RunLock(tmp_path, wait=20, what="second"):
        waited = time.monotonic() - t0
    assert 0.5 < waited < 15


def test_lock_refuses_after_wait(tmp_path):
    with runs.RunLock(tmp_path, what="first"):
        t0 = time.monotonic()
        with pytest.raises(runs.LockedError, match="first"):
            runs.RunLock(tmp_path, wait=0.5).acquire()
        assert time.monotonic() - t0 >= 0.45


def test_lock_released_when_holder_dies(tmp_path):
    # a killed run never leaves a stale lock: flock dies with the process
    code = ("import sys, time; sys.path.insert(0, %r); from vespa_curation import runs; "
            "lk = runs.RunLock(%r).acquire(); print('held', flush=True); time.sleep(60)"
            % (str(ROOT / "lib"), str(tmp_path)))
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "held"
        with pytest.raises(runs.LockedError):
            runs.RunLock(tmp_path).acquire()
    finally:
        p.kill()
        p.wait()
    with runs.RunLock(tmp_path, wait=5):
        pass


# -- a failing stage --------------------------------------------------------------------

@pytest.mark.slow
def test_failed_stage_exits_1_and_keeps_notebook(tmp_path):
    out = tmp_path / "runs"
    p = curate("run", "hfc1ar", "-p", f"outputs={out}",
               "-p", f"source=sqlite:///{tmp_path}/no-such.sqlite",
               "-p", f"dachs_inputs={tmp_path}/dachs", "--no-progress")
    assert p.returncode == cli.STAGE_FAILED, p.stdout + p.stderr
    (folder,) = list(out.glob("*/hfc1ar"))
    assert folder.parent.name[:8].isdigit() and folder.parent.name.endswith("Z")
    nb = folder / "01_harvest.ipynb"
    assert nb.is_file(), "the failed notebook is kept"
    assert not (folder / "02_qa.ipynb").exists(), "stages after a failure do not run"
    import nbformat
    cells = nbformat.read(nb, as_version=4).cells
    errors = [o for c in cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert errors and "no-such.sqlite" in (errors[0]["evalue"] + "".join(errors[0]["traceback"]))
    log = (folder / "run.log").read_text()
    assert "01_harvest failed" in log and "FAILED" in log
    assert "FAILED" in p.stdout and str(folder) in p.stdout


def test_publish_without_export_exits_4(tmp_path):
    p = curate("publish", "hfc1ar", "-p", f"dachs_inputs={tmp_path}/dachs",
               "-p", f"outputs={tmp_path}/runs")
    assert p.returncode == cli.PUBLISH_FAILED
    assert "hfc1ar: publish FAILED" in p.stderr and "vespa-curate run hfc1ar" in p.stderr


# -- the first stage's kernel, started before the checks and the lock --------------------

def _first_kernels(monkeypatch) -> list:
    """Record the kernels ``vespa-curate run`` starts first: (kernel, its process, the
    pid of the run's kernel fork server)."""
    started = []
    real = runs.first_kernel

    def record(service):
        warm = real(service)
        server = runs._FORK_SERVER
        started.append((warm, _process(warm), server.proc.pid if server else None))
        return warm
    monkeypatch.setattr(runs, "first_kernel", record)
    return started


def _process(warm):
    """A kernel's process as jupyter_client holds it: a ``Popen``, or a
    ``kernelfork.ForkedKernel`` (its pid known once the run's fork server forked it)."""
    return warm.km.provisioner.process if warm is not None else None


def _kernel_ended(proc) -> bool:
    """Whether a kernel's process has ended, or was never forked (asked for and stopped
    before its fork server's step was done)."""
    return proc is not None and (proc.pid is None or _ended(proc.pid))


def _ended(pid: int, within: float = 30.0) -> bool:
    """Whether process ``pid`` (a child of this one) has ended (reaped, or a zombie)."""
    import psutil
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("case", ["bad parameter", "locked"])
def test_a_refused_run_ends_the_kernel_it_started_first(tmp_path, monkeypatch, case):
    """`vespa-curate run` starts its first kernel before checking anything: a run refused
    by its parameters or by the lock shuts it down, and says why, as before."""
    started = _first_kernels(monkeypatch)
    out = tmp_path / "runs"
    args = ["run", "hfc1ar", "-p", f"outputs={out}", "--no-progress"]
    t0 = time.monotonic()
    if case == "locked":
        with runs.RunLock(out, what="test holder"):
            code = cli.main(args)
        assert code == cli.LOCKED
        assert [x.name for x in out.iterdir()] == [runs.LOCK_NAME]
    else:
        code = cli.main(args + ["-p", "bogus=1"])
        assert code == cli.USAGE and not out.exists()
    assert time.monotonic() - t0 < 20     # killed, not waited for through its imports
    ((warm, proc, server),) = started
    assert warm.km is None and _kernel_ended(proc)
    assert server is not None and _ended(server) and runs._FORK_SERVER is None


@pytest.mark.slow
def test_the_first_stage_runs_in_the_kernel_started_first(tmp_path, monkeypatch):
    """The kernel `vespa-curate run` starts first is the first stage's: no second
    kernel is started for it, papermill takes it, and it ends with the stage."""
    from vespa_curation.hfc.sample import build_hfc_sample
    db = build_hfc_sample(tmp_path / "hfc.sqlite")
    started = _first_kernels(monkeypatch)
    stages = []
    real = runs._warm_kernel

    def count(stage, service):
        stages.append(stage)
        return real(stage, service)
    monkeypatch.setattr(runs, "_warm_kernel", count)
    code = cli.main(["run", "hfc1ar", "--no-progress", "-p", f"source=sqlite:///{db}",
                     "-p", f"outputs={tmp_path}/runs", "-p", f"dachs_inputs={tmp_path}/dachs",
                     "-p", "qa_gallery=2"])
    assert code == cli.OK
    assert stages == ["01_harvest", "02_qa", "03_export"]   # each stage's kernel once
    ((warm, proc, server),) = started
    assert warm.km is None and proc.pid is not None and _kernel_ended(proc)
    assert _ended(server)
    (folder,) = (tmp_path / "runs").glob("*/hfc1ar")
    log = (folder / "run.log").read_text()
    assert "run" in log and "completed" in log and "papermill starts another" not in log


def _recorded_run(tmp_path, monkeypatch, fail_first: bool = False):
    """``runs.run`` of hfc1ar twice under one lock (run folders ``s0``, ``s1``) on the
    embedded sample, recording each kernel started ahead and each stage run; with
    ``fail_first`` the first run's harvest fails (its stage raises StageFailed, after
    ending the kernel it was given, as a failed notebook does). Returns (results,
    events, kernel processes)."""
    from vespa_curation.config import load_config
    from vespa_curation.hfc.sample import build_hfc_sample
    db = build_hfc_sample(tmp_path / "hfc.sqlite")
    events, procs = [], []
    real_warm, real_exec = runs._warm_kernel, runs.execute_stage

    def warm(stage, service):
        k = real_warm(stage, service)
        events.append(("warm", stage, service))
        procs.append(_process(k))
        return k

    def execute(stage, folder, parameters, progress=True, warm=None):
        where = Path(folder).parents[1].name
        events.append(("run", stage, where))
        if fail_first and where == "s0":
            warm.close()
            raise runs.StageFailed("planted: the harvest failed", None)
        return real_exec(stage, folder, parameters, progress=progress, warm=warm)
    monkeypatch.setattr(runs, "_warm_kernel", warm)
    monkeypatch.setattr(runs, "execute_stage", execute)
    over = [f"source=sqlite:///{db}", f"dachs_inputs={tmp_path / 'dachs'}",
            "qa_gallery=2"]
    plist = [load_config("hfc1ar", overrides=[*over, f"outputs={tmp_path / f's{k}'}"])
             for k in range(2)]
    return runs.run(plist, overrides=over, progress=False), events, procs


@pytest.mark.slow
def test_the_next_service_kernel_starts_during_the_last_stage(tmp_path, monkeypatch):
    """Services run one after the other under one lock (`run all`): each service's QA
    and export kernels start with its harvest; the next service's first kernel starts
    while the previous one's export runs and is the one its harvest uses; every kernel
    ends with the run."""
    results, events, procs = _recorded_run(tmp_path, monkeypatch)
    assert [r.ok for r in results] == [True, True]
    # the QA's and the export's kernels start with the harvest, before it runs
    first_harvest = events.index(("run", "01_harvest", "s0"))
    assert {("warm", "02_qa", "hfc1ar"), ("warm", "03_export", "hfc1ar")} <= \
        set(events[:first_harvest])
    harvests = [k for k, e in enumerate(events) if e[:2] == ("warm", "01_harvest")]
    assert len(harvests) == 2                         # one kernel per service's harvest
    assert harvests[1] < events.index(("run", "03_export", "s0"))
    assert events.index(("run", "01_harvest", "s1")) > harvests[1]
    # each forked from the run's fork server, and ended with its stage
    assert all(isinstance(p, kernelfork.ForkedKernel) and p.pid for p in procs)
    assert all(_kernel_ended(p) for p in procs)


@pytest.mark.slow
def test_a_failed_service_ends_its_kernels_and_the_next_runs(tmp_path, monkeypatch):
    """A service whose harvest fails ends the kernels started for its QA and export at
    once; the next service starts its own and runs."""
    results, events, procs = _recorded_run(tmp_path, monkeypatch, fail_first=True)
    assert [r.ok for r in results] == [False, True]
    assert [e for e in events if e[0] == "run"][:2] == [("run", "01_harvest", "s0"),
                                                        ("run", "01_harvest", "s1")]
    assert all(_kernel_ended(p) for p in procs)


def test_the_command_leaves_what_it_made_out_of_its_exit_collection():
    """`vespa-curate` (main without argv: this process's command line) freezes what it
    made before the process ends, so that Python's collection at exit does not walk
    it; main called with arguments (as here) leaves the caller's collector alone."""
    import gc
    code = ("import gc, sys; sys.argv = ['vespa-curate', 'list']; "
            "from vespa_curation.cli import main; c = main(); "
            "print(c, gc.get_freeze_count() > 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["0", "True"]
    before = gc.get_freeze_count()
    assert cli.main(["list"]) == cli.OK
    assert gc.get_freeze_count() == before
