"""Merge the two blind annotation passes and the adjudication into data/corpus/real.jsonl and write the corpus
card (data/corpus/CARD.md): counts per split, sector and label, raw agreement and Cohen's kappa overall and
per label (one vs rest), computed on the two independent passes before adjudication.

Final label: the annotators' label where they agree and neither was unsure, else the adjudicator's (who sees
both labels, their notes and the guideline). A unit lacking either pass or a needed adjudication is left out
and counted in the card, never guessed.
Usage (repository root): .venv/bin/python data/corpus/build_real_corpus.py [--queue]
(``--queue`` writes annotation/queue/batch_NN.jsonl: the units of each doubly labelled batch the adjudicator
must decide, with both labels and notes.)
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

from sklearn.metrics import cohen_kappa_score

from pipeline.reports.safe_text import json_line
from pipeline.taxonomy import labels as taxonomy_labels

HERE = Path(__file__).resolve().parent
ANNOTATION = HERE / "annotation"
OUT = HERE / "real.jsonl"
CARD = HERE / "CARD.md"
SPLITS = ("train", "dev", "test")


def _read(folder: Path) -> dict[str, dict]:
    rows: dict[str, dict] = {}
    for path in sorted(folder.glob("batch_*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                rows[row["id"]] = row
    return rows


def merge() -> tuple[list[dict], dict]:
    units = [json.loads(line) for line in (ANNOTATION / "units.jsonl").read_text(encoding="utf-8").splitlines()]
    a, b, adjudicated = _read(ANNOTATION / "a"), _read(ANNOTATION / "b"), _read(ANNOTATION / "adjudicated")
    known = set(taxonomy_labels())
    records, missing = [], Counter()
    for unit in units:
        first, second = a.get(unit["id"]), b.get(unit["id"])
        if first is None or second is None:
            missing["not yet double-labelled"] += 1
            continue
        needs_adjudication = first["label"] != second["label"] or first.get("unsure") or second.get("unsure")
        decision = adjudicated.get(unit["id"]) if needs_adjudication else None
        if needs_adjudication and decision is None:
            missing["awaiting adjudication"] += 1
            continue
        label = decision["label"] if decision else first["label"]
        if label not in known or first["label"] not in known or second["label"] not in known:
            raise ValueError(f"{unit['id']}: a label outside the taxonomy")
        records.append({**{k: unit[k] for k in ("id", "text", "doc", "group", "kind", "sector", "page", "start",
                                                "end_page", "end", "heading", "weak_label", "split", "sampled_by")},
                        "label": label, "origin": "real",
                        "label_a": first["label"], "unsure_a": bool(first.get("unsure")),
                        "label_b": second["label"], "unsure_b": bool(second.get("unsure")),
                        "adjudication": decision.get("reason", "") if decision else ""})
    return records, {"units": len(units), "missing": dict(missing)}


def agreement(records: list[dict]) -> dict:
    a = [r["label_a"] for r in records]
    b = [r["label_b"] for r in records]
    out = {"n": len(records), "raw": round(sum(x == y for x, y in zip(a, b)) / len(records), 4),
           "kappa": round(float(cohen_kappa_score(a, b)), 4), "per_label": {}}
    for label in taxonomy_labels():
        x, y = [v == label for v in a], [v == label for v in b]
        out["per_label"][label] = {
            "a": sum(x), "b": sum(y), "raw": round(sum(p == q for p, q in zip(x, y)) / len(records), 4),
            "kappa": round(float(cohen_kappa_score(x, y)), 4) if any(x) or any(y) else None}
    return out


def _table(header: list[str], rows: list[list]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(str(v) for v in row) + " |" for row in rows)]


def card(records: list[dict], stats: dict, kappa: dict) -> str:
    names = list(taxonomy_labels())
    by_split = {s: Counter(r["label"] for r in records if r["split"] == s) for s in SPLITS}
    natural = {s: Counter(r["label"] for r in records if r["split"] == s and r["sampled_by"] == "random")
               for s in SPLITS}
    sectors = sorted({r["sector"] for r in records})
    by_sector = {s: Counter(r["label"] for r in records if r["sector"] == s) for s in sectors}
    groups = defaultdict(set)
    docs = defaultdict(set)
    for r in records:
        groups[r["split"]].add(r["group"])
        docs[r["split"]].add(r["doc"])
    methods = Counter((r["split"], r["sampled_by"]) for r in records)
    adjudicated = [r for r in records if r["adjudication"]]
    weak = [r for r in records if r["weak_label"]]
    weak_risks = [r for r in weak if r["label"] != "none"]
    changed = sum(r["label"] != r["label_a"] or r["label"] != r["label_b"] for r in adjudicated)
    lines = [
        "# Corpus card: real labelled sentences (`data/corpus/real.jsonl`)",
        "",
        f"**{len(records)} real sentences** from {len({r['doc'] for r in records})} documents "
        f"({len({r['group'] for r in records})} document groups) of `../shared/real` (10-K filings, Item 1A "
        "sections, GAO and HHS OIG audit reports; see its SOURCES.md), each a unit exactly as docintel's ingest "
        "and layout sentencizer cut it, with its document, page and character offsets. Nothing from "
        "`../shared/eval` (a test, `tests/training/test_real_corpus.py`, checks it); the gao-06-1046 report, "
        "which is also an eval document, is left out whole.",
        "",
        "## How it was made",
        "",
        "1. `data/corpus/build_real_pool.py`: every document through ingest + the layout sentencizer "
        "(106,698 units), each with its nearest heading and a weak label from risk-factor headings.",
        "2. `data/corpus/sample_real.py`: document groups assigned to train/dev/test first (stratified by "
        "sector; one company's filings of several years are one group), then per split three draws spread "
        "over the groups: `random` (the natural mix, `none` as it occurs: the only units scored for "
        "natural-mix accuracy), `heading` (units under risk headings, by weak label) and `uncertain` (lowest "
        "top-2 margin of the classifier trained on the written corpus: active learning). A second pass "
        "(`--targeted`) added `internal_control`- and `technology`-like units (a word list or the old "
        "classifier's top label), because the first passes held few of them. Units quoted in the guideline, "
        "repeated texts and units of fewer than 6 or more than 150 words are left out.",
        "3. Two annotators labelled every unit blind (`annotation/a`, `annotation/b`): they saw the unit, its "
        "heading and the unit before it, never a model output, the sampling method or the other's labels, and "
        "followed `GUIDELINES.md`. A third, the adjudicator, decided every disagreement and every unit either "
        "marked unsure, citing the guideline (`annotation/adjudicated`). The annotators and the adjudicator "
        "were separate AI agent sessions (one per batch and role), not human auditors: read the agreement "
        "below as consistency of one guideline applied twice, not as expert consensus. While batches 1-4 "
        "were labelled, two annotator sessions wrote helper scripts into one shared /tmp folder and one saw "
        "the other's script (code, no labels); later sessions used private folders. Several annotators caught and "
        "repaired labels shifted by one unit inside their own file before finishing; one such shift (annotator A, "
        "batch 15) was found by the adjudicator from notes that did not fit their units, so those 70 units were "
        "labelled again blind (`a/batch_15_redo.jsonl` replaces them) and adjudicated again. A windowed check of "
        "A against B (agreement of neighbouring units) finds no other shifted run.",
        "4. `data/corpus/build_real_corpus.py` (this card): the merge and the agreement figures.",
        "",
        f"Units sampled: {stats['units']}; in the corpus: {len(records)}"
        + (f"; left out: {', '.join(f'{v} {k}' for k, v in stats['missing'].items())}." if stats["missing"] else "."),
        f"Adjudicated: {len(adjudicated)} units (disagreements or unsure), of which {changed} got a label at "
        "least one annotator had not given.",
        "",
        "## Agreement of the two blind passes (before adjudication)",
        "",
        f"Raw agreement **{kappa['raw']:.4f}**, Cohen's κ **{kappa['kappa']:.4f}** over {kappa['n']} units; "
        f"unsure flags: annotator A {sum(r['unsure_a'] for r in records)}, B {sum(r['unsure_b'] for r in records)}.",
        "",
        *_table(["label (one vs rest)", "A", "B", "raw agreement", "κ"],
                [[n, v["a"], v["b"], f"{v['raw']:.4f}", "—" if v["kappa"] is None else f"{v['kappa']:.4f}"]
                 for n, v in kappa["per_label"].items()]),
        "",
        "## The heading weak labels, checked against the final labels",
        "",
        f"{len(weak)} units sit under a 10-K risk heading that maps to a label (`build_real_pool.py`). The final "
        f"label equals the heading's for {sum(r['label'] == r['weak_label'] for r in weak) / len(weak):.1%} of "
        f"them; {sum(r['label'] == 'none' for r in weak) / len(weak):.1%} are `none` (descriptions and lead-ins "
        f"under a risk heading), and of those that state a risk, "
        f"{sum(r['label'] == r['weak_label'] for r in weak_risks) / max(1, len(weak_risks)):.1%} have the "
        "heading's label. Headings are a weak signal: useful to find candidates, never a label.",
        "",
        "## Labels per split (final labels)",
        "",
        *_table(["split", "groups", "documents", "sentences", *names],
                [[s, len(groups[s]), len(docs[s]), sum(by_split[s].values()), *(by_split[s][n] for n in names)]
                 for s in SPLITS]),
        "",
        "Natural-mix (random draw) part of each split:",
        "",
        *_table(["split", "sentences", *names],
                [[s, sum(natural[s].values()), *(natural[s][n] for n in names)] for s in SPLITS]),
        "",
        "Draws per split: " + "; ".join(f"{s}: " + ", ".join(f"{m} {methods[(s, m)]}" for m in
                                                              ("random", "heading", "uncertain", "targeted"))
                                        for s in SPLITS) + ".",
        "",
        "## Labels per sector",
        "",
        *_table(["sector", "sentences", *names],
                [[s, sum(by_sector[s].values()), *(by_sector[s][n] for n in names)] for s in sectors]),
        "",
        "## Document groups per split",
        "",
        *(f"- **{s}**: {', '.join(sorted(groups[s]))}" for s in SPLITS),
        "",
        "## Guideline questions the annotators raised",
        "",
        "Every per-label κ is above 0.9, so no rule was rewritten and nothing relabelled (the protocol's bar is "
        "0.6). The boundaries annotators most often reported as unclear, to settle in the guideline's next "
        "revision (each was decided case by case by the adjudicator, citing the nearest rule):",
        "",
        "- governance risks with no label: anti-takeover provisions, dual-class control, director conflicts "
        "(mostly given `financial`, own share price);",
        "- IP protection outside litigation (`compliance` or `strategic`); channel partners and resellers "
        "(`operational` or `strategic`); tariffs, trade policy, climate change and political instability;",
        "- a bare \"we are subject to <law>\" or a description of a regulator's powers (`none` or `compliance`);",
        "- realised results in MD&A and Item 7A sensitivities (\"gross margin decreased 65 bp\", \"a 10% move "
        "would reduce fair value by $128 million\"): a realised adverse event or a plain figure;",
        "- government audits: unallowable payments against a Federal requirement (`internal_control` or "
        "`compliance`), third parties' fraud cases in OIG reports, oversight failures (`internal_control` or "
        "`operational`), recommendations whose weakness is only implied, and whose risk counts in a report about "
        "a whole sector rather than an audited programme;",
        "- list lead-ins that name a risk themselves, and report titles or captions that state a finding.",
        "",
        "## Fields",
        "",
        "`id`, `text`, `label` (final), `split`, `group`, `doc`, `kind`, `sector`, `page`, `start`, `end_page`, "
        "`end` (provenance as docintel reports it), `heading`, `sampled_by`, `origin` (`real`), `label_a`, "
        "`unsure_a`, `label_b`, `unsure_b`, `adjudication` (the adjudicator's reason, empty if none was needed).",
        "",
    ]
    return "\n".join(lines)


def queue() -> None:
    """The adjudicator's work list, per batch whose two passes are both complete."""
    a, b = _read(ANNOTATION / "a"), _read(ANNOTATION / "b")
    (ANNOTATION / "queue").mkdir(exist_ok=True)
    for path in sorted((ANNOTATION / "batches").glob("batch_*.jsonl")):
        units = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        if not all(u["id"] in a and u["id"] in b for u in units):
            continue
        todo = [{**u, "label_a": a[u["id"]]["label"], "note_a": a[u["id"]].get("note", ""),
                 "label_b": b[u["id"]]["label"], "note_b": b[u["id"]].get("note", "")}
                for u in units if a[u["id"]]["label"] != b[u["id"]]["label"]
                or a[u["id"]].get("unsure") or b[u["id"]].get("unsure")]
        with (ANNOTATION / "queue" / path.name).open("w", encoding="utf-8") as handle:
            for row in todo:
                handle.write(json_line(row) + "\n")
        print(path.name, len(todo), "to adjudicate")


def main() -> None:
    records, stats = merge()
    with OUT.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json_line(record) + "\n")
    kappa = agreement(records)
    CARD.write_text(card(records, stats, kappa), encoding="utf-8")
    (HERE / "agreement.json").write_text(json.dumps({**stats, **kappa}, indent=2) + "\n", encoding="utf-8")
    print(f"{len(records)} sentences; raw agreement {kappa['raw']}, kappa {kappa['kappa']}; {stats}")


if __name__ == "__main__":
    import sys

    queue() if "--queue" in sys.argv[1:] else main()
