"""MODEL_CARD.md for a trained classifier: data, metrics per class, confusion, int8 delta, limits."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path


def write_model_card(out_dir: Path, config, metrics: dict, history: list, n_train: int, n_dev: int) -> Path:
    fp32, int8 = metrics["fp32"], metrics["int8"]
    names = fp32["confusion"]["labels"]
    lines = [
        f"# {out_dir.name}",
        "",
        f"Risk classifier fine-tuned from `{config.base}` on docintel's labelled corpus "
        f"(`data/risk_corpus.jsonl`: {n_train} train / {n_dev} dev / {metrics['n']} test sentences written for "
        "this project in the registers auditors read). Labels: the taxonomy in `data/taxonomy.yaml`.",
        "",
        "## Test split",
        "",
        f"macro-F1 fp32 **{fp32['macro_f1']:.4f}**, int8 **{int8['macro_f1']:.4f}** "
        f"(delta {metrics['int8_macro_f1_delta']:+.4f}); throughput fp32 {fp32['sentences_per_second']} "
        f"sentences/s, int8 {int8['sentences_per_second']} sentences/s ({metrics['int8_speedup']}x) on the "
        "machine that trained it.",
        "",
        "| label | precision | recall | F1 | support | int8 F1 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in names:
        c = fp32["per_class"][name]
        lines.append(f"| {name} | {c['precision']:.3f} | {c['recall']:.3f} | {c['f1']:.3f} | {c['support']} | "
                     f"{int8['per_class'][name]['f1']:.3f} |")
    lines += ["", "Confusion matrix (fp32; rows true, columns predicted):", "",
              "| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for name, row in zip(names, fp32["confusion"]["matrix"]):
        lines.append(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
    lines += ["", "## Training", "", "```", *(f"{k}: {v}" for k, v in asdict(config).items()), "```", "",
              "| epoch | loss | dev macro-F1 |", "|---:|---:|---:|",
              *(f"| {h['epoch']} | {h['loss']} | {h['dev_macro_f1']} |" for h in history), "",
              "## Limits", "",
              "- Trained on sentences written for this project, not on real filings: the scores above are "
              "in-distribution. Real documents (see `../shared/eval`) are messier; spot-check before relying on it.",
              "- One label per sentence: a sentence that fits two categories gets the dominant one only.",
              "- English only; sentences longer than the max_length above are truncated.",
              f"- int8 is dynamic quantization of the Linear layers (per-channel weight scales) run by "
              f"{metrics['int8_engine']}, for CPU; on GPU the stage runs fp32.", ""]
    path = out_dir / "MODEL_CARD.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
