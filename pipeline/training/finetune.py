"""Fine-tune a BERT-family sequence classifier on the labelled corpus (transformers + PyTorch, CPU-friendly).

Seeded and deterministic: the same corpora, base weights and config give the same model directory name
(a hash of all three) and the same weights. The best epoch on the real dev split is kept; the scores are then
calibrated on real dev and judged on the real test split (document groups apart from train and dev).
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from pipeline.models import ModelRegistry, sha256_file
from pipeline.quiet import framework_noise
from pipeline.taxonomy import labels as taxonomy_labels
from pipeline.training.config import TrainConfig
from pipeline.training.corpus import CORPUS_FILE, REAL_CORPUS_FILE, Example, training_sets

Progress = Callable[[str], None]


def model_name(config: TrainConfig) -> str:
    return f"risk-{config.base.replace('/', '-')}"


def _fingerprint(config: TrainConfig, corpora: tuple[Path, ...], base_label: str) -> str:
    digest = hashlib.sha256(json.dumps(asdict(config), sort_keys=True).encode())
    for path in corpora:
        digest.update(Path(path).read_bytes())
    digest.update(base_label.encode())
    return digest.hexdigest()[:10]


def model_dir(config: TrainConfig, models_dir: Path, real: Path = REAL_CORPUS_FILE,
              written: Path = CORPUS_FILE, reviewed: Path | None = None) -> Path:
    """Where ``train`` writes this config's model: the name changes whenever a corpus or the config does."""
    base = ModelRegistry(models_dir).resolve(config.base)
    corpora = (real, written, *((reviewed,) if reviewed else ()))
    return Path(models_dir) / "trained" / f"{model_name(config)}-{_fingerprint(config, corpora, base.label)}"


def _seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def _limit(examples: list[Example], per_label: int | None) -> list[Example]:
    if per_label is None:
        return examples
    taken: dict[str, int] = {}
    kept = []
    for example in examples:
        if taken.get(example.label, 0) < per_label:
            kept.append(example)
            taken[example.label] = taken.get(example.label, 0) + 1
    return kept


