"""Run folders, notebook execution through papermill, the run lock and the run log.

A run of one service is the folder ``<outputs>/<UTC stamp YYYYmmddTHHMMSSZ>/<service>/``
holding the executed stage notebooks (``01_harvest.ipynb``, ``02_qa.ipynb``,
``03_export.ipynb``), what the stages write (docs/architecture.md) and ``run.log``.
Stages run in order through papermill with the kernel of the running interpreter's
environment; the first failing stage stops that service's run, and its executed notebook,
error included, stays in the run folder.

Two runs never overlap: :class:`RunLock` holds an exclusive ``fcntl.flock`` on
``<outputs>/vespa-curate.lock`` for the whole run (and for a publish).
"""
from __future__ import annotations

import datetime as _dt
import errno
import fcntl
import functools
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from . import paths

log = logging.getLogger("vespa_curation.runs")

#: The stage notebooks of a run, in order (names without ``.ipynb``).
STAGES: tuple[str, ...] = ("01_harvest", "02_qa", "03_export")
#: The interactive curator notebook (not run by ``vespa-curate run``).
CURATOR = "04_curator"
#: Name of the lock file inside the outputs folder.
LOCK_NAME = "vespa-curate.lock"
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"


class LockedError(RuntimeError):
    """Another run holds the lock; the message says which and since when."""


class StageFailed(RuntimeError):
    """A stage notebook failed; ``notebook`` is the executed notebook kept with its error."""

    def __init__(self, message: str, notebook: Path | None = None):
        super().__init__(message)
        self.notebook = notebook


def utc_stamp(now: _dt.datetime | None = None) -> str:
    """The UTC stamp naming a run (``YYYYmmddTHHMMSSZ``)."""
    now = now or _dt.datetime.now(_dt.timezone.utc)
    return now.astimezone(_dt.timezone.utc).strftime(STAMP_FORMAT)


def outputs_dir(params: Mapping) -> Path:
    """The (absolute) folder receiving run folders for these parameters."""
    return paths.resolve(params.get("outputs") or "outputs/runs")


def run_dir(params: Mapping, stamp: str) -> Path:
    """``<outputs>/<stamp>/<service>`` (not created)."""
    return outputs_dir(params) / stamp / params["service"]


def latest_run_dir(params: Mapping, stage_done: str | None = None) -> Path | None:
    """The newest run folder of ``params['service']`` (optionally one holding a file).

    Parameters
    ----------
    stage_done : str, optional
        A file that must exist in the folder (e.g. ``"rows.parquet"``).
    """
    root = outputs_dir(params)
    if not root.is_dir():
        return None
    for d in sorted(root.iterdir(), reverse=True):
        cand = d / params["service"]
        if cand.is_dir() and (stage_done is None or (cand / stage_done).exists()):
            return cand
    return None


def resolve_run_dir(params: Mapping, run_dir_value: str | None, need: str | None = None,
                    create: bool = False) -> Path:
    """The run folder a notebook works in.

    ``run_dir_value`` given (papermill passes it) → that folder. Else, for an interactive
    session: a new folder when ``create`` (the harvest), otherwise the newest run folder
    of the service holding ``need``.

    Raises
    ------
    FileNotFoundError
        When no run folder fits; the message says which command makes one.
    """
    if run_dir_value:
        p = paths.resolve(run_dir_value, Path.cwd())
    elif create:
        p = run_dir(params, utc_stamp())
    else:
        p = latest_run_dir(params, need)
        if p is None:
            raise FileNotFoundError(
                f"no run folder of {params['service']} under {outputs_dir(params)}"
                + (f" holds {need}" if need else "")
                + f"; run 01_harvest first (vespa-curate run {params['service']})")
    if create:
        p.mkdir(parents=True, exist_ok=True)
    elif not p.is_dir():
        raise FileNotFoundError(f"run folder {p} does not exist")
    return p


# -- lock -------------------------------------------------------------------------------

