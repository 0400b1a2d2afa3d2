"""Scores of the risk classifier: macro-F1, per-class P/R/F1, confusion matrix, for fp32 and int8."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipeline.taxonomy import labels as taxonomy_labels
from pipeline.training.corpus import Example


def scores(truth: Sequence[str], predicted: Sequence[str], label_names: Sequence[str]) -> dict:
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    p, r, f, support = precision_recall_fscore_support(truth, predicted, labels=list(label_names), zero_division=0)
    return {
        "macro_f1": round(float(np.mean(f)), 4),
        "per_class": {
            name: {"precision": round(float(p[i]), 4), "recall": round(float(r[i]), 4), "f1": round(float(f[i]), 4),
                   "support": int(support[i])}
            for i, name in enumerate(label_names)
        },
        "confusion": {"labels": list(label_names),
                      "matrix": confusion_matrix(truth, predicted, labels=list(label_names)).tolist()},
    }


def evaluate_model(model, tokenizer, examples: Sequence[Example], max_length: int = 96) -> dict:
    """fp32 scores of an in-memory model (used on the dev split while training)."""
    import torch

    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    predicted = []
    with torch.inference_mode():
        for start in range(0, len(examples), 64):
            batch = examples[start : start + 64]
            encoded = tokenizer([e.text for e in batch], padding=True, truncation=True, max_length=max_length,
                                return_tensors="pt")
            predicted.extend(names[i] for i in model(**encoded).logits.argmax(-1).tolist())
    return scores([e.label for e in examples], predicted, names)


def evaluate_directory(location: Path | str, examples: Sequence[Example], max_length: int = 128,
                       repeats: int = 3, int8_engine: str = "onnxruntime", cache_dir: Path | None = None) -> dict:
    """fp32 and int8 scores and throughput of a saved model. Both are warmed up, then timed alternately
    ``repeats`` times (median), so a noisy shared machine skews neither side of the ratio."""
    from pipeline.stages.classify import RiskClassifier

    texts = [e.text for e in examples]
    truth = [e.label for e in examples]
    classifiers = {precision: RiskClassifier(str(location), device="cpu", precision=precision, max_length=max_length,
                                             int8_engine=int8_engine, cache_dir=cache_dir)
                   for precision in ("fp32", "int8")}
    for classifier in classifiers.values():
        classifier.predict_proba(texts[:64])  # warm-up: the first quantized batch is very slow
    seconds: dict[str, list[float]] = {precision: [] for precision in classifiers}
    probabilities = {}
    for _ in range(repeats):
        for precision, classifier in classifiers.items():
            started = time.perf_counter()
            probabilities[precision] = classifier.predict_proba(texts)
            seconds[precision].append(time.perf_counter() - started)
    result: dict = {"n": len(examples), "int8_engine": int8_engine}
    for precision, classifier in classifiers.items():
        predicted = [classifier.labels[i] for i in probabilities[precision].argmax(axis=1)]
        result[precision] = {**scores(truth, predicted, taxonomy_labels()),
                             "sentences_per_second": round(len(texts) / float(np.median(seconds[precision])), 1)}
    result["int8_speedup"] = round(result["int8"]["sentences_per_second"] / result["fp32"]["sentences_per_second"], 2)
    result["int8_macro_f1_delta"] = round(result["int8"]["macro_f1"] - result["fp32"]["macro_f1"], 4)
    return result
