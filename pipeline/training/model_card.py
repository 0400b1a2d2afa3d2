"""MODEL_CARD.md and reliability.png for a trained classifier: real-test metrics per class, calibration,
review band, and the committed model comparison and ablation (models/comparison.json, models/compare.py)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from pipeline.settings import REPO_ROOT

COMPARISON_FILE = REPO_ROOT / "models" / "comparison.json"


def reliability_plot(out_dir: Path, metrics: dict) -> Path:
    """Accuracy against confidence per 15-bin (real test split), fp32 and int8, with the review band shaded."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axis = plt.subplots(figsize=(5.2, 5.2), dpi=120)
    axis.plot([0, 1], [0, 1], color="#999", linestyle="--", linewidth=1, label="perfect calibration")
    band = metrics["calibration"]["review_below"]
    if band:
        axis.axvspan(0, band, color="#f4c542", alpha=0.18, label=f"review band (score < {band:.2f})")
    for precision, style in (("fp32", "o-"), ("int8", "s--")):
        bins = metrics[precision]["reliability"]
        axis.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], style, markersize=4,
                  label=f"{precision} (ECE {metrics[precision]['ece']:.3f})")
    axis.set(xlim=(0, 1), ylim=(0, 1), xlabel="calibrated score (confidence)", ylabel="accuracy",
             title=f"Reliability, real test split (n={metrics['n']}, 15 bins)")
    axis.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    path = out_dir / "reliability.png"
    figure.savefig(path)
    plt.close(figure)
    return path


def _per_label(fp32: dict, int8: dict) -> list[str]:
    lines = ["| label | precision | recall | F1 | support | int8 F1 |", "|---|---:|---:|---:|---:|---:|"]
    for name in fp32["confusion"]["labels"]:
        c = fp32["per_class"][name]
        lines.append(f"| {name} | {c['precision']:.3f} | {c['recall']:.3f} | {c['f1']:.3f} | {c['support']} | "
                     f"{int8['per_class'][name]['f1']:.3f} |")
    return lines


def comparison_lines(path: Path = COMPARISON_FILE) -> list[str]:
    """The comparison and ablation tables measured by models/compare.py (committed figures)."""
    if not path.is_file():
        return ["No comparison measured yet: run `.venv/bin/python models/compare.py`."]
    data = json.loads(path.read_text(encoding="utf-8"))
    lines = [f"Measured by `models/compare.py` on {data['machine']} ({data['date']}); real dev "
             f"{data['dev_n']} / real test {data['test_n']} sentences.", "",
             "| model | real dev macro-F1 | real dev accuracy | real test macro-F1 | sentences/s (CPU) | notes |",
             "|---|---:|---:|---:|---:|---|"]
    for row in data["models"]:
        lines.append(f"| {row['name']} | {row['dev_macro_f1']:.4f} | {row['dev_accuracy']:.4f} | "
                     f"{row['test_macro_f1']:.4f} | {row['sentences_per_second']} | {row['notes']} |")
    if data.get("ablation"):
        lines += ["", "Ablation (MiniLM fine-tune, same config, trained on):", "",
                  "| train data | train sentences | real dev macro-F1 | real test macro-F1 | written test macro-F1 |",
                  "|---|---:|---:|---:|---:|"]
        for row in data["ablation"]:
            lines.append(f"| {row['corpora']} | {row['train_n']} | {row['dev_macro_f1']:.4f} | "
                         f"{row['test_macro_f1']:.4f} | {row['written_test_macro_f1']:.4f} |")
    return lines


def write_model_card(out_dir: Path, config, metrics: dict, history: list, n_train: int, n_dev: int,
                     train_seconds: float) -> Path:
    fp32, int8, calibration = metrics["fp32"], metrics["int8"], metrics["calibration"]
    names = fp32["confusion"]["labels"]
    lines = [
        f"# {out_dir.name}",
        "",
        f"Risk classifier fine-tuned from `{config.base}` on `{config.corpora}`: {n_train} train sentences "
        "(the real corpus `data/corpus/real.jsonl`, double-annotated sentences of ../shared/real filings and "
        "audit reports, see `data/corpus/CARD.md`; and/or the written corpus `data/risk_corpus.jsonl`). "
        f"Best epoch chosen and scores calibrated on {n_dev} real dev sentences; judged on {metrics['n']} real "
        "test sentences from document groups in neither. Labels: `data/taxonomy.yaml`.",
        "",
        "## Real test split",
        "",
        f"macro-F1 fp32 **{fp32['macro_f1']:.4f}**, int8 **{int8['macro_f1']:.4f}** "
        f"(delta {metrics['int8_macro_f1_delta']:+.4f}); accuracy fp32 {fp32['accuracy']:.4f}, int8 "
        f"{int8['accuracy']:.4f}; on the {int8['natural_n']} natural-mix sentences (drawn at random from their "
        f"documents) int8 accuracy {int8['natural_accuracy']}. Throughput fp32 {fp32['sentences_per_second']} "
        f"sentences/s, int8 {int8['sentences_per_second']} sentences/s ({metrics['int8_speedup']}x) on the machine "
        "that trained it.",
        "",
        *_per_label(fp32, int8),
        "",
        "Confusion matrix (fp32; rows true, columns predicted):", "",
        "| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|",
        *(f"| {name} | " + " | ".join(str(v) for v in row) + " |" for name, row in zip(names, fp32["confusion"]["matrix"])),
        "",
        "## Calibration and the review band",
        "",
        f"Temperature **{calibration['temperature']}** fitted on real dev (negative log-likelihood). Expected "
        f"calibration error on real test (15 bins): int8 **{int8['ece']:.4f}** (uncalibrated "
        f"{int8['ece_uncalibrated']:.4f}), fp32 {fp32['ece']:.4f} (uncalibrated {fp32['ece_uncalibrated']:.4f}); "
        f"mean score {int8['mean_confidence']:.3f} at accuracy {int8['accuracy']:.3f}. `risk_score` reads as the "
        "probability that the label is right. Plot: `reliability.png`.",
        "",
        f"Review band: scores **below {calibration['review_below']}**, the range where fewer than 90% of real dev "
        "labels were right (dev scores in bins of 50). On real test: "
        f"{int8['needs_review']} of {metrics['n']} sentences fall in it (accuracy {int8['accuracy_in_review_band']}), "
        f"accuracy outside it {int8['accuracy_outside_review_band']}. Findings in the band are marked "
        "`needs_review` in sentences.jsonl and every report.",
        "",
        "## Model comparison and ablation",
        "",
        *comparison_lines(),
        "",
        "## Training",
        "",
        "```", *(f"{k}: {v}" for k, v in asdict(config).items()), "```", "",
        f"Trained in {train_seconds:.0f} s.", "",
        "| epoch | loss | real dev macro-F1 |", "|---:|---:|---:|",
        *(f"| {h['epoch']} | {h['loss']} | {h['dev_macro_f1']} |" for h in history), "",
        "## Limits", "",
        "- The gold labels are two annotators' reading of a written guideline (`data/corpus/GUIDELINES.md`); "
        "their agreement (`data/corpus/CARD.md`) bounds what any score here can mean.",
        "- One label per sentence: a sentence that fits two categories gets the dominant one only.",
        "- English only; sentences longer than 128 tokens are truncated.",
        f"- int8 is dynamic quantization of the Linear layers (per-channel weight scales) run by "
        f"{metrics['int8_engine']}, for CPU; on GPU the stage runs fp32.", "",
    ]
    path = out_dir / "MODEL_CARD.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
