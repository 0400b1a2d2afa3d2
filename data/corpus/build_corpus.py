"""Merge the per-label parts in data/corpus/parts into data/risk_corpus.jsonl with a fixed split.

Why a script: the parts were written label by label; this drops near-duplicates across the whole set
(token Jaccard > 0.7, the same bound the tests check) and assigns train/dev/test (70/15/15) by a hash of
each sentence's text, so adding or relabelling sentences never moves the others between splits.
Usage (from the repository root): python data/corpus/build_corpus.py
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "risk_corpus.jsonl"
MAX_JACCARD = 0.7


def tokens(text: str) -> frozenset[str]:
    return frozenset(re.findall(r"[a-z0-9]+", text.lower()))


def main() -> None:
    rows = []
    for part in sorted((HERE / "parts").glob("*.jsonl")):
        rows += [json.loads(line) for line in part.read_text(encoding="utf-8").splitlines() if line.strip()]
    kept, kept_tokens = [], []
    for row in rows:
        t = tokens(row["text"])
        if all(len(t & k) / len(t | k) <= MAX_JACCARD for k in kept_tokens if t | k):
            kept.append(row)
            kept_tokens.append(t)
    out = []
    for row in kept:
        bucket = int(hashlib.sha256(row["text"].encode()).hexdigest(), 16) % 100
        split = "test" if bucket < 15 else "dev" if bucket < 30 else "train"
        out.append({"text": row["text"], "label": row["label"], "register": row.get("register", ""), "split": split})
    out.sort(key=lambda r: (r["split"], r["label"], r["text"]))
    OUT.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in out), encoding="utf-8")
    print(f"{len(rows)} written, {len(rows) - len(kept)} near-duplicates dropped, {len(out)} in {OUT.name}")


if __name__ == "__main__":
    main()
