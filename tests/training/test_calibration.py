"""Temperature scaling, expected calibration error and the review band, on logits with a known answer."""

from __future__ import annotations

import numpy as np

from pipeline.calibration import (Calibration, expected_calibration_error, fit_temperature, review_threshold,
                                  softmax)


def _sampled(temperature: float, n: int = 20_000, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Logits whose labels are drawn from softmax(logits / temperature): that temperature is the right one."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, size=(n, 7))
    p = softmax(logits, temperature)
    truth = np.array([rng.choice(7, p=row) for row in p])
    return logits, truth


def test_fit_temperature_recovers_the_generating_temperature():
    for true_temperature in (0.5, 2.5):
        logits, truth = _sampled(true_temperature)
        assert abs(fit_temperature(logits, truth) - true_temperature) < 0.1 * true_temperature


def test_calibration_lowers_ece_of_overconfident_scores():
    logits, truth = _sampled(2.5)
    raw = softmax(logits)
    scaled = softmax(logits, fit_temperature(logits, truth))
    ece_raw = expected_calibration_error(raw.max(1), raw.argmax(1) == truth)
    ece_scaled = expected_calibration_error(scaled.max(1), scaled.argmax(1) == truth)
    assert ece_raw > 0.1 and ece_scaled < 0.02


def test_review_threshold_sits_where_precision_drops_below_target():
    confidence = np.linspace(0.2, 1.0, 4000)
    correct = np.random.default_rng(0).random(4000) < confidence  # accuracy equals confidence
    threshold = review_threshold(confidence, correct)
    assert 0.8 < threshold < 0.95
    assert Calibration(1.0, threshold).needs_review(0.5) and not Calibration(1.0, threshold).needs_review(0.99)


def test_a_model_without_calibration_file_has_identity_and_no_band(tmp_path):
    calibration = Calibration.load(tmp_path)
    assert calibration.temperature == 1.0 and not calibration.needs_review(0.2)
    Calibration(1.7, 0.8, "test").save(tmp_path)
    assert Calibration.load(tmp_path) == Calibration(1.7, 0.8, "test")
