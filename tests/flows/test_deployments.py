"""Deployments as documented, and an ad-hoc trigger through a real ``docintel serve`` (warm models)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from prefect import task
from processes import assert_none_left, descendants

from flows import deployments
from flows.analyze import _served
from flows.deployments import ADHOC, INBOX_BATCH, build_deployments
from pipeline.settings import Settings

pytestmark = pytest.mark.usefixtures("prefect_backend")
DOCINTEL = str(Path(sys.executable).parent / "docintel")


def test_deployments_schedule_and_parameters_as_documented(tmp_path):
    from prefect.client.orchestration import get_client

    settings = Settings(inbox=tmp_path / "inbox", outbox=tmp_path / "out", inbox_cron="*/15 6-18 * * 1-5",
                        schedule_timezone="Europe/London")
    for deployment in build_deployments(settings):
        deployment.apply()
    with get_client(sync_client=True) as client:
        inbox = client.read_deployment_by_name(f"analyze-documents/{INBOX_BATCH}")
        adhoc = client.read_deployment_by_name(f"analyze-documents/{ADHOC}")
    [schedule] = inbox.schedules
    assert schedule.schedule.cron == "*/15 6-18 * * 1-5" and schedule.schedule.timezone == "Europe/London"
    assert inbox.parameters == {"paths": [str(tmp_path / "inbox")], "out_dir": str(tmp_path / "out" / "{run_id}"),
                                "served": True}
    assert adhoc.schedules == [] and adhoc.parameters == {"out_dir": str(tmp_path / "out" / "{run_id}"),
                                                          "served": True}


def _serving(tmp_path: Path, models_dir: Path) -> tuple[dict, subprocess.Popen]:
    """``docintel serve`` (tiny models, rule sentencizer, JSON reports) once its deployment is registered,
    which is after its models loaded; and the environment to trigger it with."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "DOCINTEL_HOME": str(tmp_path / "home"),
           "DOCINTEL_MODELS_DIR": str(models_dir), "DOCINTEL_SENTENCIZER": "rule",
           "DOCINTEL_OUTBOX": str(tmp_path / "outbox"), "DOCINTEL_INBOX": str(tmp_path / "inbox"),
           "DOCINTEL_REPORT_FORMATS": '["json"]'}
    server = subprocess.Popen([DOCINTEL, "serve"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=env, start_new_session=True)
    deadline = time.monotonic() + 300
    with get_client(sync_client=True) as client:
        while True:
            assert server.poll() is None, server.stdout.read()[-3000:]
            try:
                client.read_deployment_by_name(f"analyze-documents/{ADHOC}")
                return env, server
            except ObjectNotFound:
                assert time.monotonic() < deadline
                time.sleep(1)


def _trigger(env: dict, path: Path, out: Path) -> tuple[dict, float]:
    started = time.perf_counter()
    result = subprocess.run([DOCINTEL, "trigger", str(path), "--out", str(out)], capture_output=True, text=True,
                            env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout[result.stdout.index("{"):]), time.perf_counter() - started


def test_trigger_runs_through_the_served_deployment_with_warm_models(tmp_path, samples, tiny_models_dir):
    env, server = _serving(tmp_path, tiny_models_dir)
    try:
        first, cold = _trigger(env, samples / "risk_factors_10k.txt", tmp_path / "first")
        second, warm = _trigger(env, samples / "board_minutes.pdf", tmp_path / "second")
        children = descendants(server.pid)  # its worker, task worker's parser process, flow-run processes …
        commands = [Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode() for pid, _ in children]
    finally:
        os.kill(server.pid, signal.SIGKILL)  # as a scheduler kills a service: the supervisor alone, no grace
        server.wait(timeout=60)
    assert len(children) >= 2, children
    # flow runs forked from the fork server that imported Prefect and the flow once, not `python -m prefect.engine`
    assert any("multiprocessing.forkserver" in c for c in commands) and not any("prefect.engine" in c
                                                                               for c in commands), commands
    assert_none_left(children)
    print(server.communicate(timeout=30)[0][-6000:])
    for summary, out in ((first, tmp_path / "first"), (second, tmp_path / "second")):
        assert summary["processed"] == summary["documents"] == 1 and not summary["failed"]
        assert summary["sentences_file"] == str(out / "sentences.jsonl") and summary["sentences"] > 10
        report = json.loads((out / "report.json").read_text())
        assert report["triggered_by"] == f"deployment {ADHOC}" and report["totals"]["sentences"] == summary["sentences"]
    print(f"trigger latency: first {cold:.1f} s, second {warm:.1f} s")  # measured in bench/, not asserted here


def test_a_served_batch_refuses_models_other_than_its_runs(tiny_models_dir, monkeypatch):
    """The flow run takes the model versions docintel serve loaded at start from its environment; a batch
    the worker would run with other weights (reloaded since) is refused, not stored under the wrong key."""
    from flows.analyze import analyze_batch
    from pipeline.errors import ConfigurationError

    monkeypatch.setenv("DOCINTEL_MODELS_DIR", str(tiny_models_dir))
    with pytest.raises(ConfigurationError, match="restart docintel serve"):
        analyze_batch.fn(Settings(sentencizer="rule"), "run-1", [], {"embedder": "minilm@0", "classifier": "x@0"})


def test_serve_stopped_mid_run_ends_with_everything_it_started(tmp_path, eval_docs, tiny_models_dir):
    """SIGTERM to docintel serve while a triggered run's batch is in its worker, as a service manager stops
    it: it ends within the grace period, its flow-run, fork-server and parser processes with it. (Before, the
    runner's exit waited for the flow run, and the flow run for the batch of the worker that was stopping.)"""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName, TaskRunFilterState, \
        TaskRunFilterStateType
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import TaskRunSort

    env, server = _serving(tmp_path, tiny_models_dir)
    trigger = None
    running = TaskRunFilter(name=TaskRunFilterName(like_="analyze-batch"),
                            state=TaskRunFilterState(type=TaskRunFilterStateType(any_=[StateType.RUNNING])))
    try:
        deadline = time.monotonic() + 300
        with get_client(sync_client=True) as client:
            trigger = subprocess.Popen([DOCINTEL, "trigger", str(eval_docs / "2021_FY_NVDA_10-K.pdf"), "--timeout",
                                        "600"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            while not client.read_task_runs(task_run_filter=running, sort=TaskRunSort.EXPECTED_START_TIME_DESC,
                                            limit=1):  # the batch is in the worker
                assert trigger.poll() is None and time.monotonic() < deadline, "the batch never ran"
                time.sleep(0.2)
        children = descendants(server.pid)
        stopped = time.monotonic()
        os.kill(server.pid, signal.SIGTERM)
        server.wait(timeout=60)  # raises TimeoutExpired where the stopping serve waits for its own run
        took = time.monotonic() - stopped
    finally:
        for process in (server, trigger):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=30)
    assert_none_left(children)
    print(f"serve stopped mid-run in {took:.1f} s")
    # serve's own word on the stop, not Prefect's runner's (a coroutine never awaited, then asyncio's traceback)
    output = server.stdout.read()
    assert server.returncode == 128 + signal.SIGTERM, output[-3000:]
    assert "docintel serve: stopped by SIGTERM" in output and "Traceback" not in output, output[-3000:]


@task
def _double(number: int) -> int:
    return 2 * number


def test_a_served_step_returns_when_its_completion_event_is_missed_simulated_event_stream(monkeypatch):
    """Prefect wakes a waiting flow run with the task run's completion event, but its event subscriber may
    connect after a short batch has ended: a warm run then waited for ever (seen in bench/latency.py). Only
    the event stream is simulated (it delivers nothing); the task worker, task run and API are real."""
    from prefect.task_runs import TaskRunWaiter
    from prefect.task_worker import serve

    async def no_event(cls, task_run_id, timeout=None):
        await asyncio.sleep(3600 if timeout is None else timeout)

    monkeypatch.setattr(TaskRunWaiter, "wait_for_task_run", classmethod(no_event))
    threading.Thread(target=serve, args=(_double,), kwargs={"limit": 1, "timeout": 120}, daemon=True).start()
    result = []
    waiting = threading.Thread(target=lambda: result.append(_served(_double, 21)), daemon=True)
    waiting.start()
    waiting.join(timeout=90)
    assert result == [42], "the served step never returned: its wait depends on an event that did not come"


def test_serve_starts_its_task_worker_again_when_it_stops_mock_prefect_worker(monkeypatch, capsys):
    """Prefect's task worker ends when its subscription ends in a way it does not retry; docintel serve
    starts it again and says why, instead of serving runs no worker takes. Prefect's worker is the mock:
    how it ends (a server closing the socket cleanly) cannot be brought about on purpose."""
    import prefect.task_worker

    calls = []
    third = threading.Event()

    def worker(*tasks, limit):
        calls.append(limit)
        if len(calls) == 1:
            return None
        if len(calls) == 2:
            raise ConnectionError("subscription lost")
        third.set()
        threading.Event().wait()  # the third one keeps serving

    monkeypatch.setattr(prefect.task_worker, "serve", worker)
    monkeypatch.setattr(deployments, "WORKER_RESTART_S", 0)
    threading.Thread(target=deployments.task_worker, daemon=True).start()
    assert third.wait(timeout=30) and calls == [1, 1, 1]
    warnings = capsys.readouterr().err
    assert "the warm task worker stopped (its subscription ended)" in warnings
    assert "the warm task worker stopped (ConnectionError: subscription lost)" in warnings
