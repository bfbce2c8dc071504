"""Worker processes of the stages: the map workers of the harvest, the figure workers of
the QA gallery, the VOTable writers of the export. :func:`executor` gives the configured executor (in process, local
processes forked from the stage, or a Dask cluster); each local worker dies with the
process that forked it (:func:`die_with_parent`), so a killed run leaves no worker
behind.
"""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context


def executor(params, fork_now: bool = False):
    """(submit, shutdown, window) of the configured executor: in process, local
    processes (forked at once with ``fork_now``: :func:`local_pool`), or a Dask
    cluster."""
    if params.get("dask_scheduler"):
        from distributed import Client
        client = Client(params["dask_scheduler"])
        return client.submit, client.close, max(2, 2 * len(client.nthreads()))
    if int(params.get("workers", 1)) <= 1:
        return (*in_process(), 1)
    submit, shutdown = local_pool(int(params["workers"]), fork_now=fork_now)
    return submit, shutdown, 2 * int(params["workers"])


class Done:
    """A result computed at once, with a future's ``result``."""

    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value


def in_process():
    """(submit, shutdown) that run each task at once in this process."""
    return (lambda f, *a: Done(f(*a))), (lambda: None)


def local_pool(n: int, fork_now: bool = False):
    """(submit, shutdown) of ``n`` local worker processes, each killed when its parent
    dies. They are forked at the first task, from what the calling process holds then;
    ``fork_now`` forks them at once (a forked worker's RSS counts its parent's pages:
    fork before reading much)."""
    pool = ProcessPoolExecutor(max_workers=n, mp_context=get_context("fork"),
                               initializer=start_worker, initargs=(os.getpid(),))
    if fork_now:
        pool.submit(os.getpid).result()     # the first task forks every worker
    return pool.submit, pool.shutdown


def start_worker(parent_pid: int) -> None:
    """A local worker's first step: freeze what it inherited (``gc.freeze``), then
    :func:`die_with_parent`.

    The stage's hundreds of thousands of long-lived objects (the imported libraries,
    the warmed kernels) are then never walked by the worker's garbage collections: each
    full collection walked them all and, writing their GC headers, copied their pages
    (a QA gallery worker: 35 000 page faults, its figures ≈ 25 % slower). What the
    worker makes itself is collected as before."""
    import gc
    gc.freeze()
    die_with_parent(parent_pid)


#: ``prctl`` option asking the kernel to signal a process when its parent dies (Linux).
PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """A map worker's first step: be killed (SIGKILL) when the process that forked it
    dies, however it dies — a worker blocked on its task queue never notices a parent
    killed with SIGKILL, and would stay forever (holding memory and the source's
    connection). Linux only (``prctl(PR_SET_PDEATHSIG)``); elsewhere, nothing. The
    parent may have died between the fork and this call: then exit at once."""
    import ctypes
    import signal
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):   # not Linux: no such call
        return
    if os.getppid() != parent_pid:
        os._exit(1)


def release_memory() -> None:
    """Give back to the system what this process freed: Arrow's unused pool and the C
    heap's free pages (``malloc_trim``, glibc; elsewhere nothing). A long stage that
    frees large transient buffers otherwise keeps them in its RSS, which the worker
    processes it forks then count again."""
    import ctypes
    import pyarrow as pa
    pa.default_memory_pool().release_unused()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):   # not glibc
        pass