class RunLock:
    """An exclusive ``flock`` on ``<folder>/vespa-curate.lock``; a context manager.

    Parameters
    ----------
    folder : path
        The outputs folder (created when missing).
    wait : float
        Seconds to wait for the lock; 0 = fail at once. The lock is released when the
        process ends, however it ends, so a killed run never leaves a stale lock.
    what : str
        What holds the lock (written into the lock file for the message of a refused run).
    """

    def __init__(self, folder: str | os.PathLike, wait: float = 0.0, what: str = "run"):
        self.path = Path(folder) / LOCK_NAME
        self.wait = float(wait)
        self.what = what
        self._fh = None

    def holder(self) -> str:
        try:
            info = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return "another vespa-curate process"
        return (f"{info.get('what', 'a run')} (pid {info.get('pid', '?')}, "
                f"since {info.get('since', '?')})")

    def acquire(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+", encoding="utf-8")
        deadline = time.monotonic() + self.wait
        announced = False
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    fh.close()
                    raise
                if time.monotonic() >= deadline:
                    fh.close()
                    raise LockedError(
                        f"{self.path} is held by {self.holder()}; "
                        + (f"waited {self.wait:.0f} s; " if self.wait else "")
                        + "two runs never overlap: try again later or pass --wait SECONDS")
                if not announced:
                    log.info("waiting up to %.0f s for %s held by %s", self.wait,
                             self.path, self.holder())
                    announced = True
                time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"what": self.what, "pid": os.getpid(),
                             "since": utc_stamp()}))
        fh.flush()
        self._fh = fh
        return self

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


class MultiLock:
    """Several :class:`RunLock` taken in a fixed (sorted) order, released together."""

    def __init__(self, folders: Iterable[str | os.PathLike], wait: float = 0.0,
                 what: str = "run"):
        uniq = sorted({str(Path(f).resolve()) for f in folders})
        self.locks = [RunLock(f, wait, what) for f in uniq]

    def __enter__(self):
        taken = []
        try:
            for lk in self.locks:
                taken.append(lk.acquire())
        except BaseException:
            for lk in reversed(taken):
                lk.release()
            raise
        return self

    def __exit__(self, *exc):
        for lk in reversed(self.locks):
            lk.release()


# -- logging ----------------------------------------------------------------------------

_FMT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def console_logging(level: int = logging.INFO) -> None:
    """Log records of the package and papermill to stderr (once)."""
    root = logging.getLogger()
    if not any(getattr(h, "_vespa_console", False) for h in root.handlers):
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter(_FMT, "%H:%M:%S"))
        h._vespa_console = True
        root.addHandler(h)
    root.setLevel(min(root.level or level, level) if root.handlers else level)
    for name in ("vespa_curation", "papermill"):
        logging.getLogger(name).setLevel(level)


class run_log:
    """Context manager adding ``<run_dir>/run.log`` to the package and papermill loggers."""

    def __init__(self, folder: Path, level: int = logging.INFO):
        self.path = Path(folder) / "run.log"
        self.level = level
        self._h = None

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._h = logging.FileHandler(self.path, encoding="utf-8")
        self._h.setFormatter(logging.Formatter(_FMT))
        self._h.setLevel(self.level)
        for name in ("vespa_curation", "papermill"):
            lg = logging.getLogger(name)
            lg.addHandler(self._h)
            if lg.level == logging.NOTSET or lg.level > self.level:
                lg.setLevel(self.level)
        return self.path

    def __exit__(self, *exc):
        for name in ("vespa_curation", "papermill"):
            logging.getLogger(name).removeHandler(self._h)
        self._h.close()


# -- execution --------------------------------------------------------------------------

def kernel_name() -> str:
    """The Jupyter kernel of this interpreter's environment.

    ``python3`` as found first in ``sys.prefix/share/jupyter`` (``make venv`` installs it
    there, running this environment's python) — :func:`execute_stage` puts that folder
    first on ``JUPYTER_PATH`` so a user-level ``python3`` kernelspec pointing at another
    Python never runs the stages; without it, ipykernel's native ``python3`` runs
    ``sys.executable``. ``VESPA_CURATE_KERNEL`` names another kernel.
    """
    return os.environ.get("VESPA_CURATE_KERNEL", "python3")


