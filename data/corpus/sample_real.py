"""Draw the real sentences to label (issue 17) from data/corpus/real_pool.jsonl and cut them into annotation batches.

Why this shape:
- document groups are assigned to train/dev/test *before* sampling, stratified by sector, so no document is in
  two splits and every split spans the pool's sectors and document kinds;
- inside each group three draws: ``random`` (the natural mix, `none` as it really occurs: the only draw scored
  for natural-mix accuracy), ``heading`` (units under a risk heading, by weak label, so rare labels reach 300)
  and ``uncertain`` (lowest top-2 margin of the current classifier: active learning, not only easy units);
- units that occur in ../shared/eval (normalised substring of any eval document), that the guideline quotes,
  or that repeat another unit's text are left out; the gao-06-1046 report is in ../shared/eval as a PDF and
  is left out whole.
Batches hold units in document order with the heading and the unit before (GUIDELINES.md §4) and no model
output, so annotators stay blind. Writes data/corpus/annotation/units.jsonl and batches/batch_NN.jsonl.
Targeted passes (``--targeted 1`` to ``5``): the first 2,440 double labels held 27 internal_control
and 84 technology units, so units that look like a rare label (a word list, half of them also the old
classifier's top label) are drawn from each split's groups as batches 15-21 (``sampled_by: targeted``;
never scored as natural mix). Rounds 2-5 topped up the labels still under 300.
Usage (repository root): .venv/bin/python data/corpus/sample_real.py [--targeted 1|2|3|4|5]
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from pipeline.models import ModelRegistry
from pipeline.reports.safe_text import json_line
from pipeline.settings import REPO_ROOT
from pipeline.stages.classify import RiskClassifier
from pipeline.stages.ingest import IngestStage

HERE = Path(__file__).resolve().parent
POOL = HERE / "real_pool.jsonl"
OUT = HERE / "annotation"
EVAL = REPO_ROOT.parent / "shared" / "eval" / "docs"
EXCLUDED_GROUPS = {"gao-06-1046"}  # the same report is an eval document
SECTORS = {
    "technology": "anet bl cdns clgx fico fnsr hpq idti mpwr ntnx panw powi qcom qlys sanm stmp",
    "financial services": "americanexpress axp gs pgr v wfc",
    "retail and consumer": "bestbuy cost nike pg wmt",
    "food and beverage": "ko",
    "pharma and health": "cvshealth mrk",
    "utilities": "aes",
    "defence and industrial": "3m amcor ge textron",
    "real estate, hospitality, construction": "bostonproperties mgmresorts premier wework",
}
SPLIT_SHARE = {"test": 0.22, "dev": 0.16}  # of each sector's groups; the rest is train
QUOTAS = {  # per split: units drawn by each method
    "test": {"random": 620, "heading": 260, "uncertain": 220},
    "dev": {"random": 380, "heading": 170, "uncertain": 150},
    "train": {"random": 1100, "heading": 900, "uncertain": 700},
}
BATCH_SIZE = 300
SEED = 17
WORDS = {
    "internal_control": r"internal control|material weakness|improper payment|overpa(id|yment)|did not (ensure|verify|"
                        r"monitor|document|maintain|have|follow)|lack(ed|s)? (of )?(adequate |sufficient )?(controls|"
                        r"oversight|documentation|procedures)|deficienc|unsupported|misstat|unallowable|fraud risk|"
                        r"recommend",
    "technology": r"cyber|breach|hack|malware|ransomware|information technology|\bIT\b|data cent|software|outage|"
                  r"security incident|unauthori[sz]ed access|computer|network",
    "financial": r"indebtedness|\bdebt\b|liquidity|credit rating|interest rate|covenant|impairment|exchange rate|"
                 r"borrow|refinanc|capital",
}
STRICT = {  # round 3: only a third of round 2's technology draws were labelled technology
    "technology": r"cyber|breach|hack|malware|ransomware|virus|security incident|unauthori[sz]ed access|"
                  r"(systems?|network|software|service) (failure|interruption|outage|disruption|defect)|data cent",
    "internal_control": r"internal control|material weakness|improper payment|overpa(id|yment)|misstat|restat|"
                        r"did not (ensure|verify|monitor|document)|control deficienc",
}
GAO_FINDINGS = r"overpa(id|yment)|improper(ly)? (paid|payment)|unallowable|unsupported|did not (ensure|verify|monitor|" \
               r"document|have (adequate|sufficient|effective))|lack(ed)? (adequate |effective )?(controls|oversight)"
ROUNDS = {  # targeted pass → (first batch number, batches, label → units per split, word lists)
    1: (15, 2, {"internal_control": {"test": 110, "dev": 70, "train": 270},
                "technology": {"test": 60, "dev": 40, "train": 100}}, WORDS),
    2: (17, 1, {"technology": {"dev": 20, "train": 140}, "internal_control": {"train": 70},
                "financial": {"train": 40}}, WORDS),  # after round 1: technology 181, internal_control 248, financial 293
    3: (18, 2, {"technology": {"train": 250}, "internal_control": {"train": 120}}, STRICT),  # then 236 and 258
    4: (20, 1, {"internal_control": {"train": 110}}, STRICT),  # then internal_control 278
    5: (21, 1, {"internal_control": {"train": 90}}, {"internal_control": GAO_FINDINGS}),  # round 4 yielded 16 of 104
}


def normalise(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def sector(group: str) -> str:
    if group.startswith(("gao-", "hhs-oig")):
        return "government audit"
    return next(name for name, groups in SECTORS.items() if group in groups.split())


def eval_text() -> str:
    """Every ../shared/eval document as docintel reads it, normalised and joined: one big haystack."""
    ingest = IngestStage()
    parts = []
    for path in sorted(EVAL.iterdir()):
        document = ingest.read(path)
        parts.append(normalise(" ".join(page.text for page in document.pages)))
    return "\n".join(parts)


def candidates(units: list[dict], haystack: str, quoted: str) -> list[dict]:
    seen: set[str] = set()
    kept = []
    for i, unit in enumerate(units):
        text = " ".join(unit["text"].split())
        key = normalise(text)
        words = text.split()
        letters = sum(c.isalpha() for c in text)
        if (unit["group"] in EXCLUDED_GROUPS or not 6 <= len(words) <= 150 or letters < 0.6 * len(text.replace(" ", ""))
                or text.isupper() or key in seen or key in haystack or key in quoted):
            continue
        seen.add(key)
        kept.append({**unit, "index": i, "prev": units[i - 1]["text"] if i and units[i - 1]["doc"] == unit["doc"] else ""})
    return kept


def assign_groups(groups: dict[str, list[dict]], rng: random.Random) -> dict[str, str]:
    by_sector: dict[str, list[str]] = defaultdict(list)
    for group in sorted(groups):
        by_sector[sector(group)].append(group)
    split_of = {}
    for names in by_sector.values():
        rng.shuffle(names)
        n_test = max(1, round(SPLIT_SHARE["test"] * len(names))) if len(names) > 1 else 0
        n_dev = max(1, round(SPLIT_SHARE["dev"] * len(names))) if len(names) > 2 else 0
        for k, name in enumerate(names):
            split_of[name] = "test" if k < n_test else "dev" if k < n_test + n_dev else "train"
    return split_of


def spread(units: list[dict], n: int, rng: random.Random) -> list[dict]:
    """n units spread over the groups (at most a group's fair share each), so no big filing dominates."""
    by_group: dict[str, list[dict]] = defaultdict(list)
    for unit in units:
        by_group[unit["group"]].append(unit)
    for members in by_group.values():
        rng.shuffle(members)
    taken: list[dict] = []
    while len(taken) < n and any(by_group.values()):
        for group in sorted(by_group):
            if by_group[group] and len(taken) < n:
                taken.append(by_group[group].pop())
    return taken


def main() -> None:
    rng = random.Random(SEED)
    units = [json.loads(line) for line in POOL.read_text(encoding="utf-8").splitlines()]
    quoted = normalise((HERE / "GUIDELINES.md").read_text(encoding="utf-8"))
    pool = candidates(units, eval_text(), quoted)
    groups: dict[str, list[dict]] = defaultdict(list)
    for unit in pool:
        groups[unit["group"]].append(unit)
    split_of = assign_groups(groups, rng)

    registry = ModelRegistry(REPO_ROOT / "models")
    classifier = RiskClassifier(registry.resolve("risk-minilm").location, precision="int8",
                                cache_dir=REPO_ROOT / "models" / "cache")
    chosen: list[dict] = []
    for split in ("test", "dev", "train"):
        members = [u for u in pool if split_of[u["group"]] == split]
        random_draw = spread(members, QUOTAS[split]["random"], rng)
        used = {u["index"] for u in random_draw}
        headed = [u for u in members if u["weak_label"] and u["index"] not in used]
        per_label = QUOTAS[split]["heading"] // 6
        heading_draw = [u for label in sorted({u["weak_label"] for u in headed})
                        for u in spread([u for u in headed if u["weak_label"] == label], per_label, rng)]
        used |= {u["index"] for u in heading_draw}
        rest = [u for u in members if u["index"] not in used]
        probe = spread(rest, 8 * QUOTAS[split]["uncertain"], rng)
        top2 = np.sort(classifier.predict_proba([u["text"] for u in probe]), axis=1)[:, -2:]
        margin = top2[:, 1] - top2[:, 0]
        uncertain = [probe[i] for i in np.argsort(margin)[: QUOTAS[split]["uncertain"]]]
        for method, draw in (("random", random_draw), ("heading", heading_draw), ("uncertain", uncertain)):
            chosen += [{**u, "split": split, "sampled_by": method} for u in draw]
        print(split, Counter(u["sampled_by"] for u in chosen if u["split"] == split), flush=True)

    chosen.sort(key=lambda u: u["index"])  # document order, as annotators read
    OUT.mkdir(exist_ok=True)
    (OUT / "batches").mkdir(exist_ok=True)
    fields = ("id", "doc", "group", "kind", "sector", "page", "start", "end_page", "end", "text", "heading",
              "weak_label", "split", "sampled_by")
    with (OUT / "units.jsonl").open("w", encoding="utf-8") as handle:
        for n, unit in enumerate(chosen):
            unit.update(id=f"r{n:05d}", sector=sector(unit["group"]))
            handle.write(json_line({k: unit[k] for k in fields}) + "\n")
    # batches: test and dev first (labelled first), whole documents kept together where a batch allows
    ordered = sorted(chosen, key=lambda u: (("test", "dev", "train").index(u["split"]), u["index"]))
    for b in range(0, len(ordered), BATCH_SIZE):
        with (OUT / "batches" / f"batch_{b // BATCH_SIZE + 1:02d}.jsonl").open("w", encoding="utf-8") as handle:
            for unit in ordered[b : b + BATCH_SIZE]:
                handle.write(json_line({"id": unit["id"], "doc": unit["doc"], "kind": unit["kind"],
                                        "heading": unit["heading"], "previous_unit": unit["prev"],
                                        "text": unit["text"]}) + "\n")
    print(len(chosen), "units;", Counter(u["split"] for u in chosen), Counter(u["sector"] for u in chosen))
    print({s: sorted(g for g, v in split_of.items() if v == s) for s in ("test", "dev")})


def targeted(round_: int) -> None:
    first_batch, n_batches, targets, words = ROUNDS[round_]
    rng = random.Random(SEED + round_)
    chosen = [json.loads(line) for line in (OUT / "units.jsonl").read_text(encoding="utf-8").splitlines()]
    split_of = {u["group"]: u["split"] for u in chosen}
    taken = {(u["doc"], u["page"], u["start"]) for u in chosen}
    units = [json.loads(line) for line in POOL.read_text(encoding="utf-8").splitlines()]
    quoted = normalise((HERE / "GUIDELINES.md").read_text(encoding="utf-8"))
    pool = [u for u in candidates(units, eval_text(), quoted)
            if u["group"] in split_of and (u["doc"], u["page"], u["start"]) not in taken
]
    seen = {normalise(c["text"]) for c in chosen}
    pool = [u for u in pool if normalise(u["text"]) not in seen]
    registry = ModelRegistry(REPO_ROOT / "models")
    classifier = RiskClassifier(registry.resolve("risk-minilm").location, precision="int8",
                                cache_dir=REPO_ROOT / "models" / "cache")
    extra: list[dict] = []
    for label, quota in targets.items():
        pattern = re.compile(words[label], re.I)
        for split, n in quota.items():
            used = {u["index"] for u in extra}
            members = [u for u in pool if split_of[u["group"]] == split and u["index"] not in used]
            probe = [u for u in members if pattern.search(u["text"])]
            if len(probe) > 6 * n:
                probe = spread(probe, 6 * n, rng)
            top = classifier.predict_proba([u["text"] for u in probe]).argmax(axis=1) if probe else []
            model_says = [u for u, t in zip(probe, top) if classifier.labels[t] == label]
            words_only = [u for u, t in zip(probe, top) if classifier.labels[t] != label]
            draw = spread(model_says, n // 2, rng)
            draw += spread(words_only, n - len(draw), rng)
            extra += [{**u, "split": split, "sampled_by": "targeted"} for u in draw]
            print(label, split, len(draw), flush=True)
    extra.sort(key=lambda u: (("test", "dev", "train").index(u["split"]), u["index"]))
    fields = ("id", "doc", "group", "kind", "sector", "page", "start", "end_page", "end", "text", "heading",
              "weak_label", "split", "sampled_by")
    first = len(chosen)
    size = -(-len(extra) // n_batches)
    with (OUT / "units.jsonl").open("a", encoding="utf-8") as handle:
        for n, unit in enumerate(extra):
            unit.update(id=f"r{first + n:05d}", sector=sector(unit["group"]))
            handle.write(json_line({k: unit[k] for k in fields}) + "\n")
    for b in range(n_batches):
        part = extra[b * size : (b + 1) * size]
        with (OUT / "batches" / f"batch_{first_batch + b}.jsonl").open("w", encoding="utf-8") as handle:
            for unit in sorted(part, key=lambda u: u["index"]):
                handle.write(json_line({"id": unit["id"], "doc": unit["doc"], "kind": unit["kind"],
                                        "heading": unit["heading"], "previous_unit": unit["prev"],
                                        "text": unit["text"]}) + "\n")
    print(len(extra), "targeted units")


if __name__ == "__main__":
    import sys

    targeted(int(sys.argv[2])) if sys.argv[1:2] == ["--targeted"] else main()
