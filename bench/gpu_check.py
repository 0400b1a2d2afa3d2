"""GPU check for the lent GPU machine: the torch stages (and spaCy, TensorFlow where installed) under the
placement plan on one GPU — caps vs peak memory actually used, and throughput alone vs together.

CI has no GPU, so this is a script, not a test. On the device machine (torch, transformers and
sentence-transformers are there; carry the rest as wheels, < 64 MiB per call, plus the built models):

    pip install --no-deps wheels/*.whl    # pydantic-settings, sqlalchemy, pyyaml, typer, onnxruntime …
    DOCINTEL_MODELS_DIR=models python bench/gpu_check.py [--sentences 2000]

TensorFlow with CUDA cannot be installed there (no registry, wheels too large to carry): TF's side of the
plan is covered by the unit tests of the plan → TF-config path (tests/test_placement.py).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time

from pipeline.placement import discover_gpus, plan
from pipeline.records import Sentence, Span
from pipeline.settings import Settings
from pipeline.stages.classify import ClassifyStage
from pipeline.stages.embed import EmbedStage


def batch(n: int) -> list[Sentence]:
    base = ["Our lenders could accelerate repayment if we breach the leverage covenant.",
            "A ransomware attack on our ERP system could halt shipments for weeks.",
            "The Committee approved the minutes of the previous meeting."]
    texts = [f"{base[i % 3]} (item {i})" for i in range(n)]
    return [Sentence("c" * 64, "/gpu-check", (Span(1, 0, len(t)),), t, i) for i, t in enumerate(texts)]


def run(stage, records) -> float:
    stage.process(records[:64])  # warm-up
    start = time.perf_counter()
    stage.process(records)
    return len(records) / (time.perf_counter() - start)


def main() -> None:
    import torch

    parser = argparse.ArgumentParser()
    parser.add_argument("--sentences", type=int, default=2000)
    args = parser.parse_args()
    settings = Settings()
    gpus = discover_gpus()
    if not gpus:
        raise SystemExit("no GPU visible (nvidia-smi)")
    stages = {"embed": EmbedStage(settings.embedder, models_dir=settings.models_dir),
              "classify": ClassifyStage(settings.classifier, models_dir=settings.models_dir)}
    result = plan([s.spec() for s in stages.values()], gpus)
    print(result.table())
    sentences = batch(args.sentences)
    inputs = {"embed": sentences, "classify": sentences}  # both read the sentences
    report: dict = {"gpu": gpus[0].name, "plan": result.to_dict(), "alone": {}, "together": {}}

    for name, stage in stages.items():  # alone: a fresh process state per stage is not possible here,
        placement = result.for_stage(name)  # so "alone" runs first, each stage before the other is loaded
        cap = result.framework_cap_mb(placement.gpu_index or 0, placement.framework)
        stage.place(placement.device, pool_cap_mb=cap, gpu_total_mb=gpus[0].memory_mb)
        torch.cuda.reset_peak_memory_stats()
        report["alone"][name] = {"sentences_per_s": round(run(stage, inputs[name]), 1),
                                 "torch_peak_mb": round(torch.cuda.max_memory_allocated() / 2**20),
                                 "torch_cap_mb": cap}
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for name, stage in stages.items():
        stage.process(inputs[name])
    report["together"] = {"sentences_per_s": round(len(sentences) / (time.perf_counter() - start), 1),
                          "torch_peak_mb": round(torch.cuda.max_memory_allocated() / 2**20),
                          "torch_cap_mb": result.framework_cap_mb(0, "torch")}
    if importlib.util.find_spec("cupy") is not None:
        import cupy

        report["cupy_pool_mb"] = round(cupy.get_default_memory_pool().total_bytes() / 2**20)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
