"""What a classifier's score means: temperature scaling fitted on real dev sentences, and the review band.

A fine-tuned classifier's softmax is over- or under-confident; dividing its logits by one temperature fitted
on held-out real sentences (Guo et al., 2017) makes ``risk_score`` read as "probability the label is right"
without changing any label. The review band is the score range where, on real dev, fewer than
``REVIEW_PRECISION`` of the labels were right: findings there are marked ``needs_review`` so a reviewer
knows where to look first. Both live in ``calibration.json`` beside the weights, so they travel with the
model version they were fitted for.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

FILE = "calibration.json"
ECE_BINS = 15
REVIEW_PRECISION = 0.9
REVIEW_MIN_BIN = 50  # dev predictions per score bin: enough to measure a precision (±0.04 at 0.9)


@dataclass(frozen=True)
class Calibration:
    temperature: float = 1.0
    review_below: float = 0.0  # scores in [0, review_below) need review; 0 = no band (uncalibrated model)
    fitted_on: str = ""

    def needs_review(self, score: float) -> bool:
        return score < self.review_below

    def save(self, model_dir: Path) -> Path:
        path = Path(model_dir) / FILE
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, model_dir: Path | str) -> Calibration:
        """The model's calibration; identity (no band) for a model trained before calibration existed."""
        path = Path(model_dir) / FILE
        if not path.is_file():
            return cls()
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(float(data["temperature"]), float(data["review_below"]), str(data.get("fitted_on", "")))


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    scaled = logits / temperature
    exp = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def _nll(logits: np.ndarray, truth: np.ndarray, temperature: float) -> float:
    probabilities = softmax(logits, temperature)
    return float(-np.mean(np.log(probabilities[np.arange(len(truth)), truth] + 1e-12)))


def fit_temperature(logits: np.ndarray, truth: np.ndarray) -> float:
    """The temperature minimising negative log-likelihood: a log-spaced scan, then golden-section refinement
    (the NLL is unimodal in log T)."""
    grid = np.exp(np.linspace(np.log(0.05), np.log(20), 80))
    best = int(np.argmin([_nll(logits, truth, t) for t in grid]))
    lo, hi = np.log(grid[max(0, best - 1)]), np.log(grid[min(len(grid) - 1, best + 1)])
    ratio = (np.sqrt(5) - 1) / 2
    for _ in range(40):
        a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        if _nll(logits, truth, np.exp(a)) < _nll(logits, truth, np.exp(b)):
            hi = b
        else:
            lo = a
    return round(float(np.exp((lo + hi) / 2)), 4)


def reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> list[dict]:
    """Equal-width confidence bins: count, mean confidence and accuracy of each non-empty bin."""
    edges = np.linspace(0, 1, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    out = []
    for b in range(bins):
        mask = index == b
        if mask.any():
            out.append({"low": round(float(edges[b]), 4), "high": round(float(edges[b + 1]), 4), "n": int(mask.sum()),
                        "confidence": round(float(confidence[mask].mean()), 4),
                        "accuracy": round(float(correct[mask].mean()), 4)})
    return out


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE: the bins' |accuracy − confidence| weighted by their share of predictions."""
    n = len(confidence)
    return round(sum(b["n"] / n * abs(b["accuracy"] - b["confidence"]) for b in reliability(confidence, correct, bins)), 4)


def review_threshold(confidence: np.ndarray, correct: np.ndarray, precision: float = REVIEW_PRECISION,
                     min_bin: int = REVIEW_MIN_BIN) -> float:
    """The lowest score above which every bin of at least ``min_bin`` dev predictions was right at least
    ``precision`` of the time: below it lies the review band. Bins are quantiles of the dev scores, so each
    holds enough predictions to measure its precision."""
    order = np.argsort(confidence)
    conf, ok = confidence[order], correct[order]
    threshold = 0.0
    for start in range(0, len(conf), min_bin):
        chunk = slice(start, min(len(conf), start + min_bin))
        if ok[chunk].mean() < precision and (chunk.stop - chunk.start) >= min_bin // 2:
            threshold = float(conf[chunk.stop - 1]) + 1e-6
    return round(min(threshold, 1.0), 4)


def review_below_for(classifier_label: str | None, models_dir: Path) -> float | None:
    """The review band of the classifier version that produced a run's labels (``name@version:precision``),
    or None when that exact version is no longer registered here (its band is then unknown, not guessed)."""
    from pipeline.models import ModelRegistry

    if not classifier_label:
        return None
    name, _, rest = classifier_label.partition("@")
    try:
        resolved = ModelRegistry(models_dir).resolve(name, verify=False)  # the band only: weights not read
    except Exception:  # unregistered or removed: no band rather than a wrong one
        return None
    if resolved.label.split(":", 1)[0] != f"{name}@{rest.split(':', 1)[0]}":
        return None
    return Calibration.load(resolved.location).review_below
