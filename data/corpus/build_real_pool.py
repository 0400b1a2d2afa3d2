"""The pool of real sentences to label (issue 17): every document of ../shared/real read and split by docintel
itself, so labelled sentences are exactly what the classifier will meet.

Why a script: annotators label units as docintel's ingest and layout sentencizer cut them (see GUIDELINES.md),
with their provenance and the nearest heading above them as context; a 10-K's risk-factor headings ("Risks
Related to Our Indebtedness") also give a weak label to check annotations against. Each unit carries its
document group (one company's filings of different years repeat whole paragraphs: one group), so splits can
be made by group. ../shared/eval is never read. Writes data/corpus/real_pool.jsonl (not committed: rebuilt
from the documents) and prints the counts per kind and group.
Usage (from the repository root): .venv/bin/python data/corpus/build_real_pool.py
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from pipeline.reports.safe_text import json_line  # noqa: E402
from pipeline.stages.ingest import MEDIA_TYPES, IngestStage  # noqa: E402
from pipeline.stages.sentencize import SentencizeStage  # noqa: E402

REAL = REPO.parent / "shared" / "real"
OUT = Path(__file__).resolve().parent / "real_pool.jsonl"
HEADING = re.compile(r"^(?:risks? (?:related|relating) to|[A-Z][^.;:]{0,120}\brisks?\b[^.;:]{0,60}$)", re.I)
WEAK_LABELS = (  # heading words → the label its risk factors most often take
    ("internal_control", r"internal control|accounting|financial reporting"),
    ("technology", r"cyber|information technology|technology|data|systems|privacy and security"),
    ("compliance", r"legal|regulat|litigation|tax|government|compliance|environmental|intellectual property"),
    ("financial", r"indebtedness|debt|liquidity|capital|financial|credit|interest rate|currency|stock|shares"),
    ("operational", r"operations|operational|supply|suppliers|manufactur|employees|personnel|facilities"),
    ("strategic", r"industry|competition|strategy|market|economic|customers|products|acquisitions"),  # not "business": generic
)


def kind_and_group(path: Path) -> tuple[str, str]:
    name = path.name.lower()
    if path.parent.name == "10k-item1a":
        return "10-K item 1A", name.split("_")[0]
    if name.startswith("gao-"):
        return "GAO report", path.stem
    if name.startswith("hhs-oig"):
        return "HHS OIG report", path.stem
    return "10-K", re.split(r"[_-]", name)[0]


def weak_label(heading: str | None) -> str | None:
    if not heading:
        return None
    return next((label for label, words in WEAK_LABELS if re.search(words, heading, re.I)), None)


def main() -> None:
    ingest, sentencize = IngestStage(), SentencizeStage("layout")
    sentencize.warm_up()
    counts: Counter = Counter()
    paths = sorted(p for folder in ("10k-item1a", "10k-full", "gov-audit") for p in (REAL / folder).iterdir()
                   if p.suffix.lower() in MEDIA_TYPES)
    with OUT.open("w", encoding="utf-8") as handle:
        for path in paths:
            kind, group = kind_and_group(path)
            document = ingest.read(path)
            heading = None
            for sentence in sentencize.process([document]):
                if HEADING.match(sentence.text) and len(sentence.text) < 200:
                    heading = sentence.text
                record = {"doc": path.name, "group": group, "kind": kind, "page": sentence.page,
                          "start": sentence.start, "end_page": sentence.end_page, "end": sentence.end,
                          "text": sentence.text, "heading": heading, "weak_label": weak_label(heading)}
                handle.write(json_line(record) + "\n")
                counts[kind] += 1
            print(f"{path.name}: {len(document.pages)} pages", flush=True)
    print(json.dumps(dict(counts), indent=2))


if __name__ == "__main__":
    main()
