"""The segmentation gold set loads exactly and the scorer measures real differences between modes."""

from __future__ import annotations

import json

import pytest

from pipeline.errors import ConfigurationError
from pipeline.evaluation.segmentation import load_gold, load_gold_set, score_mode
from pipeline.settings import REPO_ROOT

GOLD = REPO_ROOT / "data" / "segmentation" / "gold"
WRITTEN = ["hard_cases_annual_report.json", "hard_cases_minutes.json"]


@pytest.fixture(scope="module")
def written_gold(tmp_path_factory):
    return [load_gold(GOLD / name, REPO_ROOT / "missing", REPO_ROOT) for name in WRITTEN]


def test_gold_set_size_and_exact_fragments(written_gold, eval_docs):
    gold_set = load_gold_set(GOLD, eval_docs, REPO_ROOT)
    assert sum(len(g.segments) for g in gold_set) >= 400
    for gold in gold_set:
        for spans in gold.segments:
            assert spans[0].page in gold.pages
            assert all(gold.document.text_of((s,)).strip() for s in spans)
    assert any(len(spans) > 1 for g in written_gold for spans in g.segments)  # cross-page cases


def test_layout_beats_plain_spacy_on_the_written_hard_cases(written_gold):
    layout = score_mode("layout", written_gold)
    rule = score_mode("rule", written_gold)
    assert layout.f1 >= 0.95
    assert layout.f1 > rule.f1 + 0.1
    assert 0 < layout.correct <= layout.gold == rule.gold


def test_gold_that_no_longer_matches_the_text_is_a_clear_error(tmp_path):
    gold = json.loads((GOLD / WRITTEN[1]).read_text(encoding="utf-8"))
    gold["segments"][0][0]["text"] = "This sentence is not in the minutes."
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(gold), encoding="utf-8")
    with pytest.raises(ConfigurationError, match="not found on page"):
        load_gold(broken, tmp_path, REPO_ROOT)
