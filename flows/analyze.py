"""Prefect flow ``analyze_documents``: the run of ``pipeline.runs`` with each step as a Prefect task.

Wiring only: retries, the per-GPU concurrency slots, the runner (threads here, Ray with prefect-ray, or the
warm task worker of ``docintel serve``), the run's logger and its summary artifact. The run loop, the steps
and idempotence live in ``pipeline`` (``runs``, ``analysis``, ``store``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import contextmanager, nullcontext

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE
from prefect.concurrency.sync import concurrency
from prefect.context import FlowRunContext
from prefect.utilities.annotations import quote

from pipeline import runs
from pipeline.analysis import Analyzer, analyzer_for, analyzer_key
from pipeline.errors import ConfigurationError, is_transient
from pipeline.placement import Gpu, plan, ray_resources
from pipeline.settings import Settings
from pipeline.store import Claims, ResultStore, WorkItem


def retry_if_transient(_task, _task_run, state) -> bool:
    return is_transient(state.result(raise_on_failure=False))


# Records are large and already content-keyed: hashing them for Prefect's cache would only cost time.
TASK_OPTIONS = {"cache_policy": NONE}
# Transient faults (a busy store, a lost connection, a worker process that died) are retried with backoff;
# a bad document is not an exception here: the steps record it as a failure and go on.
RETRY_OPTIONS = {"retries": 3, "retry_delay_seconds": [1, 4, 16], "retry_condition_fn": retry_if_transient,
                 **TASK_OPTIONS}
GPU_STAGES = ("ingest", "sentencize", "embed", "classify")


def _in_ray_worker():
    """The Ray runtime context when this task runs in a Ray worker (prefect-ray), else None."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return None
    context = ray.get_runtime_context()
    return context if context.worker.mode == ray.WORKER_MODE else None


@contextmanager
def gpu_slot(analyzer: Analyzer, stage: str):
    """GPU work is serialised per device across flow runs: a "gpu:N" concurrency slot (see ensure_gpu_limits).
    In a Ray worker, Ray's own resource accounting does that (and N would name another node's GPU): the
    task logs where it ran and what Ray gave it instead."""
    if (ray_context := _in_ray_worker()) is not None:
        get_run_logger().info("stage %s ran on Ray node %s (pid %d) with resources %s", stage,
                              ray_context.get_node_id(), os.getpid(), ray_context.get_assigned_resources())
        yield
        return
    index = analyzer.plan.for_stage(stage).gpu_index
    with concurrency(f"gpu:{index}", occupy=1) if index is not None else nullcontext():
        yield


