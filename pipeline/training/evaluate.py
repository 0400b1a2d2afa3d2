"""Scores of the risk classifier: macro-F1, per-class P/R/F1, confusion matrix, accuracy (also on the
natural-mix sentences), calibration error and reliability bins, for fp32 and int8; and the calibration fit."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipeline.calibration import (Calibration, expected_calibration_error, fit_temperature, reliability,
                                  review_threshold, softmax)
from pipeline.reports.safe_text import json_line
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


def calibrate(location: Path | str, dev: Sequence[Example], cache_dir: Path | None = None) -> Calibration:
    """Fit the temperature on real dev (fp32 logits), derive the review band from the calibrated dev scores,
    and save both beside the weights, where the classify stage picks them up."""
    from pipeline.stages.classify import RiskClassifier

    classifier = RiskClassifier(str(location), device="cpu", precision="fp32", cache_dir=cache_dir)
    logits = classifier.logits([e.text for e in dev])
    truth = np.array([classifier.labels.index(e.label) for e in dev])
    temperature = fit_temperature(logits, truth)
    probabilities = softmax(logits, temperature)
    correct = probabilities.argmax(axis=1) == truth
    band = review_threshold(probabilities.max(axis=1), correct)
    calibration = Calibration(temperature, band, f"{len(dev)} real dev sentences")
    calibration.save(Path(location))
    return calibration


def _quality(truth: list[str], logits: np.ndarray, labels: list[str], natural: np.ndarray,
             calibration: Calibration) -> dict:
    probabilities = softmax(logits, calibration.temperature)
    predicted = [labels[i] for i in probabilities.argmax(axis=1)]
    correct = np.array([p == t for p, t in zip(predicted, truth)])
    confidence = probabilities.max(axis=1)
    review = confidence < calibration.review_below
    return {
        **scores(truth, predicted, taxonomy_labels()),
        "accuracy": round(float(correct.mean()), 4),
        "natural_accuracy": round(float(correct[natural].mean()), 4) if natural.any() else None,
        "natural_n": int(natural.sum()),
        "mean_confidence": round(float(confidence.mean()), 4),
        "ece": expected_calibration_error(confidence, correct),
        "ece_uncalibrated": expected_calibration_error(softmax(logits).max(axis=1), correct),
        "reliability": reliability(confidence, correct),
        "needs_review": int(review.sum()),
        "accuracy_outside_review_band": round(float(correct[~review].mean()), 4) if (~review).any() else None,
        "accuracy_in_review_band": round(float(correct[review].mean()), 4) if review.any() else None,
    }


def evaluate_directory(location: Path | str, examples: Sequence[Example], max_length: int = 128,
                       repeats: int = 3, int8_engine: str = "onnxruntime", cache_dir: Path | None = None,
                       predictions: Path | None = None) -> dict:
    """fp32 and int8 scores, calibration error and throughput of a saved model. Both are warmed up, then
    timed alternately ``repeats`` times (median), so a noisy shared machine skews neither side of the ratio.
    ``predictions``: also write one JSON line per sentence (gold, int8 prediction, score, distribution,
    needs_review): what the classify stage gives on CPU, for error analysis."""
    from pipeline.stages.classify import RiskClassifier

    texts = [e.text for e in examples]
    truth = [e.label for e in examples]
    natural = np.array([e.natural for e in examples], dtype=bool)
    classifiers = {precision: RiskClassifier(str(location), device="cpu", precision=precision, max_length=max_length,
                                             int8_engine=int8_engine, cache_dir=cache_dir)
                   for precision in ("fp32", "int8")}
    for classifier in classifiers.values():
        classifier.logits(texts[:64])  # warm-up: the first quantized batch is very slow
    seconds: dict[str, list[float]] = {precision: [] for precision in classifiers}
    logits = {}
    for _ in range(repeats):
        for precision, classifier in classifiers.items():
            started = time.perf_counter()
            logits[precision] = classifier.logits(texts)
            seconds[precision].append(time.perf_counter() - started)
    result: dict = {"n": len(examples), "int8_engine": int8_engine}
    for precision, classifier in classifiers.items():
        result[precision] = {**_quality(truth, logits[precision], classifier.labels, natural, classifier.calibration),
                             "sentences_per_second": round(len(texts) / float(np.median(seconds[precision])), 1)}
    result["int8_speedup"] = round(result["int8"]["sentences_per_second"] / result["fp32"]["sentences_per_second"], 2)
    result["int8_macro_f1_delta"] = round(result["int8"]["macro_f1"] - result["fp32"]["macro_f1"], 4)
    if predictions is not None:
        _write_predictions(predictions, examples, logits["int8"], classifiers["int8"])
    return result


def _write_predictions(path: Path, examples: Sequence[Example], logits: np.ndarray, classifier) -> None:
    probabilities = softmax(logits, classifier.calibration.temperature)
    with Path(path).open("w", encoding="utf-8", errors="backslashreplace") as handle:
        for example, row in zip(examples, probabilities, strict=True):
            best = int(row.argmax())
            handle.write(json_line({
                "text": example.text, "label": example.label, "predicted": classifier.labels[best],
                "score": round(float(row[best]), 6),
                "distribution": {name: round(float(p), 6) for name, p in zip(classifier.labels, row)},
                "needs_review": classifier.calibration.needs_review(float(row[best])), "precision": "int8",
            }) + "\n")
