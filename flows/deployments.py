"""The two deployments and the long-lived process that serves them (``docintel serve``).

* ``analyze-documents/inbox-batch``: the inbox folder on a cron schedule (``DOCINTEL_INBOX``,
  ``DOCINTEL_INBOX_CRON``, ``DOCINTEL_SCHEDULE_TIMEZONE``), each run writing to ``<outbox>/<run id>``.
* ``analyze-documents/analyze``: ad hoc, for the paths given (``docintel trigger`` or
  ``prefect deployment run analyze-documents/analyze --param paths='["/path/a.pdf"]'``).

Prefect's runner starts each flow run in a fresh subprocess, which would load every model again; so both
deployments run with ``served=True``: the flow run only orchestrates, and the stages execute in the Prefect
task worker this process also runs, whose models stay loaded between runs. The flow-run subprocesses are
forked from a server process that has imported Prefect, the flow and the report writers once
(``forked_flow_runs``), not spawned as fresh interpreters that import them again for every run.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import sys
import threading
import time
from types import SimpleNamespace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.settings import Settings

INBOX_BATCH = "inbox-batch"
ADHOC = "analyze"
WORKER_RESTART_S = 1  # after the warm task worker stopped
POLL_SECONDS = 0.1  # how often the runner looks for a triggered run: half of it is an ad-hoc run's wait
# what a flow run imports (the CLI too: a child re-imports its parent's main module), in the fork server once
# instead of in every flow run, where it took ≈1.9 s of the run's start; prefect.task_worker (FastAPI, uvicorn) is
# what handing a batch to the warm worker (``Task.delay``) imports: ≈0.3 s of each run
FLOW_RUN_IMPORTS = ["flows.cli", "flows.analyze", "flows.flow_run_preload", "sqlalchemy.dialects.sqlite",
                    "prefect.task_worker"]


def deployment_options(settings: Settings) -> dict[str, dict]:
    """Each deployment's name → its options, as ``Flow.to_deployment`` and ``Runner.add_flow`` both take them."""
    from prefect.schedules import Cron
    from prefect.types.entrypoint import EntrypointType

    # imported as flows.analyze in the flow-run process, so its tasks are the ones the task worker serves
    common = {"entrypoint_type": EntrypointType.MODULE_PATH}
    out_dir = str((settings.outbox / "{run_id}").resolve())
    return {
        INBOX_BATCH: {"schedule": Cron(settings.inbox_cron, timezone=settings.schedule_timezone),
                      "parameters": {"paths": [str(settings.inbox.resolve())], "out_dir": out_dir, "served": True},
                      "description": "Scheduled batch over the inbox folder; documents already analysed are reused.",
                      "tags": ["docintel", "scheduled"], **common},
        ADHOC: {"parameters": {"out_dir": out_dir, "served": True},
                "description": "Ad-hoc analysis of the given paths with warm models.", "tags": ["docintel", "ad-hoc"],
                **common},
    }


def build_deployments(settings: Settings) -> list:
    from flows.analyze import analyze_documents

    return [analyze_documents.to_deployment(name=name, **options)
            for name, options in deployment_options(settings).items()]


def forked_flow_runs() -> None:
    """Start the flow runs of this process's runner as forks of a fork server that has imported
    ``FLOW_RUN_IMPORTS``. Prefect's runner starts a flow run it holds in memory with
    ``run_flow_in_subprocess``, whose one use of ``multiprocessing`` is ``get_context("spawn")``; giving it
    the forkserver context keeps everything else of Prefect's (environment, settings, signals, cancellation
    by pid). The fork server is single-threaded (it only imports), so forking it is safe."""
    import prefect.flow_engine

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(FLOW_RUN_IMPORTS)
    from multiprocessing import forkserver

    forkserver.ensure_running()  # its imports now, not in the first run's wait
    prefect.flow_engine.multiprocessing = SimpleNamespace(get_context=lambda method=None: context)


def task_worker() -> None:
    """Prefect's task worker for the warm stages, started again whenever it stops. Its subscription retries
    an abnormal close or a refused connection only; any other end (a clean close, an error) ends the worker,
    and every later served run would wait for a batch that no worker takes. Once here that was silent."""
    from prefect.task_worker import serve as serve_tasks

    from flows.analyze import SERVED_TASKS

    while True:
        try:
            serve_tasks(*SERVED_TASKS, limit=1)
            why = "its subscription ended"
        except Exception as error:  # any end is logged, and the worker starts again
            why = f"{type(error).__name__}: {error}"
        print(f"warning: the warm task worker stopped ({why}); starting it again in {WORKER_RESTART_S} s",
              file=sys.stderr, flush=True)
        time.sleep(WORKER_RESTART_S)


def serve(settings: Settings, limit: int = 4) -> None:
    """Load the models, start the warm task worker, and serve both deployments until interrupted. The runner
    is given the flow itself (``add_flow``), not deployments: only for a flow it holds in memory does it
    start runs with ``run_flow_in_subprocess`` (forked, above) instead of ``python -m prefect.engine``."""
    from prefect.runner import Runner

    from flows.analyze import analyze_documents, hand_down_deployments, hand_down_versions
    from pipeline.analysis import analyzer_for
    from pipeline.processes import Stopped, end_group

    forked_flow_runs()
    hand_down_versions(settings, analyzer_for(settings).warm_up())  # load now, not on the first trigger
    threading.Thread(target=task_worker, daemon=True, name="docintel-task-worker").start()

    class ServeRunner(Runner):  # here, not at the top: the CLI imports this module for trigger, without Prefect
        """Prefect's runner, stopped by SIGTERM at once. Its own SIGTERM handler calls the runner's async
        ``stop`` without awaiting it and exits from inside the event loop: every stop of ``docintel serve``
        by a service manager printed "coroutine 'Runner.astop' was never awaited" and an asyncio traceback."""

        def handle_sigterm(self, *args) -> None:
            _leave(signal.SIGTERM)

    runner = ServeRunner(name="docintel-serve", limit=limit, query_seconds=POLL_SECONDS)
    deployments = {}
    for name, options in deployment_options(settings).items():
        deployments[str(runner.add_flow(analyze_documents, name=name, **options))] = name
        print(f"serving analyze-documents/{name}", flush=True)
    hand_down_deployments(deployments)
    try:
        asyncio.run(runner.start())
    except (KeyboardInterrupt, Stopped) as stop:
        _leave(stop.signum if isinstance(stop, Stopped) else signal.SIGINT)
    finally:  # any other way out (the runner returning, an error in it) still leaves no child behind
        end_group()


def _leave(signum: int) -> None:
    """Stop serving at once. A flow run in progress waits for this worker's batch, and the runner's exit
    waits for the run: end them. The batch itself runs in the task worker's pool thread, which exit would
    join, finishing a large document first (minutes on 2 cores): leave without it. Its batch is not
    committed, as on SIGKILL, and the next run takes over its claims."""
    from pipeline.processes import STOPPED_BY_SIGNAL, end_group

    print(f"docintel serve: stopped by {signal.Signals(signum).name}", file=sys.stderr)
    end_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(STOPPED_BY_SIGNAL + signum)