def ensure_gpu_limits(analyzer: Analyzer) -> list[str]:
    """Create the "gpu:N" global concurrency limits (1 slot) the plan uses, if missing."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectNotFound

    names = sorted({f"gpu:{p.gpu_index}" for p in analyzer.plan.placements if p.gpu_index is not None})
    with get_client(sync_client=True) as client:
        for name in names:
            try:
                client.read_global_concurrency_limit_by_name(name)
            except ObjectNotFound:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
    return names


def _stage_task(name: str):
    def run(settings: Settings, records: list):
        with gpu_slot(analyzer_for(settings), name):
            return runs.STEPS[name](settings, records)
    run.__name__ = run.__qualname__ = name
    return task(name=name, **RETRY_OPTIONS)(run)


ingest, sentencize, embed, classify = (_stage_task(name) for name in GPU_STAGES)
model_versions = task(name="model-versions", **RETRY_OPTIONS)(runs.model_versions)
claim = task(name="claim", **RETRY_OPTIONS)(runs.claim)
store_batch = task(name="store", **RETRY_OPTIONS)(runs.store_batch)
TASKS = {t.name: t for t in (model_versions, ingest, sentencize, embed, classify, claim, store_batch)}


class TaskExecutor(runs.Executor):
    """Each step a Prefect task, its arguments quoted: Prefect would otherwise walk every record of every batch
    looking for futures (measured 0.27 s per call with 3,035 sentences; 0.008 s quoted). Embed and classify
    (both read the sentences) are submitted together when either runs on a GPU; on CPU alone they would only
    share the same cores (on 2 cores: 6.3 s side by side against 4.3 s in turn for one 10-K section)."""

    def call(self, step: str, *args):
        return TASKS[step](*map(quote, args))

    def submit(self, step: str, *args):
        plan = analyzer_for(self.settings).plan
        if all(plan.for_stage(stage).gpu_index is None for stage in ("embed", "classify")):
            return super().submit(step, *args)
        return TASKS[step].submit(*map(quote, args)).result


class RayExecutor(TaskExecutor):
    """Stage tasks submitted to Ray with their resource requests; the other steps (the store) in the flow."""

    def __init__(self, settings, store, log, resources: dict[str, dict[str, float]]) -> None:
        super().__init__(settings, store, log)
        self.resources = resources

    def submit(self, step: str, *args):
        from prefect_ray.context import remote_options

        if step not in self.resources:
            return super().submit(step, *args)
        with remote_options(**self.resources[step]):  # unquoted: prefect-ray hands quoted arguments over as is
            return TASKS[step].submit(*args).result

    def call(self, step: str, *args):
        return self.submit(step, *args)() if step in self.resources else super().call(step, *args)


@task(name="analyze-batch", persist_result=True, **RETRY_OPTIONS)
def analyze_batch(settings: Settings, run_id: str, items: list[WorkItem], versions: dict[str, str]) -> Claims:
    """Claim a batch of work for run ``run_id`` and run every stage over what it got, in the warm task worker
    of ``docintel serve`` (its models stay loaded between runs); the steps run as plain calls inside this one
    task. The worker, which does the work, holds the claims. ``versions``: the models the run's work keys
    were made with, which must be the ones loaded here."""
    if (loaded := analyzer_for(settings).model_versions()) != versions:
        raise ConfigurationError(f"docintel serve has models {loaded} loaded, the run expected {versions}: "
                                 "restart docintel serve after changing models")
    executor = WorkerExecutor(settings, ResultStore(settings.resolved_store_url), get_run_logger())
    return executor.claim_and_process(run_id, items)


class WorkerExecutor(runs.Executor):
    """Inside the served task: each step's task body, GPU slot included, as a plain call."""

    def call(self, step: str, *args):
        return TASKS[step].fn(*args)


@task(name="warm-model-versions", persist_result=True, **RETRY_OPTIONS)
def warm_model_versions(settings: Settings) -> dict[str, str]:
    """``model_versions`` for the task worker of ``docintel serve``."""
    return analyzer_for(settings).model_versions()


RECORD_WAIT_S = 10  # the server records a delayed task run within this
WAIT_SLICE_S = 2  # a missed completion event costs at most this
SERVED_TASKS = (analyze_batch, warm_model_versions)  # what ``docintel serve`` runs in its warm task worker
# how docintel serve hands its flow runs the versions of the models it loaded at start (in their environment)
WARM_VERSIONS = "DOCINTEL_SERVED_MODEL_VERSIONS"


def hand_down_versions(settings: Settings, versions: dict[str, str]) -> None:
    """Called by ``docintel serve`` once its models are loaded: a flow run of that configuration then knows
    their versions at once, instead of asking the task worker (a task-run round trip, ≈0.5 s per run)."""
    os.environ[WARM_VERSIONS] = json.dumps({"analyzer": analyzer_key(settings), "versions": versions})


SERVED_DEPLOYMENTS = "DOCINTEL_SERVED_DEPLOYMENTS"  # deployment id → name, for the runs of docintel serve


def hand_down_deployments(names: dict[str, str]) -> None:
    """Called by ``docintel serve`` once its deployments exist: a flow run then names the deployment that
    started it without reading the deployment back from the API (``prefect.runtime``: ≈0.1 s per run)."""
    os.environ[SERVED_DEPLOYMENTS] = json.dumps(names)


def _served(step, *args):
    """Run ``step`` in the task worker of ``docintel serve`` and wait for its result. The server records a
    background task run, then its first state, a moment after ``delay`` returns: until then, waiting for it
    fails with a 404 or with "has no state" (it never raises the task's own error: ``result`` does). The
    wait is woken by the task run's completion event, but Prefect's event subscriber may connect after a
    short batch has ended and miss it (a warm run hung so here): each slice re-reads the task run."""
    from prefect.exceptions import ObjectNotFound

    future = step.delay(*args)
    recorded_by = time.monotonic() + RECORD_WAIT_S
    while not future.state.is_final():  # one API read; no read once the event has set the final state
        try:
            future.wait(timeout=WAIT_SLICE_S)
        except (ObjectNotFound, RuntimeError):
            if time.monotonic() > recorded_by:
                raise
            time.sleep(0.1)
    return future.result()


