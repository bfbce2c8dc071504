"""The run's kernel fork server (vespa_curation.kernelfork): a forked kernel is the
kernel jupyter_client would have started, with the preload steps' modules loaded; it
runs a stage and ends; it dies with the run; a kernel asked for and stopped before its
step is done is never forked; a forked kernel that dies is replaced by papermill's own."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from vespa_curation import kernelfork, paths, runs

from test_notebooks import _gone, _probe_runs_in_papermills_kernel, _probe_stage

pytestmark = pytest.mark.slow

#: What a kernel reports about itself (one JSON line).
FACTS = textwrap.dedent("""\
    import json, os, sys, matplotlib
    from ipykernel.kernelapp import IPKernelApp
    print(json.dumps({
        "pid": os.getpid(), "ppid": os.getppid(), "sid": os.getsid(0),
        "cwd": os.getcwd(), "path": sys.path, "args": sys.argv[1:],
        "parent_handle": IPKernelApp.instance().parent_handle,
        "jpy_parent": os.environ.get("JPY_PARENT_PID"),
        "backend": matplotlib.rcParams["backend"],
        "preloaded": "vespa_curation.stcs" in sys.modules}))
""")


def _server(steps) -> kernelfork.KernelForkServer:
    argv = runs._kernel_argv()
    return kernelfork.KernelForkServer(kernelfork.split_kernel_command(argv)[0], steps,
                                       str(paths.ROOT))


@pytest.fixture
def server(monkeypatch):
    """A fork server preloading ``vespa_curation.stcs`` and matplotlib (step ``probe``),
    installed as the run's."""
    s = _server([("probe", "import vespa_curation.stcs, matplotlib")])
    monkeypatch.setattr(runs, "_FORK_SERVER", s)
    yield s
    monkeypatch.setattr(runs, "_FORK_SERVER", None)
    s.close()


def _kernel(step: str | None = None):
    from jupyter_core.utils import run_sync
    km = runs._kernel_manager()(kernel_name=runs.kernel_name())
    km.preload_step = step
    run_sync(km.start_kernel)(cwd=str(paths.ROOT),
                              extra_arguments=["--HistoryManager.hist_file=:memory:"])
    return km


def _facts(km) -> dict:
    kc = km.blocking_client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=120)
        msg_id = kc.execute(FACTS)
        while True:
            m = kc.get_iopub_msg(timeout=60)
            if m["parent_header"].get("msg_id") != msg_id:
                continue
            assert m["msg_type"] != "error", m["content"]
            if m["msg_type"] == "stream":
                return json.loads(m["content"]["text"])
    finally:
        kc.stop_channels()


def _stop(km) -> None:
    from jupyter_core.utils import run_sync
    run_sync(km.shutdown_kernel)(now=True)


def test_a_forked_kernel_is_the_kernel_jupyter_client_starts_with_the_preload_loaded(
        server):
    started = _kernel("probe")              # forked once step "probe" is done
    runs_server, runs._FORK_SERVER = runs._FORK_SERVER, None
    try:
        plain = _kernel()                   # jupyter_client's own launch
    finally:
        runs._FORK_SERVER = runs_server
    try:
        forked, alone = _facts(started), _facts(plain)
    finally:
        _stop(started)
        _stop(plain)
    assert forked["ppid"] == server.proc.pid and alone["ppid"] == os.getpid()
    assert forked["sid"] == forked["pid"] and alone["sid"] == alone["pid"]
    for key in ("cwd", "path", "parent_handle", "jpy_parent", "backend"):
        assert forked[key] == alone[key], key
    assert forked["args"][0] == alone["args"][0] == "-f"
    assert forked["args"][2:] == alone["args"][2:]
    assert forked["backend"] == kernelfork.INLINE_BACKEND
    assert forked["preloaded"] and not alone["preloaded"]