def _prefer_env_kernels() -> None:
    share = Path(sys.prefix) / "share" / "jupyter"
    if (share / "kernels").is_dir():
        cur = os.environ.get("JUPYTER_PATH", "")
        parts = [p for p in cur.split(os.pathsep) if p]
        if str(share) not in parts[:1]:
            os.environ["JUPYTER_PATH"] = os.pathsep.join([str(share)] + parts)


def notebook_parameters(params: Mapping, folder: Path, params_file: str | None,
                        overrides: Sequence[str]) -> dict:
    """The values papermill injects into a stage notebook's ``parameters`` cell.

    The notebooks run in the project root: a source the user named (``-p``, ``-f``),
    relative to the working directory, is passed on as the absolute one it resolved to."""
    overrides = list(overrides or [])
    if params_file or any(o.startswith("source=") for o in overrides):
        overrides = [o for o in overrides if not o.startswith("source=")] \
            + [f"source={params['source']}"]
    return {"service": params["service"],
            "params_file": str(paths.resolve(params_file, Path.cwd())) if params_file else None,
            "overrides": overrides,
            "run_dir": str(folder)}


def _papermill():
    """papermill, imported without jsonschema's RFC 3987 (IRI) format checker.

    jsonschema imports ``rfc3987_syntax`` when it is installed (jupyter-events pulls it
    in), and that module builds an Earley parser of RFC 3987 at import: 2.8 s of every
    ``vespa-curate run``. papermill and nbformat validate notebooks against schemas with
    no ``iri`` format, and jsonschema imports the checker under ``suppress(ImportError)``,
    so this process marks the module absent (only when jsonschema is not loaded yet, and
    never over a module already imported)."""
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)
    import papermill
    return papermill


#: What a stage's kernel runs while the stages before it run, besides the notebook's
#: own imports (:func:`notebook_imports`), ``{service}`` being the service's name: what
#: the stage would otherwise do first, on its own time — the QA's lazily imported
#: figure modules, and the service's warm-up (hfc1ar: the compiled kernels and the
#: ephemeris its first chunk loads, ≈ 0.5 s in each worker forked after); the
#: export's service declaration and mocpy.
WARM_UP: dict[str, str] = {
    "01_harvest": "from vespa_curation.harvest import warm_up; warm_up({service!r})",
    "02_qa": "from vespa_curation.qa.report import warm_up; warm_up({service!r})",
    "03_export": "from vespa_curation.export.stage import warm_up; warm_up({service!r})",
}


def stage_warm_up(stage: str, service: str) -> list[str]:
    """What a stage's kernel runs ahead of the stage (:class:`WarmKernel`), and the run's
    kernel fork server before it forks that kernel (:func:`start_fork_server`): the notebook's
    imports and the stage's :data:`WARM_UP`, as source lines."""
    code = notebook_imports(paths.NOTEBOOKS / f"{stage}.ipynb")
    return code + ([WARM_UP[stage].format(service=service)] if stage in WARM_UP else [])


def preload_step(stage: str, service: str) -> str:
    """The fork server's name of the step preloading ``stage`` of ``service``."""
    return f"{stage}:{service}"


