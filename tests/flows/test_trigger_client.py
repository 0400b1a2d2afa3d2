"""The Prefect-free client of ``docintel trigger``: where it finds the API (as Prefect would), and how it rides
out a busy server. The busy server is a stub HTTP server (a real Prefect server cannot be made to answer 503
on demand); the whole trigger against a real server is in test_deployments.py."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from flows import prefect_api, trigger
from pipeline.errors import ConfigurationError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def prefect_env(tmp_path, monkeypatch):
    for name in ("PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_API_AUTH_STRING", "PREFECT_PROFILE",
                 "PREFECT_PROFILES_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


def test_api_url_from_the_active_profile_then_the_environment(prefect_env, monkeypatch):
    (prefect_env / "profiles.toml").write_text(
        'active = "team"\n[profiles.team]\nPREFECT_API_URL = "http://prefect.internal:4200/api"\n'
        'PREFECT_API_AUTH_STRING = "admin:secret"\n[profiles.other]\nPREFECT_API_URL = "http://other/api"\n')
    assert prefect_api.api_url() == "http://prefect.internal:4200/api"
    assert prefect_api.auth_headers() == {"Authorization": "Basic YWRtaW46c2VjcmV0"}
    monkeypatch.setenv("PREFECT_PROFILE", "other")
    assert prefect_api.api_url() == "http://other/api"
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    assert prefect_api.api_url() == "http://127.0.0.1:4200/api"


def test_no_api_configured_is_none_and_prefect_agrees(prefect_env):
    assert prefect_api.api_url() is None
    code = "from prefect.settings import get_current_settings; print(get_current_settings().api.url)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "None"


def test_a_settings_file_is_read_through_prefect(prefect_env):
    """In a fresh process: Prefect reads its settings files once, at import, from the working directory."""
    (prefect_env.parent / "prefect.toml").write_text('[api]\nurl = "http://from-toml:4200/api"\n')
    code = f"import sys; sys.path.insert(0, {str(REPO)!r}); from flows.prefect_api import api_url; print(api_url())"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "http://from-toml:4200/api"


class _Busy(BaseHTTPRequestHandler):
    """Answers 503 to the first ``busy`` requests, then a flow run that is already completed."""

    busy = 2
    seen: list[str] = []

    def _answer(self):
        type(self).seen.append(f"{self.command} {self.path}")
        if len(self.seen) <= self.busy:
            self.send_response(503)
            self.end_headers()
            return
        body = json.dumps({"id": "d1", "name": "run-1", "state": {"type": "COMPLETED", "name": "Completed"}})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


def test_a_busy_server_is_retried_stub_server(prefect_env, monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Busy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(trigger, "RETRY_DELAYS", (0.01, 0.01, 0.01))
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{server.server_port}/api")
    try:
        flow_run = trigger.run_deployment("analyze-documents/analyze", {"paths": []}, timeout=10)
    finally:
        server.shutdown()
    assert flow_run["state"]["type"] == "COMPLETED"
    assert _Busy.seen == ["GET /api/deployments/name/analyze-documents/analyze"] * 3 + [
        "POST /api/deployments/d1/create_flow_run"]


def test_an_unreachable_api_is_a_clear_error(prefect_env, monkeypatch):
    monkeypatch.setattr(trigger, "RETRY_DELAYS", (0.01,))
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # the discard port: nothing listens
    with pytest.raises(ConfigurationError, match="cannot be reached"):
        trigger.run_deployment("analyze-documents/analyze", {}, timeout=5)