def test_a_stage_runs_in_a_forked_kernel_which_then_ends_and_is_reaped(
        server, tmp_path, monkeypatch):
    params = _probe_stage(tmp_path, monkeypatch)
    warm = runs.WarmKernel("99_probe", "hfc1ar")
    proc = warm.km.provisioner.process
    assert isinstance(proc, kernelfork.ForkedKernel)
    (tmp_path / "out").mkdir()
    runs.execute_stage("99_probe", tmp_path / "out", params, progress=False, warm=warm)
    ran, warmed = (tmp_path / "probe.txt").read_text().split()
    assert warmed == ran == str(proc.pid)    # the warm-up, then the stage, in that kernel
    deadline = time.monotonic() + 10
    while not _gone(int(ran)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _gone(int(ran)), "the stage's kernel still runs (or is a zombie)"
    assert server.status(int(ran)) == -signal.SIGKILL     # killed once the stage ended


def test_a_forked_kernel_that_died_is_replaced_by_papermills(server, tmp_path,
                                                              monkeypatch, caplog):
    params = _probe_stage(tmp_path, monkeypatch)
    warm = runs.WarmKernel("99_probe", "hfc1ar")
    proc = warm.km.provisioner.process
    pid = server.pid(proc.rid, wait=60)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    _probe_runs_in_papermills_kernel(warm, pid, params, tmp_path, caplog)


def test_a_kernel_stopped_before_its_step_is_done_is_never_forked(monkeypatch):
    s = _server([("slow", "import time; time.sleep(2)")])
    monkeypatch.setattr(runs, "_FORK_SERVER", s)
    try:
        km = _kernel("slow")
        proc = km.provisioner.process
        assert proc.poll() is None                  # starting: the step still runs
        _stop(km)                                   # waits for the server's answer
        assert proc.returncode == 1 and s.pid(proc.rid) is None
        assert psutil.Process(s.proc.pid).children() == []
    finally:
        monkeypatch.setattr(runs, "_FORK_SERVER", None)
        s.close()


def test_the_fork_server_and_its_kernels_die_with_the_run(tmp_path):
    """The process that started the server killed with SIGKILL (no clean-up): the
    server and the kernel it forked end within seconds."""
    script = textwrap.dedent(f"""\
        import sys, time
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from vespa_curation import runs
        import test_kernelfork as T
        runs._FORK_SERVER = s = T._server([])
        km = T._kernel()
        pid = s.pid(km.provisioner.process.rid, wait=60)
        print(s.proc.pid, pid, flush=True)
        time.sleep(600)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                             cwd=paths.ROOT, text=True)
    pids = []
    try:
        pids = [int(p) for p in child.stdout.readline().split()]
        assert len(pids) == 2 and all(not _gone(p) for p in pids)
        child.kill()
        child.wait(timeout=30)
        deadline = time.monotonic() + 10
        while any(not _gone(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(_gone(p) for p in pids), "the server or its kernel survived the run"
    finally:
        child.kill()
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_the_kernel_command_read_first_is_jupyter_clients(tmp_path, monkeypatch):
    """The fork server's interpreter is the one jupyter_client's kernel command runs: the
    environment's kernel.json (or jupyter_client's spec), a bare ``python`` being this
    interpreter (as ``format_kernel_cmd`` makes it)."""
    from jupyter_client.kernelspec import KernelSpecManager
    runs._prefer_env_kernels()
    monkeypatch.setenv("JUPYTER_PATH", os.environ["JUPYTER_PATH"])    # restored after
    assert runs._kernel_argv() == KernelSpecManager().get_kernel_spec(runs.kernel_name()).argv
    spec = tmp_path / "share" / "jupyter" / "kernels" / "bare" / "kernel.json"
    spec.parent.mkdir(parents=True)
    spec.write_text('{"argv": ["python3", "-m", "ipykernel_launcher", "-f", '
                    '"{connection_file}"], "display_name": "bare", "language": "python"}')
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    monkeypatch.setenv("VESPA_CURATE_KERNEL", "bare")
    assert runs._kernel_argv()[:3] == [sys.executable, "-m", "ipykernel_launcher"]


def test_a_run_forks_its_kernels_from_one_server_preloading_its_stages(monkeypatch):
    steps = []
    real = kernelfork.KernelForkServer
    monkeypatch.setattr(kernelfork, "KernelForkServer",
                        lambda interp, st, cwd: steps.extend(st) or real(interp, [], cwd))
    s = runs.start_fork_server(["hfc1ar", "nrh"])
    try:
        assert runs.start_fork_server(["hfc1ar"]) is None       # one per run
        assert [k for k, _ in steps] == [f"{st}:{svc}" for svc in ("hfc1ar", "nrh")
                                         for st in runs.STAGES]
        assert dict(steps)["02_qa:nrh"] == "\n".join(runs.stage_warm_up("02_qa", "nrh"))
    finally:
        runs.stop_fork_server(s)
    assert runs._FORK_SERVER is None
    monkeypatch.setenv(kernelfork.ENV_SWITCH, "0")
    assert runs.start_fork_server(["hfc1ar"]) is None
