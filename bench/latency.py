"""Ad-hoc latency: a 10-page PDF through the served ``analyze`` deployment (warm models) vs a cold
``docintel run`` of the same kind of file, measured side by side in one run.

Starts its own Prefect server (``prefect server start``, SQLite in a temporary PREFECT_HOME) and
``docintel serve`` against it. Every timed PDF has distinct content (a numbered cover line), so no run can
reuse an earlier one's results: each is analysed from scratch. Wall time of the whole command, as a
user waits for it.

Usage: python bench/latency.py [--repeats 3]   — prints a markdown table and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from pipeline.settings import REPO_ROOT

DOCINTEL = str(Path(sys.executable).parent / "docintel")
PREFECT = str(Path(sys.executable).parent / "prefect")
TIMEOUT_S = 300  # one 10-page PDF takes seconds: past this a run hangs, and the benchmark says so


def ten_page_pdf(path: Path, number: int) -> Path:
    """A 10-page text PDF built from the sample 10-K risk factors (A4, 10 pt), with a numbered cover line."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate

    style = getSampleStyleSheet()["BodyText"]
    paragraphs = [p for p in (REPO_ROOT / "data" / "samples" / "risk_factors_10k.txt").read_text().split("\n\n")
                  if p.strip()]
    story = [Paragraph(f"Copy {number} of the quarterly risk pack.", style)]
    for page in range(10):
        story += [Paragraph(paragraphs[(page * 3 + i) % len(paragraphs)].replace("\n", " "), style)
                  for i in range(3)]
        story.append(PageBreak())
    SimpleDocTemplate(str(path), pagesize=A4).build(story[:-1])
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(check, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not come up in {timeout:.0f} s")
        time.sleep(0.5)


def _timed(command: list[str], env: dict, parts: list | None = None) -> float:
    """Wall time of a command; for a trigger, also where the time went (from the flow run's timestamps)."""
    start = time.perf_counter()
    try:
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as error:
        raise RuntimeError(f"{' '.join(command)} took over {TIMEOUT_S} s; docintel serve's log: "
                           f"{Path(env['DOCINTEL_HOME']).parent / 'serve.log'}") from error
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    if parts is not None:
        summary = json.loads(result.stdout[result.stdout.index("{"):])
        parts.append({"total_s": seconds, "flow_run_waited_to_start_s": summary["waited_to_start_s"],
                      "flow_run_ran_s": summary["ran_s"],
                      "trigger_process_s": seconds - summary["waited_to_start_s"] - summary["ran_s"]})
    return seconds


def main(repeats: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="docintel-latency-"))
    (work / "prefect").mkdir()
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(work / "prefect"), "PREFECT_API_URL": api,
           "DOCINTEL_HOME": str(work / "home"), "DOCINTEL_OUTBOX": str(work / "out")}
    pdfs = [ten_page_pdf(work / f"pack-{i}.pdf", i) for i in range(2 * repeats + 1)]

    local = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}  # `docintel run` starts its own API
    cold = [_timed([DOCINTEL, "run", str(pdf), "--out", str(work / f"cold-{i}")],
                   {**local, "DOCINTEL_STORE_URL": f"sqlite:///{work / f'cold-{i}.db'}"})
            for i, pdf in enumerate(pdfs[:repeats])]

    server = subprocess.Popen([PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    serving = None
    try:
        _wait(lambda: _healthy(api), "prefect server")
        with (work / "serve.log").open("w") as serve_log:  # kept: a trigger that fails names it
            serving = subprocess.Popen([DOCINTEL, "serve"], env=env, stdout=serve_log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        _wait(lambda: _deployed(env), "docintel serve")
        _timed([DOCINTEL, "trigger", str(pdfs[repeats])], env)  # first trigger: the worker's first batch
        parts: list[dict] = []
        warm = [_timed([DOCINTEL, "trigger", str(pdf)], env, parts) for pdf in pdfs[repeats + 1:]]
    finally:  # SIGTERM, not SIGINT: a benchmark started in the background inherits SIGINT ignored
        for process in (serving, server):
            if process is not None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
    result = {"pdf_pages": 10, "cold_run_s": statistics.median(cold), "warm_trigger_s": statistics.median(warm),
              "cold_runs": cold, "warm_triggers": warm,
              "warm_breakdown_median_s": {key: statistics.median(p[key] for p in parts) for key in parts[0]}}
    result["speedup"] = result["cold_run_s"] / result["warm_trigger_s"]
    print("| 10-page PDF | seconds (median) |\n|---|---:|")
    print(f"| cold `docintel run` | {result['cold_run_s']:.1f} |")
    print(f"| warm `docintel trigger` (served deployment) | {result['warm_trigger_s']:.1f} |")
    print(f"\nwarm is {result['speedup']:.1f}× faster; runs: cold {cold}, warm {warm}")
    print(f"warm trigger, where the time goes (medians): {result['warm_breakdown_median_s']}")
    return result


def _healthy(api: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _deployed(env: dict) -> bool:
    result = subprocess.run([PREFECT, "deployment", "inspect", "analyze-documents/analyze"], capture_output=True,
                            env=env)
    return result.returncode == 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    print(json.dumps(main(parser.parse_args().repeats), indent=2))
