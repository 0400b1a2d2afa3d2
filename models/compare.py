"""Model choice by measurement (issue 17): candidates side by side on the real dev split (and real test), and the
ablation of the training data. Writes models/comparison.json (committed: the MPNet fine-tune alone takes ~20 min
on 2 cores, too long to redo on every build) and re-renders the default model's card with the tables.

Candidates: the default MiniLM fine-tune (as registered, int8 as the classify stage runs it on CPU), an MPNet
fine-tune, TF-IDF + logistic regression, and zero-shot nearest definition (MiniLM sentence embeddings of each
sentence against the taxonomy's definitions). Ablation: MiniLM fine-tunes on real+written, real only, written
only, judged on real dev / real test and on the written test split. Extra models are trained in a scratch
models directory, so the default registration is never touched.
Usage (repository root): .venv/bin/python models/compare.py [--skip-mpnet]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

from pipeline.models import ModelRegistry
from pipeline.settings import Settings
from pipeline.taxonomy import labels, load_taxonomy
from pipeline.training.config import TrainConfig
from pipeline.training.corpus import CORPUS_FILE, read_examples, split, training_sets
from pipeline.training.evaluate import evaluate_directory, scores
from pipeline.training.finetune import train
from pipeline.training.model_card import COMPARISON_FILE, write_model_card

MPNET_EPOCHS = 1  # one MPNet epoch costs ~8 MiniLM epochs on CPU (18-29 min on 2 cores)


def _accuracy(truth, predicted) -> float:
    return round(float(np.mean([t == p for t, p in zip(truth, predicted)])), 4)


def _row(name: str, dev_truth, dev_pred, test_truth, test_pred, per_second: float, notes: str) -> dict:
    return {"name": name, "dev_macro_f1": scores(dev_truth, dev_pred, labels())["macro_f1"],
            "dev_accuracy": _accuracy(dev_truth, dev_pred),
            "test_macro_f1": scores(test_truth, test_pred, labels())["macro_f1"],
            "test_accuracy": _accuracy(test_truth, test_pred), "sentences_per_second": round(per_second, 1),
            "notes": notes}


def fine_tuned(name: str, location: Path, dev, test, cache_dir: Path, notes: str) -> dict:
    dev_scores = evaluate_directory(location, dev, cache_dir=cache_dir, repeats=1)
    test_scores = evaluate_directory(location, test, cache_dir=cache_dir, repeats=1)
    return {"name": name, "dev_macro_f1": dev_scores["int8"]["macro_f1"], "dev_accuracy": dev_scores["int8"]["accuracy"],
            "test_macro_f1": test_scores["int8"]["macro_f1"], "test_accuracy": test_scores["int8"]["accuracy"],
            "sentences_per_second": test_scores["int8"]["sentences_per_second"],
            "fp32_dev_macro_f1": dev_scores["fp32"]["macro_f1"], "notes": notes}


def tfidf(train_set, dev, test) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
                          LogisticRegression(C=10.0, max_iter=2000, class_weight="balanced"))
    model.fit([e.text for e in train_set], [e.label for e in train_set])
    started = time.perf_counter()
    test_pred = model.predict([e.text for e in test])
    per_second = len(test) / (time.perf_counter() - started)
    return _row("TF-IDF (1-2 grams) + logistic regression", [e.label for e in dev], model.predict([e.text for e in dev]),
                [e.label for e in test], test_pred, per_second, "trained on real+written train; class-balanced")


def zero_shot(dev, test, models_dir: Path) -> dict:
    from pipeline.records import Sentence, Span
    from pipeline.stages.embed import EmbedStage

    stage = EmbedStage("minilm", models_dir=models_dir, device="cpu")
    stage.warm_up()

    def vectors(texts: list[str]) -> np.ndarray:
        batch = [Sentence("zero-shot", "zero-shot", (Span(1, 0, len(t)),), t, i) for i, t in enumerate(texts)]
        return np.array([e.vector for e in stage.process(batch)])

    names = list(load_taxonomy())
    definitions = vectors([f"{name.replace('_', ' ')} risk: {text}" for name, text in load_taxonomy().items()])

    def predict(examples) -> list[str]:
        return [names[i] for i in (vectors([e.text for e in examples]) @ definitions.T).argmax(axis=1)]

    vectors([e.text for e in dev[:32]])  # warm-up
    started = time.perf_counter()
    test_pred = predict(test)
    per_second = len(test) / (time.perf_counter() - started)
    return _row("zero-shot nearest definition (MiniLM embeddings)", [e.label for e in dev], predict(dev),
                [e.label for e in test], test_pred, per_second, "no training; cosine to each label's definition")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-mpnet", action="store_true", help="leave the MPNet row out (~20 min to train)")
    args = parser.parse_args()
    settings = Settings()
    registry = ModelRegistry(settings.models_dir)
    default = Path(registry.resolve("risk-minilm").location)
    cache_dir = settings.models_dir / "cache"
    train_set, dev, test = training_sets("real+written")
    written_test = split(read_examples(CORPUS_FILE), "test")
    scratch = Path(tempfile.mkdtemp(prefix="docintel-compare-"))
    shutil.copy(settings.models_dir / "registry.json", scratch / "registry.json")
    default_config = json.loads((default / "training_config.json").read_text(encoding="utf-8"))

    result = {"date": date.today().isoformat(),
              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
              "dev_n": len(dev), "test_n": len(test), "models": [], "ablation": []}

    def save() -> None:  # after every part: a late failure keeps what was measured
        COMPARISON_FILE.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")

    result["models"].append(fine_tuned("MiniLM-L6 fine-tune (default)", default, dev, test, cache_dir,
                                       f"{default_config['epochs']} epochs, real+written, int8 (ONNX Runtime)"))
    result["models"].append(tfidf(train_set, dev, test))
    result["models"].append(zero_shot(dev, test, settings.models_dir))
    save()
    for corpora in ("real+written", "real", "written"):
        location = default if corpora == "real+written" else train(
            TrainConfig(corpora=corpora, epochs=default_config["epochs"]), scratch, progress=print)
        metrics = json.loads((Path(location) / "metrics.json").read_text(encoding="utf-8"))
        dev_f1 = evaluate_directory(location, dev, cache_dir=cache_dir, repeats=1)["fp32"]["macro_f1"]
        written_f1 = evaluate_directory(location, written_test, cache_dir=cache_dir, repeats=1)["fp32"]["macro_f1"]
        result["ablation"].append({"corpora": corpora, "train_n": len(training_sets(corpora)[0]),
                                   "dev_macro_f1": dev_f1, "test_macro_f1": metrics["fp32"]["macro_f1"],
                                   "written_test_macro_f1": written_f1})
        print(result["ablation"][-1], flush=True)
        save()
    if not args.skip_mpnet:
        mpnet = train(TrainConfig(base="mpnet", epochs=MPNET_EPOCHS, learning_rate=5e-5), scratch, progress=print)
        result["models"].insert(1, fine_tuned("MPNet-base fine-tune", mpnet, dev, test, scratch / "cache",
                                              f"{MPNET_EPOCHS} epoch, lr 5e-5, real+written, int8 (ONNX Runtime)"))
        save()
    metrics = json.loads((default / "metrics.json").read_text(encoding="utf-8"))
    config = TrainConfig(**{k: default_config[k] for k in TrainConfig.__dataclass_fields__})
    write_model_card(default, config, metrics, default_config["history"], default_config["train_examples"],
                     default_config["dev_examples"], default_config["train_seconds"])
    shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(result["models"], indent=2))


if __name__ == "__main__":
    main()
