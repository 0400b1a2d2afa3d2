"""The labelled corpus: size, balance, no near-duplicates, fixed splits; and the reader's errors."""

from __future__ import annotations

import itertools
import re
from collections import Counter

import pytest

from pipeline.errors import ConfigurationError
from pipeline.taxonomy import labels
from pipeline.training.corpus import CORPUS_FILE, read_examples


@pytest.fixture(scope="module")
def corpus():
    return read_examples(CORPUS_FILE)


def test_size_and_balance(corpus):
    counts = Counter(e.label for e in corpus)
    assert len(corpus) >= 1750
    assert set(counts) == set(labels())
    assert min(counts.values()) >= 250, counts


def test_fixed_split_per_label(corpus):
    for label in labels():
        splits = Counter(e.split for e in corpus if e.label == label)
        assert set(splits) == {"train", "dev", "test"}
        assert splits["test"] >= 0.1 * sum(splits.values())


def test_no_two_sentences_are_near_duplicates(corpus):
    tokens = [frozenset(re.findall(r"[a-z0-9]+", e.text.lower())) for e in corpus]
    worst = max(
        (len(a & b) / len(a | b), i, j) for (i, a), (j, b) in itertools.combinations(enumerate(tokens), 2) if a | b
    )
    assert worst[0] <= 0.7, (corpus[worst[1]].text, corpus[worst[2]].text)


def test_every_register_is_represented(corpus):
    assert len({e.register for e in corpus}) >= 6


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.csv", "text,label\nCash is short.,liquidity\n", "unknown label 'liquidity'"),
        ("bad.csv", "sentence,category\nCash is short.,financial\n", "'text' and 'label' columns"),
        ("bad.jsonl", '{"text": "Cash is short.", "label": "financial"}\n{not json}\n', "bad.jsonl:2: not valid JSON"),
        ("bad.jsonl", '{"text": "", "label": "financial"}\n', "both 'text' and 'label' are required"),
        ("bad.txt", "Cash is short.\tfinancial\n", "use a .csv or .jsonl"),
    ],
)
def test_malformed_files_are_clear_errors(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigurationError, match=message):
        read_examples(path)
