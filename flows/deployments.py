"""The two deployments and the long-lived process that serves them (``docintel serve``).

* ``analyze-documents/inbox-batch``: the inbox folder on a cron schedule (``DOCINTEL_INBOX``,
  ``DOCINTEL_INBOX_CRON``, ``DOCINTEL_SCHEDULE_TIMEZONE``), each run writing to ``<outbox>/<run id>``.
* ``analyze-documents/analyze``: ad hoc, for the paths given (``docintel trigger`` or
  ``prefect deployment run analyze-documents/analyze --param paths='["/path/a.pdf"]'``).

Prefect's runner starts each flow run in a fresh subprocess, which would load every model again; so both
deployments run with ``served=True``: the flow run only orchestrates, and the stages execute in the Prefect
task worker this process also runs, whose models stay loaded between runs.
"""

from __future__ import annotations

import threading

from pipeline.settings import Settings

INBOX_BATCH = "inbox-batch"
ADHOC = "analyze"
POLL_SECONDS = 0.25  # how often the runner looks for a triggered run: half of it is an ad-hoc run's wait


def build_deployments(settings: Settings) -> list:
    from prefect.schedules import Cron
    from prefect.types.entrypoint import EntrypointType

    from flows.analyze import analyze_documents

    # imported as flows.analyze in the flow-run process, so its tasks are the ones the task worker serves
    common = {"entrypoint_type": EntrypointType.MODULE_PATH}

    out_dir = str((settings.outbox / "{run_id}").resolve())
    inbox = analyze_documents.to_deployment(
        name=INBOX_BATCH, schedule=Cron(settings.inbox_cron, timezone=settings.schedule_timezone),
        parameters={"paths": [str(settings.inbox.resolve())], "out_dir": out_dir, "served": True},
        description="Scheduled batch over the inbox folder; documents already analysed are reused.",
        tags=["docintel", "scheduled"], **common)
    adhoc = analyze_documents.to_deployment(
        name=ADHOC, parameters={"out_dir": out_dir, "served": True},
        description="Ad-hoc analysis of the given paths with warm models.", tags=["docintel", "ad-hoc"],
        **common)
    return [inbox, adhoc]


def serve(settings: Settings, limit: int = 4) -> None:
    """Load the models, start the warm task worker, and serve both deployments until interrupted."""
    from prefect import serve as serve_deployments
    from prefect.task_worker import serve as serve_tasks

    from flows.analyze import SERVED_TASKS
    from pipeline.analysis import analyzer_for

    analyzer_for(settings).warm_up()  # load now, not on the first trigger
    threading.Thread(target=serve_tasks, args=SERVED_TASKS, kwargs={"limit": 1}, daemon=True,
                     name="docintel-task-worker").start()
    serve_deployments(*build_deployments(settings), limit=limit, query_seconds=POLL_SECONDS)