def _batches(examples: list[Example], lengths: list[int], config: TrainConfig, generator) -> list[list[Example]]:
    """Shuffled batches of similar token lengths (sorted within windows of 50 batches): far less padding
    than random batches, so an epoch costs about half as much on CPU, and still a fresh mix every epoch."""
    import torch

    order = torch.randperm(len(examples), generator=generator).tolist()
    window = config.batch_size * 50
    batches = []
    for w in range(0, len(order), window):
        chunk = sorted(order[w : w + window], key=lambda i: lengths[i])
        batches += [[examples[i] for i in chunk[b : b + config.batch_size]] for b in range(0, len(chunk), config.batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def train(config: TrainConfig, models_dir: Path, progress: Progress = print, *, real: Path = REAL_CORPUS_FILE,
          written: Path = CORPUS_FILE, reviewed: Path | None = None) -> Path:
    """Train on ``config.corpora``, keep the best epoch on real dev, fit the calibration on real dev, score
    fp32 and int8 on the real test split, write the model directory (card, plot) and register it."""
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

    from pipeline.training.evaluate import evaluate_model

    registry = ModelRegistry(models_dir)
    base = registry.resolve(config.base)
    train_set, dev_set, test_set = training_sets(config.corpora, real, written, reviewed)
    train_set = _limit(train_set, config.limit_per_label)
    label_names = list(taxonomy_labels())
    label_ids = {name: i for i, name in enumerate(label_names)}
    name = model_name(config)
    out_dir = model_dir(config, models_dir, real, written, reviewed)

    _seed_everything(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(base.location)
    with framework_noise("loading the base model"):  # "Some weights … newly initialized": the head to train
        model = AutoModelForSequenceClassification.from_pretrained(
            base.location, num_labels=len(label_names), id2label=dict(enumerate(label_names)), label2id=label_ids,
            use_safetensors=True, trust_remote_code=False,
        )
    if config.freeze_embeddings:
        model.base_model.embeddings.requires_grad_(False)
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    steps_per_epoch = -(-len(train_set) // config.batch_size)
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(config.warmup_ratio * steps_per_epoch * config.epochs), steps_per_epoch * config.epochs
    )
    best_f1, best_state, history = -1.0, None, []
    started = time.perf_counter()
    lengths = [len(ids) for ids in tokenizer([e.text for e in train_set], truncation=True,
                                             max_length=config.max_length)["input_ids"]]  # once, not per epoch
    bar = tqdm(total=steps_per_epoch * config.epochs, desc=f"training {name}", unit="batch", disable=None)
    for epoch in range(1, config.epochs + 1):
        model.train()
        total_loss = 0.0
        for batch in _batches(train_set, lengths, config, generator):
            encoded = tokenizer([e.text for e in batch], padding=True, truncation=True,
                                max_length=config.max_length, return_tensors="pt")
            target = torch.tensor([label_ids[e.label] for e in batch])
            loss = torch.nn.functional.cross_entropy(model(**encoded).logits, target,
                                                     label_smoothing=config.label_smoothing)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            total_loss += loss.item()
            bar.update()
            bar.set_postfix(epoch=f"{epoch}/{config.epochs}", loss=f"{loss.item():.3f}")
        model.eval()
        dev = evaluate_model(model, tokenizer, dev_set, config.max_length)
        history.append({"epoch": epoch, "loss": round(total_loss / steps_per_epoch, 4), "dev_macro_f1": dev["macro_f1"]})
        progress(f"epoch {epoch}/{config.epochs}: loss {total_loss / steps_per_epoch:.4f}, "
                 f"real dev macro-F1 {dev['macro_f1']:.4f} ({time.perf_counter() - started:.0f} s)")
        if dev["macro_f1"] > best_f1:
            best_f1 = dev["macro_f1"]
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    bar.close()
    model.load_state_dict(best_state)
    model.eval()

    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "label_map.json").write_text(json.dumps(label_ids, indent=2))
    train_seconds = round(time.perf_counter() - started, 1)
    (out_dir / "training_config.json").write_text(json.dumps(
        {**asdict(config), "base_location": base.label, "real_corpus": str(real), "written_corpus": str(written),
         "reviewed_corpus": str(reviewed) if reviewed else None, "train_examples": len(train_set), "dev_examples": len(dev_set), "history": history,
         "train_seconds": train_seconds}, indent=2))
    from pipeline.training.evaluate import calibrate, evaluate_directory
    from pipeline.training.model_card import reliability_plot, write_model_card

    cache_dir = Path(models_dir) / "cache"
    calibration = calibrate(out_dir, dev_set, cache_dir=cache_dir)
    progress(f"calibrated on {len(dev_set)} real dev sentences: temperature {calibration.temperature}, "
             f"review band: scores below {calibration.review_below}")
    # scored as the classify stage runs it (its max_length, int8 engine, calibration), not as it was trained;
    # one timed pass after warm-up keeps a first `make run` short (`docintel evaluate` times three)
    metrics = evaluate_directory(out_dir, test_set, cache_dir=cache_dir, repeats=1)
    metrics["calibration"] = asdict(calibration)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    reliability_plot(out_dir, metrics)
    write_model_card(out_dir, config, metrics, history, len(train_set), len(dev_set), train_seconds)
    sha = sha256_file(out_dir / "model.safetensors")
    registry.register_local(name, {
        "framework": "torch", "kind": "sequence-classifier", "base": config.base,
        "description": f"risk classifier fine-tuned from {base.label}",
        "source": {"type": "local", "path": str(out_dir.relative_to(models_dir))},
        "files": {"model.safetensors": sha},
        "metrics": {"real_test_fp32_macro_f1": metrics["fp32"]["macro_f1"],
                    "real_test_int8_macro_f1": metrics["int8"]["macro_f1"]},
        "gpu_memory_mb": 1024,
    })
    progress(f"saved {out_dir} (real test macro-F1 fp32 {metrics['fp32']['macro_f1']:.4f}, "
             f"int8 {metrics['int8']['macro_f1']:.4f}; ECE int8 {metrics['int8']['ece']:.4f})")
    return out_dir
