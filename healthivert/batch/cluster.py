"""The Dask client a batch runs on: a local cluster of worker processes, or an existing one."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from healthivert.batch.task import THREAD_ENV_VARS
from healthivert.errors import InputError

logger = logging.getLogger(__name__)


@contextmanager
def batch_client(workers: int = 2, scheduler: str | None = None, allowed_failures: int = 2,
                 connect_timeout_s: float = 30.0) -> Iterator:
    """Yield a ``distributed.Client``; close it (and the local cluster) on exit.

    Args:
        workers: worker processes of the local cluster (ignored with ``scheduler``); each has
            one thread, and BLAS/OpenMP/torch/ITK use one thread in it.
        scheduler: address of an existing scheduler (``tcp://host:8786``); None starts a
            ``LocalCluster`` on this machine.
        allowed_failures: how often a task may be on a worker that dies (killed, out of memory)
            before it is given up (``distributed.scheduler.allowed-failures``); a task is tried
            at most ``allowed_failures + 1`` times. Applies to the local cluster's scheduler
            only: an existing scheduler keeps its own setting.
        connect_timeout_s: how long to wait for ``scheduler``.

    Raises:
        InputError: ``scheduler`` cannot be reached.
    """
    import dask
    from distributed import Client, LocalCluster

    if workers < 1:
        raise ValueError(f"workers must be at least 1; got {workers}")
    if allowed_failures < 0:
        raise ValueError(f"allowed_failures must be at least 0; got {allowed_failures}")
    if scheduler:
        try:
            client = Client(scheduler, timeout=f"{connect_timeout_s}s")
        except (OSError, TimeoutError) as exc:
            raise InputError(f"cannot reach the Dask scheduler at {scheduler} ({' '.join(str(exc).split())})") \
                from None
        with client:
            try:
                theirs = client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.allowed_failures)
            except Exception as exc:  # e.g. run_on_scheduler blocked there
                theirs = f"? ({type(exc).__name__})"
            if theirs != allowed_failures:
                logger.warning("scheduler %s allows %s worker deaths per task (asked for %s); set "
                               "distributed.scheduler.allowed-failures where it starts", scheduler, theirs,
                               allowed_failures)
            yield client
        return
    with dask.config.set({"distributed.scheduler.allowed-failures": allowed_failures}):  # read by the Scheduler
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True,
            env={name: "1" for name in THREAD_ENV_VARS},  # set before the worker process starts
            silence_logs=logging.ERROR, dashboard_address=None,
        )
    with cluster, Client(cluster) as client:
        yield client
