"""The inbox-batch cron schedule end to end, the way a user meets it: a real ``prefect server start`` (fresh
SQLite database, scheduler service on), a real ``docintel serve`` with a every-minute cron, and a scheduled
flow run that must complete and leave its outputs in the outbox, with no error in the server's log."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from flows.deployments import INBOX_BATCH

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
DEPLOYMENT = f"analyze-documents/{INBOX_BATCH}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, chars: int = 6000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"


def _stop(process: subprocess.Popen | None, first: int = signal.SIGINT, timeout: float = 60) -> None:
    """``first`` to the process group, then SIGTERM, then SIGKILL, each after ``timeout`` seconds."""
    if process is None:
        return
    for sig in (first, signal.SIGTERM, signal.SIGKILL):
        if process.poll() is not None:
            break
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=timeout)
            break
        except subprocess.TimeoutExpired:
            continue
    try:  # what it left behind in its group (e.g. the server's uvicorn workers, a flow-run subprocess)
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _errors(log: Path) -> list[str]:
    """ERROR lines of the server log, except the task-run event recorder's flushes that lost nothing
    ("N to retry, 0 dropped"): a KeyError race inside Prefect 3.8.8's recorder under load, retried by it,
    unrelated to scheduling (seen once in CI while other jobs shared the cores)."""
    return [line for line in log.read_text(errors="replace").splitlines() if "ERROR" in line
            and not ("task_run_recorder" in line and "0 dropped)" in line)]


def _deployment_runs(api: str, client: httpx.Client) -> list[dict]:
    response = client.get(f"{api}/deployments/name/{DEPLOYMENT}")
    if response.status_code == 404:
        return []
    response.raise_for_status()
    runs = client.post(f"{api}/flow_runs/filter",
                       json={"flow_runs": {"deployment_id": {"any_": [response.json()["id"]]}}})
    runs.raise_for_status()
    return runs.json()


def test_inbox_batch_cron_schedule_runs_and_writes_outbox(tmp_path, samples, tiny_models_dir):
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    inbox.mkdir()
    outbox.mkdir()
    shutil.copy(samples / "risk_factors_10k.txt", inbox / "risk_factors_10k.txt")
    server_log, serve_log = tmp_path / "prefect-server.log", tmp_path / "docintel-serve.log"

    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DOCINTEL_"))}
    server_env = {**clean, "PREFECT_HOME": str(tmp_path / "prefect-home"),
                  "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                  "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5"}
    serve_env = {**clean, "PREFECT_HOME": str(tmp_path / "prefect-client-home"), "PREFECT_API_URL": api,
                 "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                 "DOCINTEL_INBOX": str(inbox), "DOCINTEL_OUTBOX": str(outbox), "DOCINTEL_INBOX_CRON": "* * * * *",
                 "DOCINTEL_HOME": str(tmp_path / "home"), "DOCINTEL_SENTENCIZER": "rule",
                 "DOCINTEL_MODELS_DIR": str(tiny_models_dir), "DOCINTEL_REPORT_FORMATS": '["json","html"]',
                 "DOCINTEL_SETTINGS_FILE": str(tmp_path / "absent.toml")}

    server = serve = None
    completed = None
    started = time.monotonic()
    try:
        with server_log.open("w") as log:
            server = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                                       "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
                                      env=server_env, start_new_session=True)
        with httpx.Client(timeout=10) as client:
            deadline = time.monotonic() + 120
            while True:
                assert server.poll() is None, f"prefect server exited:\n{_tail(server_log)}"
                try:
                    if client.get(f"{api}/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, f"prefect server never healthy:\n{_tail(server_log)}"
                time.sleep(0.5)

            with serve_log.open("w") as log:
                serve = subprocess.Popen([str(BIN / "docintel"), "serve"], stdout=log, stderr=subprocess.STDOUT,
                                         env=serve_env, start_new_session=True)
            deadline, runs = time.monotonic() + 240, []
            while completed is None:
                assert serve.poll() is None, f"docintel serve exited:\n{_tail(serve_log)}"
                assert not _errors(server_log), (f"ERROR in the Prefect server's log while waiting for a "
                                                 f"scheduled run:\n{_tail(server_log)}")
                runs = _deployment_runs(api, client)
                completed = next((r for r in runs if r["state_type"] == "COMPLETED"), None)
                failed = [r for r in runs if r["state_type"] in ("FAILED", "CRASHED")]
                assert not failed, (f"scheduled run ended {failed[0]['state_type']}:\n{_tail(serve_log)}\n"
                                    f"--- server log ---\n{_tail(server_log)}")
                if completed is None:
                    assert time.monotonic() < deadline, (
                        f"no COMPLETED run of {DEPLOYMENT} within 240 s; runs: "
                        f"{[(r['name'], r['state_type']) for r in runs]}\n--- docintel serve log ---\n"
                        f"{_tail(serve_log)}\n--- prefect server log ---\n{_tail(server_log)}")
                    time.sleep(2)
    finally:
        _stop(serve)
        _stop(server)
        assert not serve or serve.poll() is not None
        assert not server or server.poll() is not None
    print(f"scheduled run {completed['name']} completed {time.monotonic() - started:.1f} s after the server "
          f"started")

    [folder] = [d for d in outbox.iterdir() if (d / "report.json").is_file()]
    assert (folder / "sentences.jsonl").is_file() and (folder / "report.html").is_file()
    report = json.loads((folder / "report.json").read_text())
    assert report["triggered_by"] == f"deployment {INBOX_BATCH}" and report["run_id"] == folder.name
    assert report["totals"]["sentences"] > 0
    assert len((folder / "sentences.jsonl").read_text().splitlines()) == report["totals"]["sentences"]
    errors = _errors(server_log)
    assert not errors, f"{len(errors)} ERROR line(s) in the Prefect server's log:\n{_tail(server_log)}"