def notebook_imports(path: Path) -> list[str]:
    """The top-level ``import``/``from ... import`` statements of a notebook's code
    cells, as source lines (what a kernel can run before the notebook's parameters are
    known)."""
    import ast
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    out = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        src = "".join(cell.get("source", []))
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        out += [ast.unparse(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    return out


@functools.lru_cache(maxsize=None)
def _kernel_manager():
    """jupyter_client's ``AsyncKernelManager``, waiting for a killed kernel's end by
    polling every 5 ms instead of every 0.1 s: a stage's kernel is killed once its
    last cell has replied (:func:`_warm_engine`) and dies within tens of milliseconds
    (its memory freed), so the 0.1 s poll added up to 0.1 s to every stage (measured
    on the QA's kernel: shutdown 0.11 s → 0.026 s)."""
    from jupyter_client.manager import AsyncKernelManager

    class KernelManager(AsyncKernelManager):
        #: the fork server's step this kernel needs (:func:`preload_step`)
        preload_step: str | None = None

        async def _async_wait(self, pollinterval: float = 0.005) -> None:
            await super()._async_wait(pollinterval=min(pollinterval, 0.005))

        async def _async_launch_kernel(self, kernel_cmd, **kw):
            # forked by the run's fork server when there is one and it runs this
            # interpreter; otherwise started as jupyter_client starts it
            server = _FORK_SERVER
            if server is None or not server.serves(kernel_cmd):
                return await super()._async_launch_kernel(kernel_cmd, **kw)
            env = dict(kw.get("env") or os.environ)
            env["JPY_PARENT_PID"] = str(os.getpid())   # as jupyter_client's launcher
            prov = self.provisioner
            prov.process = server.launch(kernel_cmd, env, kw.get("cwd"), self.preload_step)
            prov.pid = prov.pgid = None     # signals: the ForkedKernel, to its session
            prov.cwd = kw.get("cwd")
            self._reconcile_connection_info(prov.connection_info)

    return KernelManager


#: The fork server of the run in progress (:func:`start_fork_server`), or None.
_FORK_SERVER = None


def start_fork_server(services: Sequence[str]):
    """Start the run's kernel fork server (:mod:`vespa_curation.kernelfork`), preloading
    each stage of each of ``services`` in run order; None when disabled
    (``VESPA_CURATE_FORK_KERNELS=0``, ``VESPA_CURATE_WARM_KERNELS=0``), when one runs
    already, or when it cannot start (kernels then start as their own processes).
    :func:`stop_fork_server` ends it."""
    global _FORK_SERVER
    from . import kernelfork
    if _FORK_SERVER is not None or not kernelfork.enabled() or not _warm_kernels() \
            or not services:
        return None
    try:
        parts = kernelfork.split_kernel_command(_kernel_argv())
        if parts is None:
            return None
        steps = [(preload_step(stage, svc), "\n".join(stage_warm_up(stage, svc)))
                 for svc in services for stage in STAGES]
        _FORK_SERVER = kernelfork.KernelForkServer(parts[0], steps, str(paths.ROOT))
    except Exception as e:  # noqa: BLE001 — the kernels start as their own processes
        log.warning("no kernel fork server: %s", e)
        return None
    return _FORK_SERVER


def _kernel_argv() -> list[str]:
    """The command of this environment's kernel (:func:`kernel_name`): its
    ``kernel.json`` in ``sys.prefix/share/jupyter``, which :func:`_prefer_env_kernels`
    puts first — read directly, so that the fork server starts before jupyter_client
    is imported (0.1 s) —, else jupyter_client's kernel spec of that name."""
    _prefer_env_kernels()
    spec = Path(sys.prefix) / "share" / "jupyter" / "kernels" / kernel_name() / "kernel.json"
    if spec.is_file():
        argv = list(json.loads(spec.read_text(encoding="utf-8"))["argv"])
    else:
        from jupyter_client.kernelspec import KernelSpecManager
        argv = list(KernelSpecManager().get_kernel_spec(kernel_name()).argv)
    # as jupyter_client's format_kernel_cmd: a bare ``python`` is this interpreter
    if argv and argv[0] in {"python", f"python{sys.version_info[0]}",
                            "python{}.{}".format(*sys.version_info[:2])}:
        argv[0] = sys.executable
    return argv


def stop_fork_server(server=None) -> None:
    """End the run's fork server (``server``: only if it is that one); the kernels it
    forked are shut down by then."""
    global _FORK_SERVER
    if _FORK_SERVER is not None and (server is None or server is _FORK_SERVER):
        s, _FORK_SERVER = _FORK_SERVER, None
        s.close()


class WarmKernel:
    """A stage's kernel, started and importing what the stage needs ahead of the stage
    (:func:`run_service`: the later stages' kernels during the first stage; each
    kernel's start and imports cost 3–4 s of a run).

    The kernel is the one papermill would start (same kernelspec, working directory,
    in-memory IPython history); its warm-up runs as a silent execution, so the
    notebook's cells queue behind it and see nothing of it but modules already
    imported. :meth:`take` hands the running kernel manager to papermill (None when the
    kernel died: papermill then starts its own); :meth:`close` shuts it down."""

    def __init__(self, stage: str, service: str):
        from jupyter_core.utils import run_sync
        self.stage = stage
        self.service = service
        _prefer_env_kernels()
        code = stage_warm_up(stage, service)
        # what the imports and the warm-up loaded lives as long as the kernel: out of
        # the garbage collector's full passes (they walked all of it again and again:
        # the harvest's driver 0.28 → 0.02 s of such passes at 184 000 regions), and
        # out of them in the workers the stage forks
        code += ["import gc as _gc; _gc.freeze(); del _gc"]
        self.km = _kernel_manager()(kernel_name=kernel_name())
        # forked, when the run has a fork server, once it has run this code itself
        self.km.preload_step = preload_step(stage, service)
        run_sync(self.km.start_kernel)(
            cwd=str(paths.ROOT), extra_arguments=["--HistoryManager.hist_file=:memory:"])
        self.kc = self.km.blocking_client()
        self.kc.start_channels()
        self.msg_id = self.kc.execute("\n".join(code), silent=True, store_history=False)

    def _wait_warm_up(self, timeout: float = 120.0) -> None:
        """Wait for the warm-up's reply (at once when it is long done): closing the
        channels earlier could drop the request before the kernel has read it."""
        import queue
        from jupyter_core.utils import run_sync
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = self.kc.get_shell_msg(timeout=0.5)
            except queue.Empty:
                if not run_sync(self.km.is_alive)():
                    return
                continue
            if msg.get("parent_header", {}).get("msg_id") == self.msg_id:
                c = msg.get("content", {})
                if c.get("status") != "ok":
                    log.debug("warm-up of stage %s: %s: %s", self.stage, c.get("ename"),
                              c.get("evalue"))
                return

    def take(self):
        """The kernel manager, for papermill (``km=``), or None when the kernel died."""
        from jupyter_core.utils import run_sync
        self._wait_warm_up()
        self.kc.stop_channels()
        if self.km is not None and not run_sync(self.km.is_alive)():
            log.warning("the kernel started for stage %s died; papermill starts another",
                        self.stage)
            self.close()
        return self.km

    def close(self, now: bool = False) -> None:
        """Shut the kernel down unless papermill already did (once); ``now``: kill it
        rather than ask it to exit (a kernel never used: it may still be importing)."""
        from jupyter_core.utils import run_sync
        if self.kc is not None:
            self.kc.stop_channels()
            self.kc = None
        if self.km is not None:
            km, self.km = self.km, None
            try:
                if run_sync(km.is_alive)():
                    run_sync(km.shutdown_kernel)(now=now)
            except Exception as e:  # noqa: BLE001 — already gone: nothing to shut down
                log.debug("kernel of stage %s: %s", self.stage, e)


async def _kernel_ready(kc, timeout: float) -> None:
    """Wait until the kernel of client ``kc`` answers on its shell channel and its IOPub
    messages reach ``kc``: a ``kernel_info`` request's reply, then that request's idle
    status on IOPub (messages before it, the warm-up's, are read and dropped); the
    request is sent again until both come (IOPub subscribes late: it may miss the
    first), at most ``timeout`` seconds.

    What jupyter_client's ``wait_for_ready`` checks, without its last step: reading
    IOPub until 0.2 s pass without a message, 0.2 s of every stage of a run."""
    import queue
    from jupyter_core.utils import ensure_async
    deadline = time.monotonic() + timeout
    while True:
        msg_id = kc.kernel_info()
        reply = None
        try:
            while reply is None:
                m = await ensure_async(kc.shell_channel.get_msg(timeout=1))
                if m["parent_header"].get("msg_id") == msg_id:
                    reply = m
        except queue.Empty:
            pass
        if reply is not None:
            until = time.monotonic() + 1.0
            try:
                while True:
                    m = await ensure_async(kc.iopub_channel.get_msg(
                        timeout=max(0.01, until - time.monotonic())))
                    if m["parent_header"].get("msg_id") == msg_id and \
                            m["msg_type"] == "status" and \
                            m["content"].get("execution_state") == "idle":
                        kc._handle_kernel_info_reply(reply)
                        return
            except queue.Empty:
                pass
        if not await ensure_async(kc.is_alive()):
            raise RuntimeError("Kernel died before replying to kernel_info")
        if time.monotonic() > deadline:
            raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")


def _warm_engine():
    """The papermill engine running a notebook in a :class:`WarmKernel`'s kernel
    (``km=``): papermill's nbclient engine, whose client then stops its channels and
    shuts the kernel down at the end as it does for a kernel it started (nbclient keeps
    a kernel it was given alive, with the heartbeat thread of its client). The kernel is
    stopped at once rather than asked to exit (0.6 s a stage): its last cell has
    replied and its outputs have arrived, and what a stage writes is closed by then."""
    from jupyter_core.utils import run_sync
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.utils import merge_kwargs, remove_args

    class Client(PapermillNotebookClient):
        def execute(self, **kwargs):
            return super().execute(cleanup_kc=True, **kwargs)

        async def async_start_new_kernel_client(self):
            # nbclient's, with the readiness check of _kernel_ready (0.2 s a stage less)
            from jupyter_core.utils import ensure_async
            from nbclient.util import run_hook
            self.kc = self.km.client()
            await ensure_async(self.kc.start_channels())
            try:
                await _kernel_ready(self.kc, self.startup_timeout)
            except Exception:
                await self._async_cleanup_kernel()
                raise
            self.kc.allow_stdin = False
            await run_hook(self.on_notebook_start, notebook=self.nb)
            return self.kc

        # papermill's setup calls the blocking twin, which nbclient bound to its own
        start_new_kernel_client = run_sync(async_start_new_kernel_client)

    class WarmKernelEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False,
                                     stdout_file=None, stderr_file=None, start_timeout=60,
                                     execution_timeout=None, **kwargs):
            # as NBClientEngine.execute_managed_notebook (papermill 2.6), with Client
            kwargs = remove_args(["input_path", "timeout", "startup_timeout"], **kwargs)
            return Client(nb_man, **merge_kwargs(
                kwargs, timeout=execution_timeout, startup_timeout=start_timeout,
                kernel_name=kernel_name, log=logging.getLogger("papermill"),
                shutdown_kernel="immediate",
                log_output=log_output, stdout_file=stdout_file,
                stderr_file=stderr_file)).execute()

    papermill_engines.register("vespa-warm-kernel", WarmKernelEngine)
    return "vespa-warm-kernel"


def execute_stage(stage: str, folder: Path, parameters: Mapping,
                  progress: bool = True, warm: WarmKernel | None = None) -> Path:
    """Run one stage notebook into ``folder`` through papermill (in ``warm``'s kernel
    when one was started for it; it is shut down once the stage ends).

    Returns
    -------
    Path
        The executed notebook.

    Raises
    ------
    StageFailed
        When a cell raised; the executed notebook (with the error) is kept.
    """
    pm = _papermill()
    from papermill.exceptions import PapermillExecutionError

    _prefer_env_kernels()
    src = paths.NOTEBOOKS / f"{stage}.ipynb"
    out = Path(folder) / f"{stage}.ipynb"
    log.info("%s: stage %s starts (%s)", parameters["service"], stage, out)
    t0 = time.monotonic()
    try:
        km = warm.take() if warm is not None else None
        pm.execute_notebook(
            str(src), str(out), parameters=dict(parameters), kernel_name=kernel_name(),
            progress_bar=progress, log_output=True, cwd=str(paths.ROOT),
            report_mode=False,
            **({"km": km, "engine_name": _warm_engine()} if km is not None else {}))
    except PapermillExecutionError as e:
        log.error("%s: stage %s failed in cell %s: %s: %s — the executed notebook "
                  "with the error is %s", parameters["service"], stage,
                  e.exec_count, e.ename, e.evalue, out)
        raise StageFailed(f"{parameters['service']}: stage {stage} failed: "
                          f"{e.ename}: {e.evalue} (see {out})", out) from None
    except Exception as e:  # kernel died, notebook missing, ...
        log.error("%s: stage %s could not run: %s", parameters["service"], stage, e)
        raise StageFailed(f"{parameters['service']}: stage {stage} could not run: {e}",
                          out if out.exists() else None) from e
    finally:
        if warm is not None:
            warm.close()
    log.info("%s: stage %s done in %.1f s", parameters["service"], stage,
             time.monotonic() - t0)
    return out


def _warm_kernels() -> bool:
    """Whether stage kernels start ahead of their stage (``VESPA_CURATE_WARM_KERNELS``
    not ``0``)."""
    return os.environ.get("VESPA_CURATE_WARM_KERNELS", "1") != "0"


def _warm_kernel(stage: str, service: str) -> WarmKernel | None:
    """A :class:`WarmKernel` for ``stage``, or None (papermill then starts the kernel
    itself) when ``VESPA_CURATE_WARM_KERNELS=0`` or the kernel cannot start."""
    if not _warm_kernels():
        return None
    try:
        return WarmKernel(stage, service)
    except Exception as e:  # noqa: BLE001 — papermill starts it and reports why not
        log.warning("could not start the kernel of stage %s ahead: %s", stage, e)
        return None


@dataclass
class RunResult:
    """What one service's run did."""

    service: str
    folder: Path
    ok: bool = True
    stages: list = field(default_factory=list)
    error: str | None = None
    #: the next service's first kernel, started during this one's last stage
    handoff: "WarmKernel | None" = field(default=None, repr=False, compare=False)


def run_service(params: Mapping, stamp: str, params_file: str | None = None,
                overrides: Sequence[str] = (), stages: Sequence[str] = STAGES,
                progress: bool = True, first: WarmKernel | None = None,
                after: str | None = None) -> RunResult:
    """Run the stages of one service into ``<outputs>/<stamp>/<service>/``.

    The caller has already checked ``params`` (:func:`vespa_curation.config.load_config`)
    and holds the lock. ``first``: the first stage's kernel, when the caller started it
    (:func:`first_kernel`); it is shut down here, used or not. The later stages'
    kernels start when the first stage does (:class:`WarmKernel`); those a failed
    stage leaves unused are shut down. ``after``: the service run next, whose first
    stage's kernel starts while this one's last stage runs; it is the result's
    ``handoff``, for the caller to give on (or shut down).
    """
    folder = run_dir(params, stamp)
    folder.mkdir(parents=True, exist_ok=True)
    res = RunResult(params["service"], folder)
    nb_params = notebook_parameters(params, folder, params_file, overrides)
    with run_log(folder):
        log.info("%s: run %s in %s", params["service"], stamp, folder)
        # the later stages' kernels start, and import, during the first stage: the
        # harvest, long and busy on every core, absorbs their start (≈ 1 s of CPU
        # each), which the short QA would otherwise share with its own work
        svc = params["service"]
        warm = {0: first if first is not None else
                (_warm_kernel(stages[0], svc) if stages else None)}
        handoff = None
        try:
            for k, stage in enumerate(stages):
                if k == 0:      # every later stage's kernel: during the first stage
                    warm.update({j: _warm_kernel(stages[j], svc)
                                 for j in range(1, len(stages))})
                if k + 1 == len(stages) and after:
                    handoff = _warm_kernel(STAGES[0], after)
                try:
                    execute_stage(stage, folder, nb_params, progress=progress,
                                  warm=warm.pop(k, None))
                except StageFailed as e:
                    res.ok, res.error = False, str(e)
                    break
                res.stages.append(stage)
        except BaseException:
            if handoff is not None:
                handoff.close(now=True)
            handoff = None      # the run stops: nothing to hand on
            raise
        finally:
            for w in warm.values():
                if w is not None:
                    w.close(now=True)    # never used: it may still be importing
        res.handoff = handoff
        log.info("%s: run %s %s", params["service"], stamp,
                 "completed" if res.ok else "FAILED")
    return res


def first_kernel(service: str) -> WarmKernel | None:
    """The kernel of ``service``'s first stage, started at once: ``vespa-curate run``
    starts it before its own imports, its parameters' checks and the lock (≈ 1 s), so
    that the kernel's start and warm-up (≈ 2 s) overlap them instead of following them.
    Give it to :func:`run` (``first=``), which shuts it down whatever happens."""
    return _warm_kernel(STAGES[0], service)


def run(services_params: Sequence[Mapping], params_file: str | None = None,
        overrides: Sequence[str] = (), wait: float = 0.0, stamp: str | None = None,
        progress: bool = True, first: WarmKernel | None = None) -> list[RunResult]:
    """Run every service of ``services_params`` (checked parameters) under one lock.

    ``first``: the first stage's kernel of the first service, when the caller started
    it (:func:`first_kernel`; shut down here, used or not: a kernel started for another
    service than the first is not used).

    All services of one invocation share one UTC stamp. A failed service does not stop
    the others. Holding the lock, it first removes what killed runs left in the run
    folders (:func:`vespa_curation.runfolder.remove_scratch`: staged export rows,
    Parquet files half written).

    Raises
    ------
    LockedError
        When another run holds the lock (nothing has been written).
    """
    if first is not None and (not services_params or first.service
                              != services_params[0]["service"]):
        first.close(now=True)
        first = None
    # the kernels forked from one server (unless the caller started it already)
    own = start_fork_server([p["service"] for p in services_params])
    try:
        return _run_locked(services_params, params_file, overrides, wait, stamp,
                           progress, first)
    finally:
        if first is not None:   # never used (the lock was held), or already shut down
            first.close(now=True)
        if own is not None:
            stop_fork_server(own)


def _run_locked(services_params, params_file, overrides, wait, stamp, progress, first
                ) -> list[RunResult]:
    """:func:`run` once its first kernel is checked."""
    from .runfolder import remove_scratch
    results: list[RunResult] = []
    with MultiLock([outputs_dir(p) for p in services_params], wait=wait,
                   what=f"vespa-curate run {' '.join(p['service'] for p in services_params)}"):
        for folder in sorted({outputs_dir(p) for p in services_params}):
            for f in remove_scratch(folder):
                log.info("removed %s, left by a run that was killed", f)
        if stamp is None:
            stamp = utc_stamp()
            # two runs within one second (the lock just passed): never share a folder
            while any((outputs_dir(p) / stamp).exists() for p in services_params):
                time.sleep(0.2)
                stamp = utc_stamp()
        ahead = first
        try:
            for k, p in enumerate(services_params):
                after = services_params[k + 1]["service"] \
                    if k + 1 < len(services_params) else None
                res = run_service(p, stamp, params_file, overrides, progress=progress,
                                  first=ahead, after=after)
                ahead, res.handoff = res.handoff, None
                results.append(res)
        finally:
            if ahead is not None:
                ahead.close(now=True)
    return results


# -- inside a notebook ------------------------------------------------------------------

def notebook_setup(level: int = logging.INFO) -> None:
    """First lines of every stage notebook: offline, logged, headless-safe.

    IERS downloads off (the bundled tables serve), the package's log records printed
    into the cell output (papermill copies them into ``run.log`` and the terminal), and
    figures made through :mod:`vespa_curation.qa` use the Agg canvas, so a cron run
    needs no display.
    """
    try:
        from astropy.utils import iers
        iers.conf.auto_download = False
    except ImportError:
        pass
    lg = logging.getLogger("vespa_curation")
    if not any(getattr(h, "_vespa_nb", False) for h in lg.handlers):
        h = logging.StreamHandler(sys.stdout)
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s",
                                         "%H:%M:%S"))
        h._vespa_nb = True
        lg.addHandler(h)
    lg.setLevel(level)
    lg.info("kernel python: %s", sys.executable)
