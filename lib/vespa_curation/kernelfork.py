"""A fork server for the stage kernels of a run: the libraries imported once, each
kernel forked from them.

Every stage of a run executes in a kernel of its own (:mod:`vespa_curation.runs`), and
each kernel, started as ``python -m ipykernel_launcher``, imported pandas, pyarrow,
astropy, sunpy, numba's compiled kernels, matplotlib and mocpy again, and warmed the
service's geometry again: 1.3–2.8 s of CPU per kernel, ≈ 7 s of a hfc1ar run — a
sixth of all the CPU a 184 000-region run uses, and most of a small nightly run.

:class:`KernelForkServer` starts one process (``python -m vespa_curation.kernelfork``,
with the kernel spec's interpreter and flags, in the kernels' working directory) that
runs, in order, the *preload steps* it was given — each stage's imports and warm-up
(:func:`vespa_curation.runs.stage_warm_up`), the first stage's first — and forks a
kernel for each launch request once the request's step is done: the child becomes
``ipykernel_launcher`` with the request's arguments, environment and working directory,
in a session of its own, as ``jupyter_client`` would have started it, and finds the
libraries loaded. The first stage's kernel is forked as soon as its own step is done,
while the server goes on with the later stages' steps.

Life cycle. The server dies with the process that started it (``PR_SET_PDEATHSIG``),
and each kernel with the server, so a ``kill -9`` of a run leaves no process. The server
reaps its kernels and reports each one's exit status; :class:`ForkedKernel` stands for
one kernel in ``jupyter_client`` (what ``subprocess.Popen`` gives it otherwise). A kernel
whose launch the server refuses, or a server that dies, reads as a kernel that died:
the run then starts one the usual way (:class:`vespa_curation.runs.WarmKernel`).

What a forked kernel sees that a started one would not: the modules the steps
imported (that is the point), their state, and the preload's random seeds. Two
libraries read the environment at import: matplotlib (``MPLBACKEND``, which ipykernel
sets on its start), set here as ipykernel would; the others read only variables the
server and the kernels share.
"""
from __future__ import annotations

import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from typing import Mapping, Sequence

log = logging.getLogger("vespa_curation.kernelfork")

#: The module a kernel command runs (``python [flags] -m ipykernel_launcher ...``).
LAUNCHER = "ipykernel_launcher"
#: Set to ``0`` to start every kernel as its own process (no fork server).
ENV_SWITCH = "VESPA_CURATE_FORK_KERNELS"
#: matplotlib's backend in an IPython kernel (ipykernel sets ``MPLBACKEND`` to it).
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


def enabled() -> bool:
    """Whether runs fork their kernels (``VESPA_CURATE_FORK_KERNELS`` not ``0``; Linux:
    the server's life cycle rests on ``prctl``)."""
    return os.environ.get(ENV_SWITCH, "1") != "0" and sys.platform.startswith("linux")


def split_kernel_command(cmd: Sequence[str]) -> tuple[list[str], list[str]] | None:
    """``(interpreter and flags, launcher arguments)`` of a kernel command
    ``[python, flags..., -m, ipykernel_launcher, args...]``; None for another command."""
    cmd = list(cmd)
    for k in range(1, len(cmd) - 1):
        if cmd[k] == "-m" and cmd[k + 1] == LAUNCHER:
            return cmd[:k], cmd[k + 2:]
    return None