class ServedExecutor(TaskExecutor):
    """Claims, batches and model loading in the warm task worker of ``docintel serve``. One task run per
    batch, not a claim task and then a batch: a claim cost a task run of its own (≈0.25 s), and its
    events, recorded while the batch's task run was created, locked a SQLite API database (2-s retries)."""

    versions: dict[str, str]

    def model_versions(self) -> dict[str, str]:
        warm = json.loads(os.environ.get(WARM_VERSIONS, "{}"))
        if warm.get("analyzer") == analyzer_key(self.settings):
            self.versions = warm["versions"]
        else:  # a configuration other than the one served warm: the worker loads it now
            self.versions = _served(warm_model_versions, self.settings)
        return self.versions

    def claim_and_process(self, run_id: str, items: list[WorkItem]) -> Claims:
        return _served(analyze_batch, self.settings, run_id, items, self.versions)


def on_ray(address: str | None):
    """The flow with its stage tasks on a Ray cluster (prefect-ray); a local Ray when ``address`` is None."""
    from prefect_ray import RayTaskRunner

    return analyze_documents.with_options(task_runner=RayTaskRunner(address=address))


def _ray_plan(analyzer: Analyzer, settings: Settings):
    """The placement plan for the Ray cluster's GPUs (Ray counts them; their memory is a setting)."""
    import ray

    gpus = [Gpu(i, "ray", settings.ray_gpu_memory_mb) for i in range(int(ray.cluster_resources().get("GPU", 0)))]
    return plan([stage.spec() for stage in analyzer.stages()], gpus)


def _trigger() -> str:
    """Which deployment started this run, or the flow's name for a direct call."""
    from prefect.runtime import deployment

    deployment_id = FlowRunContext.get().flow_run.deployment_id
    if deployment_id is None:
        return "analyze-documents"
    name = json.loads(os.environ.get(SERVED_DEPLOYMENTS, "{}")).get(str(deployment_id)) or deployment.name
    return f"deployment {name}"


@flow(name="analyze-documents", persist_result=True, result_serializer="json")  # JSON: `docintel trigger` reads it
def analyze_documents(
    paths: list[str],
    out_dir: str | None = None,
    embedder: str | None = None,
    sentencizer: str | None = None,
    store_url: str | None = None,
    classifier: str | None = None,
    risk_register: str | None = None,
    served: bool = False,
) -> dict:
    """Analyse documents (files or folders) and store the results; with ``out_dir`` (``{run_id}`` in it is
    replaced), write sentences.jsonl and the audit reports. Work already done under the same content,
    settings and model versions is reused, not redone; work another run holds is waited for. ``served``:
    the stages run in the warm task worker of ``docintel serve`` instead of this process."""
    logger = get_run_logger()
    overrides = {"embedder": embedder, "sentencizer": sentencizer, "store_url": store_url, "classifier": classifier,
                 "risk_register": risk_register}
    settings = Settings(**{key: value for key, value in overrides.items() if value is not None})
    analyzer = analyzer_for(settings)
    store = ResultStore(settings.resolved_store_url)
    on_ray_cluster = type(FlowRunContext.get().task_runner).__name__ == "RayTaskRunner"
    placement = _ray_plan(analyzer, settings) if on_ray_cluster else analyzer.plan
    logger.info("placement plan%s:\n%s", " for the Ray cluster" if on_ray_cluster else "", placement.table())
    if on_ray_cluster:
        resources = ray_resources(placement, settings.ray_gpu_memory_mb)
        logger.info("Ray resource requests per stage: %s", resources)
        executor = RayExecutor(settings, store, logger, resources | {"model-versions": {  # it loads both models
            "num_cpus": 1.0, "num_gpus": sum(resources[s].get("num_gpus", 0) for s in ("embed", "classify"))}})
    else:
        if slots := ensure_gpu_limits(analyzer):
            logger.info("GPU work serialised through concurrency limits %s", ", ".join(slots))
        executor = (ServedExecutor if served else TaskExecutor)(settings, store, logger)
    result = runs.execute(executor, paths, out_dir, placement=placement.to_dict(), triggered_by=_trigger())
    if result.report_markdown:
        create_markdown_artifact(result.report_markdown, key="docintel-run-summary",
                                 description=f"docintel run {result.summary['run_id']}")
    return result.summary
