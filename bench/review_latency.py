"""Review app latency on a run with 20,000 findings: the queue page and a decision POST, p50/p95 over real
HTTP requests to the app in this process (Starlette's test client), after a warm-up. Measured, not asserted;
the target is p95 ≤ 150 ms on the 2-core development machine.

Usage: python bench/review_latency.py [--findings 20000] [--requests 60]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from starlette.testclient import TestClient

from pipeline.records import Document, Page, RiskLabel, Sentence, SentenceEmbedding, Span
from pipeline.review_app import create_app
from pipeline.settings import Settings
from pipeline.store import ResultStore

LABELS = ("financial", "operational", "compliance", "strategic", "technology", "internal_control")


def big_run(store: ResultStore, findings: int) -> str:
    """One run over 100 documents holding ``findings`` labelled risk sentences in all."""
    rng = np.random.default_rng(7)
    run_id = store.start_run({}, triggered_by="bench")
    per_doc = findings // 100
    for d in range(100):
        lines = [f"Document {d} risk sentence {i}: the covenant may be breached in quarter {i % 4}."
                 for i in range(per_doc)]
        text = "\n".join(lines)
        document = Document(f"{d:064d}", f"/inbox/pack-{d:03d}.txt", "text/plain", (Page(1, text),))
        sentences, offset = [], 0
        for i, line in enumerate(lines):
            sentences.append(Sentence(document.doc_id, document.source, (Span(1, offset, offset + len(line)),), line, i))
            offset += len(line) + 1
        vectors = [SentenceEmbedding(s, np.ones(8, "float32") / 8 ** 0.5, "minilm@bench") for s in sentences]
        labels = [RiskLabel(s, LABELS[i % 6], float(rng.uniform(0.5, 1.0)), {}, "risk@bench") for i, s in
                  enumerate(sentences)]
        store.save(run_id, [document], sentences, vectors, "spacy:layout", labels)
    store.finish_run(run_id, {"embedder": "minilm@bench", "classifier": "risk@bench"})
    return run_id


def _timed(call) -> float:
    start = time.perf_counter()
    answer = call()
    elapsed = time.perf_counter() - start
    assert answer.status_code in (200, 303), answer.status_code
    return elapsed * 1000


def main(findings: int, requests: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="docintel-review-bench-"))
    settings = Settings(store_url=f"sqlite:///{work / 'store.db'}", home=work / "home")
    store = ResultStore(settings.resolved_store_url)
    started = time.perf_counter()
    run_id = big_run(store, findings)
    built = time.perf_counter() - started
    client = TestClient(create_app(settings))
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)
    client.post("/login", data={"name": "bench", "csrf": csrf})
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/").text).group(1)
    first = _timed(lambda: client.get(f"/runs/{run_id}"))  # reads the run's findings once
    for _ in range(5):
        client.get(f"/runs/{run_id}", params={"sort": "score", "page": 3})
    queue = [_timed(lambda n=n: client.get(f"/runs/{run_id}", params={"status": "pending", "page": n % 7 + 1}))
             for n in range(requests)]
    ids = list(dict.fromkeys(int(m) for m in re.findall(r"/findings/(\d+)", client.get(f"/runs/{run_id}").text)))
    decide = [_timed(lambda sid=sid: client.post(f"/runs/{run_id}/findings/{sid}",
                                                  data={"csrf": csrf, "action": "accept", "replaces": "0"},
                                                  follow_redirects=False))
              for sid in ids[:requests]]

    def p(values, q):
        return round(statistics.quantiles(values, n=100)[q - 1], 1)

    result = {"findings": findings, "store_build_s": round(built, 1), "first_queue_ms": round(first, 1),
              "queue_p50_ms": p(queue, 50), "queue_p95_ms": p(queue, 95),
              "decision_p50_ms": p(decide, 50), "decision_p95_ms": p(decide, 95), "requests": len(decide)}
    print(f"| {findings} findings | p50 ms | p95 ms |\n|---|---:|---:|")
    print(f"| queue page | {result['queue_p50_ms']} | {result['queue_p95_ms']} |")
    print(f"| decision POST | {result['decision_p50_ms']} | {result['decision_p95_ms']} |")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--findings", type=int, default=20000)
    parser.add_argument("--requests", type=int, default=60)
    args = parser.parse_args()
    print(json.dumps(main(args.findings, args.requests), indent=2))