class KernelForkServer:
    """The fork server (module docstring), started at once.

    Parameters
    ----------
    interpreter : list of str
        The kernel spec's interpreter and its flags (``[python, -Xfrozen_modules=off]``):
        the server runs on them, and serves kernel commands that start with them.
    steps : sequence of (key, code)
        Preload steps, run in order; a launch request names the step it needs.
    cwd : str
        The kernels' working directory (the server's, so that ``sys.path`` is theirs).
    """

    def __init__(self, interpreter: Sequence[str], steps: Sequence[tuple[str, str]],
                 cwd: str):
        self.interpreter = list(interpreter)
        self.steps = [tuple(s) for s in steps]
        self.cwd = str(cwd)
        self._lock = threading.Lock()
        self._next = 0
        self._pids: dict[int, int | None] = {}      # request id -> pid (None: refused)
        self._exits: dict[int, int] = {}            # pid -> exit status (Popen's sign)
        self._buf = b""
        self._dead = False
        rfd, wfd = os.pipe()
        parent = os.getpid()
        try:
            self.proc = subprocess.Popen(
                [*self.interpreter, "-m", __name__, str(parent), str(wfd),
                 json.dumps(self.steps)],
                stdin=subprocess.PIPE, pass_fds=(wfd,), cwd=self.cwd)
        except BaseException:
            os.close(rfd)
            raise
        finally:
            os.close(wfd)
        self._reply = rfd
        os.set_blocking(rfd, False)

    def serves(self, cmd: Sequence[str]) -> bool:
        """Whether a kernel command runs ``ipykernel_launcher`` on the server's
        interpreter and flags (and the server is alive)."""
        parts = split_kernel_command(cmd)
        return parts is not None and parts[0] == self.interpreter and not self._dead \
            and self.proc.poll() is None

    def launch(self, cmd: Sequence[str], env: Mapping[str, str] | None, cwd: str | None,
               step: str | None = None) -> "ForkedKernel":
        """Ask for a kernel (forked once ``step`` is done); returns at once."""
        _, args = split_kernel_command(cmd)
        request = {"id": None, "args": args, "step": step,
                   "env": dict(os.environ if env is None else env),
                   "cwd": str(cwd or self.cwd)}
        with self._lock:
            self._next += 1
            request["id"] = rid = self._next
            if not self._send(request):
                self._pids[rid] = None      # never forked: the kernel reads as dead
        return ForkedKernel(self, rid)

    def _send(self, msg: dict) -> bool:
        """Write one request line to the server (holding the lock); False when the
        server is gone."""
        try:
            self.proc.stdin.write((json.dumps(msg) + "\n").encode())
            self.proc.stdin.flush()
            return True
        except (BrokenPipeError, OSError, ValueError) as e:
            log.debug("kernel fork server gone: %s", e)
            return False

    # -- the server's messages ------------------------------------------------------------
    def _collect(self, timeout: float | None = 0.0) -> None:
        """Read what the server reported (waiting at most ``timeout`` s for something)."""
        if self._dead or self._reply is None:
            self._dead = True
            return
        ready, _, _ = select.select([self._reply], [], [], timeout)
        if not ready:
            return
        while True:
            try:
                data = os.read(self._reply, 65536)
            except BlockingIOError:
                break
            if not data:            # the server is gone: so are its kernels
                self._dead = True
                break
            self._buf += data
        *lines, self._buf = self._buf.split(b"\n")
        for line in lines:
            msg = json.loads(line)
            if "exit" in msg:
                self._exits[int(msg["exit"])] = int(msg["status"])
            elif "step" in msg:     # the kernel's own warm-up meets it again
                log.debug("kernel fork server: preload step %s failed: %s",
                          msg["step"], msg["error"])
            else:
                self._pids[int(msg["id"])] = msg.get("pid")
                if msg.get("error"):
                    log.warning("the kernel fork server could not fork a kernel: %s",
                                msg["error"])

    def pid(self, rid: int, wait: float = 0.0) -> int | None:
        """The pid of request ``rid``'s kernel (None: not forked yet, or never);
        waits up to ``wait`` s for it."""
        deadline = time.monotonic() + wait
        with self._lock:
            while True:
                if rid in self._pids or self._dead:
                    return self._pids.get(rid)
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._collect(timeout=left)

    def settled(self, rid: int) -> bool:
        """Whether request ``rid`` was answered (forked or refused; a dead server
        answers all)."""
        with self._lock:
            self._collect()
            return rid in self._pids or self._dead

    def status(self, pid: int) -> int | None:
        """Exit status of a kernel the server forked, None while it runs."""
        with self._lock:
            self._collect()
            if pid in self._exits:
                return self._exits[pid]
            return -signal.SIGKILL if self._dead else None

    def cancel(self, rid: int) -> None:
        """Drop request ``rid`` if its kernel is not forked yet."""
        with self._lock:
            self._send({"cancel": rid})

    def close(self, timeout: float = 5.0) -> None:
        """End the server (its kernels end with it: call once they are shut down)."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        elif self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        with self._lock:
            if self._reply is not None:
                os.close(self._reply)
                self._reply = None
            self._dead = True


class ForkedKernel:
    """A kernel the server forks, as ``jupyter_client``'s ``LocalProvisioner`` uses its
    ``subprocess.Popen``: ``pid``, ``poll``, ``wait``, ``send_signal``, ``kill``,
    ``terminate`` (signals go to the kernel's session, as the provisioner sends them
    to the process group of a kernel it started). Until the server has forked it, the
    kernel counts as starting (``poll`` gives None)."""

    stdin = stdout = stderr = None

    def __init__(self, server: KernelForkServer, rid: int):
        self.server = server
        self.rid = rid
        self.returncode: int | None = None

    @property
    def pid(self) -> int | None:
        return self.server.pid(self.rid)

    def poll(self) -> int | None:
        if self.returncode is None:
            if not self.server.settled(self.rid):
                return None
            pid = self.server.pid(self.rid)
            self.returncode = 1 if pid is None else self.server.status(pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("forked kernel", timeout)
            time.sleep(0.005)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is not None:
            return
        pid = self.server.pid(self.rid)
        if pid is None:          # not forked yet: never fork it (a kill or a stop)
            self.server.cancel(self.rid)
            pid = self.server.pid(self.rid, wait=60.0)
            if pid is None:
                return
        try:
            os.killpg(pid, signum)      # the kernel's session: it and what it forked
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


# -- the server process -------------------------------------------------------------------

def _serve(parent: int, reply_fd: int, steps: list) -> None:
    """The server process: preload steps in order, fork a kernel per launch request once
    its step is done, report each kernel's pid and exit status on ``reply_fd``; ends
    when its standard input closes, and at once when ``parent`` dies."""
    from .workers import die_with_parent
    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # the run handles Ctrl-C
    _Server(reply_fd, steps).run()
    os._exit(0)     # nothing to flush; the libraries' teardown would only delay the run


class _Server:
    """:func:`_serve`'s state: the steps done, the requests waiting for theirs, the
    kernels forked and not yet reaped."""

    def __init__(self, reply_fd: int, steps: list):
        self.reply_fd = reply_fd
        self.steps = [tuple(s) for s in steps]
        self.known = {key for key, _code in self.steps}
        self.done: set = set()
        self.pending: list = []
        self.kernels: set = set()
        self.buf = b""
        self.closed = False
        self.pid = os.getpid()
        signal.signal(signal.SIGCHLD, self.reap)

    def report(self, msg: dict) -> None:
        os.write(self.reply_fd, (json.dumps(msg) + "\n").encode())   # one write: atomic

    def reap(self, *_args) -> None:
        """Report the kernels that ended (SIGCHLD's handler, also during a step; only
        the kernels: a step's own children are its own)."""
        for pid in list(self.kernels):
            try:
                done_pid, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                self.kernels.discard(pid)
                continue
            if done_pid:
                self.kernels.discard(pid)
                self.report({"exit": pid, "status": os.waitstatus_to_exitcode(status)})

    def read_requests(self, timeout: float | None) -> None:
        """Read the launch and cancel requests on standard input (waiting at most
        ``timeout`` s for some); its end closes the server."""
        if self.closed:
            return
        ready, _, _ = select.select([0], [], [], timeout)
        if not ready:
            return
        data = os.read(0, 65536)
        if not data:
            self.closed = True
            return
        self.buf += data
        *lines, self.buf = self.buf.split(b"\n")
        for line in lines:
            msg = json.loads(line)
            if "cancel" not in msg:
                self.pending.append(msg)
                continue
            for r in [r for r in self.pending if r["id"] == msg["cancel"]]:
                self.pending.remove(r)
                self.report({"id": r["id"], "pid": None})

    def serve_ready(self) -> None:
        """Fork the kernels whose step is done (or names no step of the server's)."""
        for r in [r for r in self.pending
                  if r["step"] in self.done or r["step"] not in self.known]:
            self.pending.remove(r)
            try:
                pid = os.fork()
            except OSError as e:
                self.report({"id": r["id"], "pid": None, "error": str(e)})
                continue
            if pid == 0:
                _become_kernel(r, self.pid, self.reply_fd)     # never returns
            self.kernels.add(pid)
            self.report({"id": r["id"], "pid": pid})
            self.reap()             # one that ended before it was in ``kernels``

    def run(self) -> None:
        import gc
        for key, code in self.steps:
            self.read_requests(0)
            self.serve_ready()
            try:
                exec(compile(code, f"<preload {key}>", "exec"), {"__name__": "__preload__"})
            except BaseException as e:  # noqa: BLE001 — the kernel's own warm-up retries it
                self.report({"step": key, "error": f"{type(e).__name__}: {e}"})
            gc.freeze()             # as a kernel does after its warm-up
            self.done.add(key)
        while not self.closed:
            self.serve_ready()
            self.read_requests(None)


def _become_kernel(request: dict, server_pid: int, reply_fd: int) -> None:
    """In a forked child: become the kernel ``request`` asks for; exits the process."""
    code = 1
    try:
        from .workers import die_with_parent
        os.setsid()                         # as jupyter_client's start_new_session
        die_with_parent(server_pid)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.close(reply_fd)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        if sys.path and os.path.isabs(sys.path[0]):
            sys.path[0] = os.getcwd()       # ``python -m``: the start directory
        if "matplotlib" in sys.modules:     # what matplotlib reads at its import
            import matplotlib
            matplotlib.rcParams["backend"] = os.environ.get("MPLBACKEND") or INLINE_BACKEND
        import runpy
        sys.argv = [LAUNCHER, *request["args"]]     # [0]: the module's file (runpy)
        runpy.run_module(LAUNCHER, run_name="__main__", alter_sys=True)   # as ``-m``
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # noqa: BLE001 — reported, and the kernel reads as dead
        import traceback
        traceback.print_exc()
    finally:
        try:
            import atexit
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


if __name__ == "__main__":
    _serve(int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3]))
