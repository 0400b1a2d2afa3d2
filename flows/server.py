"""Prefect's temporary API server for a one-off ``docintel run``, started the moment the command starts.

With no ``PREFECT_API_URL``, Prefect starts a temporary server itself, but only when the flow is first called,
and it first imports the whole server application into the calling process (≈ 3.5 s here) just to launch
it. Started here with the command Prefect itself uses (uvicorn with the server's app factory, UI off), the
server boots in its own process while this one imports and loads its models; the run then talks to it as to
any Prefect server, so flow and task runs keep their states and logs. It is stopped when the process exits, after Prefect's workers have sent their last logs.
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flows.prefect_api import api_url
from pipeline.errors import ConfigurationError

log = logging.getLogger(__name__)


class TemporaryServer:
    def __init__(self, url: str, process: subprocess.Popen | None) -> None:
        self.url, self.process = url, process

    def wait_ready(self, timeout: float) -> None:
        """Block until the API answers its health check."""
        import httpx

        deadline = time.monotonic() + timeout
        while self.process is not None:
            if self.process.poll() is not None:
                raise ConfigurationError(f"the temporary Prefect API server exited with status "
                                         f"{self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise ConfigurationError(f"the temporary Prefect API server did not answer within {timeout:.0f} s")
            time.sleep(0.1)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def temporary_api_server() -> Iterator[TemporaryServer]:
    """The configured Prefect API as is; without one, a temporary server for the duration of the block. The
    server is started before this process imports Prefect (≈1.8 s), which it then does for the settings."""
    if configured := api_url():
        yield TemporaryServer(configured, None)
        return
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    log.debug("starting a temporary Prefect API server on %s", url)
    prefect_package = Path(importlib.util.find_spec("prefect").origin).parent
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--app-dir", str(prefect_package.parent), "--factory",
         "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port), "--log-level", "error",
         "--lifespan", "on"],
        env={**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"})
    atexit.register(_stop, process)  # at exit, after Prefect's log and event workers (registered later) drain
    os.environ["PREFECT_API_URL"] = url  # for processes started from here on (Ray workers)
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: url}):
        yield TemporaryServer(url, process)


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
