"""``medledger serve``: one member node (FastAPI + uvicorn) from the settings (env / config file).

With ``--workers N`` (or ``MEDLEDGER_API_WORKERS``) N processes serve the API on one listening
socket, so the node uses more than one core (a single Python process is bound by its GIL), and
one more process runs the background jobs: one transaction sender per member key keeps nonces in
order, and one notification scanner matches each chain event once. The jobs have a process of
their own because anchoring a Merkle batch of a few hundred access entries holds its process's
GIL for tens of milliseconds; in an API process that stalled every request of the process
(measured: fetches at 300/s slowed to 50-130 ms in bursts, one per batch, which made the p99).
Everything the processes share lives in the database (sequence allocation under the database's
write lock or row lock, nonces, sessions), so they need no other coordination.
"""

from __future__ import annotations

import gc
import multiprocessing
import signal
import socket
import time
from typing import TYPE_CHECKING, Annotated

import typer

from ledger_api.cli.output import reported_errors

if TYPE_CHECKING:
    from ledger_api.node import Node


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8601,
    log_level: Annotated[str, typer.Option(help="Log level.")] = "INFO",
    workers: Annotated[int | None, typer.Option(min=1, max=64, help="API processes (default: settings).")] = None,
) -> None:
    """Serves this member's node. Settings: MEDLEDGER_* variables or the JSON file in MEDLEDGER_CONFIG."""
    from ledger_api.core.config import Settings
    from ledger_api.core.db import make_engine, migrate
    from ledger_api.core.key_vault import KeyVault
    from ledger_api.core.observability import configure_logging
    from ledger_api.records.blobs import sweep_orphans

    configure_logging(log_level.upper())
    with reported_errors():
        settings = Settings()
        count = workers or settings.api_workers
        if count == 1:
            _serve_process(None, log_level, host, port)
            return
        engine = make_engine(settings.resolved_database_url)
        migrate(engine)  # once, before the processes start
        sweep_orphans(
            engine,
            settings.blob_dir,
            older_than=time.time(),  # nothing can be mid-upload yet
            vault=KeyVault(settings.vault_dir),
        )
        engine.dispose()
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(2048)
    listener.set_inheritable(True)
    context = multiprocessing.get_context("spawn")  # fresh interpreters: no inherited threads, engines or loops
    processes = [
        context.Process(target=_serve_process, args=(listener, log_level, host, port), name=f"medledger-api-{index}")
        for index in range(count)
    ]
    if settings.run_outbox_worker:  # unless this node's jobs run elsewhere (or not at all)
        processes.append(context.Process(target=_run_background_jobs, args=(log_level,), name="medledger-jobs"))
    for process in processes:
        process.start()
    stopping: list[int] = []  # a plain flag: a signal handler must not take locks the main thread may hold

    def stop(signum: int, _frame: object) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping and all(p.is_alive() for p in processes):
        time.sleep(0.2)
    for process in processes:
        if process.is_alive():
            process.terminate()  # SIGTERM: uvicorn finishes in-flight requests, then the app's lifespan ends
    for process in processes:
        process.join(timeout=30)
    listener.close()
    if not stopping:
        raise typer.Exit(1)  # a process died on its own: let the supervisor see it


def _serve_process(listener: socket.socket | None, log_level: str, host: str, port: int) -> None:
    """One API process: alone (``listener`` None) it also runs the background jobs; one of several,
    it serves requests only (the parent swept the blob store and started the jobs' own process)."""
    import uvicorn

    from ledger_api.main import create_app

    _show_process_name()
    node = _build_node(log_level, one_of_several=listener is not None)
    config = uvicorn.Config(
        create_app(node),
        host=host,
        port=port,
        log_level=log_level.lower(),
        access_log=False,
        timeout_keep_alive=node.settings.limits.keep_alive_s,
    )
    server = uvicorn.Server(config)
    _freeze_start_up_heap()
    if listener is None:
        server.run()
    else:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop (it sends SIGTERM)
        server.run(sockets=[listener])


def _run_background_jobs(log_level: str) -> None:
    """The jobs process of a multi-process node: the outbox sender and the notification scanner,
    until the parent sends SIGTERM (each job finishes the step it is in; SIGINT is the parent's)."""
    from ledger_api.main import background_jobs

    _show_process_name()
    node = _build_node(log_level, one_of_several=True)
    worker, notifier, others = background_jobs(node)
    jobs = [worker, notifier, *others]
    stopping: list[int] = []  # a plain flag, as in ``serve``
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda signum, _frame: stopping.append(signum))
    _freeze_start_up_heap()
    for job in jobs:
        job.start()
    try:
        while not stopping:
            time.sleep(0.2)
    finally:
        for job in jobs:
            job.stop()
        node.close()


def _build_node(log_level: str, *, one_of_several: bool) -> Node:
    """The node as one process sees it. One of several processes: the parent swept the blob store
    before starting them, and no API process runs the background jobs in its app."""
    from ledger_api.core.config import Settings
    from ledger_api.core.observability import configure_logging
    from ledger_api.node import build_node

    configure_logging(log_level.upper())
    with reported_errors():
        settings = Settings()
        if one_of_several:
            settings.run_outbox_worker = False
            settings.sweep_at_start = False
        return build_node(settings)


def _freeze_start_up_heap() -> None:
    """Everything loaded so far (web3, eth-abi, SQLAlchemy, FastAPI, the contracts' ABIs: a few
    hundred thousand objects) lives as long as the process. Frozen, it is no longer rescanned by
    every full garbage collection: under load those took 100-150 ms each, stalling every request
    of the process (p99 of fetches at 300/s went from ~120 ms to ~55 ms); now they take ~15 ms."""
    gc.collect()
    gc.freeze()


def _show_process_name() -> None:
    """Shows a child process's name (``medledger-api-0``, ``medledger-jobs``) to ``ps`` and ``top``
    on Linux, so an operator can tell the processes of a node apart; elsewhere, nothing."""
    if multiprocessing.parent_process() is None:
        return  # ``medledger serve`` with one process keeps its own name
    try:
        with open("/proc/self/comm", "w") as comm:
            comm.write(multiprocessing.current_process().name[:15])  # the kernel keeps 15 characters
    except OSError:
        pass
