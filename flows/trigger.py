"""``docintel trigger``: one flow run of a served deployment through Prefect's REST API, with the standard
library alone.

Importing Prefect took ≈1.3 s of the trigger's ≈1.8 s of its own, for three HTTP calls and a poll. The flow
run, its logs and states are Prefect's as before; only the client is lighter. A result that cannot be read
this way (kept in a remote block) Prefect itself reads.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

from flows.prefect_api import api_url, auth_headers
from pipeline.errors import ConfigurationError

FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}
POLL_SECONDS = 0.1
RETRY_STATUS = {429, 502, 503, 504}  # a busy server (SQLite locked): Prefect's own client retries these too
# SQLite's "database is locked" is a write that lost a race, over in milliseconds: retry soon, then back off
# (from 0.5 s, 1 in 5 triggers here waited 0.5 or 1.5 s to create their flow run)
RETRY_DELAYS = (0.1, 0.25, 0.5, 1, 2, 4, 8)


class Api:
    """JSON calls to the Prefect API, retried with backoff while the server is busy or restarting."""

    def __init__(self) -> None:
        url = api_url()
        if not url:
            raise ConfigurationError("no Prefect API to trigger through: set PREFECT_API_URL to the server that "
                                     "`docintel serve` talks to (e.g. http://127.0.0.1:4200/api)")
        self.url, self.headers = url.rstrip("/"), auth_headers()

    def call(self, path: str, body: dict | None = None) -> dict | None:
        """The decoded answer, or None for a 404."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method="GET" if body is None else "POST",
                                         headers={**self.headers, "Content-Type": "application/json"})
        for delay in (*RETRY_DELAYS, None):
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:
                    return json.loads(answer.read())
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    return None
                if exc.code not in RETRY_STATUS or delay is None:
                    raise ConfigurationError(f"the Prefect API at {self.url} answered {path} with {exc.code}: "
                                             f"{exc.read()[:500].decode(errors='replace')}") from exc
            except OSError as exc:  # refused, reset, timed out
                if delay is None:
                    raise ConfigurationError(f"the Prefect API at {self.url} cannot be reached: {exc}") from exc
            time.sleep(delay)


def run_deployment(name: str, parameters: dict, timeout: float) -> dict:
    """Create a flow run of deployment ``name`` ("flow/deployment") and wait for it to end; its API record."""
    client = Api()
    deployment = client.call(f"/deployments/name/{name}")
    if deployment is None:
        raise ConfigurationError(f"no deployment {name} at {client.url}: is `docintel serve` running against it?")
    flow_run = client.call(f"/deployments/{deployment['id']}/create_flow_run", {"parameters": parameters})
    deadline = time.monotonic() + timeout
    while (flow_run.get("state") or {}).get("type") not in FINAL_STATES:
        if time.monotonic() > deadline:
            raise ConfigurationError(f"flow run {flow_run['name']} did not end within {timeout:.0f} s "
                                     f"(raise --timeout, or is `docintel serve` running?)")
        time.sleep(POLL_SECONDS)
        flow_run = client.call(f"/flow_runs/{flow_run['id']}") or {
            **flow_run, "state": {"type": "CANCELLED", "name": "Deleted", "message": "the flow run was deleted"}}
    return flow_run


def result(flow_run: dict):
    """A completed flow run's return value. A result the flow persisted as JSON on this machine is read from
    its file (the serialized value alone: Prefect keeps the record's metadata in the API); any other through
    Prefect."""
    data = flow_run["state"].get("data") or {}
    key = data.get("storage_key")
    if data.get("storage_block_id") is None and (data.get("serializer") or {}).get("type") == "json" and key \
            and Path(key).is_file():
        return json.loads(Path(key).read_bytes())
    from prefect.client.schemas.objects import State

    return State.model_validate(flow_run["state"]).result()
