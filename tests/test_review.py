"""Review and sign-off: the tamper-evident trail, reviewers, CSRF, concurrency and escaping, through the real
app (Starlette's test client over HTTP semantics) on a real store holding a run embedded by the real MiniLM.
The browser itself is driven in test_review_browser.py."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from pipeline.errors import ConfigurationError
from pipeline.reports.audit import build_report
from pipeline.review import Reviews, ReviewError, StaleDecision, add_reviewer, reviewed_report
from pipeline.review_app import create_app
from pipeline.settings import Settings
from pipeline.store import ResultStore

ROWS = [
    ("Our lenders may accelerate the loan if we breach the leverage covenant.", "financial", 0.91),
    ("A ransomware attack could shut down our order systems for weeks.", "technology", 0.62),
    ("<script>alert('x')</script> New export controls may bar sales to our largest customer.", "compliance", 0.55),
    ("The board met on 4 March and approved the minutes.", "none", 0.97),
    ("We depend on a single supplier for the chips in every product.", "operational", 0.48),
]
DOCINTEL = str(Path(sys.executable).parent / "docintel")


@pytest.fixture
def reviewed(tmp_path, labelled_run, isolated_settings, monkeypatch):
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("DOCINTEL_STORE_URL", store_url)
    store = ResultStore(store_url)
    run_id = labelled_run(store, "/inbox/q3-pack.txt", ROWS)
    settings = Settings()
    return store, run_id, settings, build_report(store, run_id, threshold=0.5, models_dir=settings.models_dir)


def _sentence(report, fragment):
    return next(f for f in report.findings if fragment in f.text).sentence_id


def test_decisions_chain_sign_off_and_verify_names_an_edited_row(reviewed, tmp_path):
    store, run_id, settings, report = reviewed
    reviews = Reviews(store)
    lenders, ransomware, exports = (_sentence(report, s) for s in ("lenders", "ransomware", "export controls"))
    reviews.decide(report, "ana", lenders, "accept")
    reviews.decide(report, "ana", ransomware, "relabel", label="operational", comment="an outage, not a breach")
    with pytest.raises(ReviewError, match="still pending"):
        reviews.sign_off(report, "ana")
    reviews.decide(report, "ben", exports, "reject", comment="boilerplate")
    signoff = reviews.sign_off(report, "ana")
    assert len(signoff.digest) == 64
    with pytest.raises(ReviewError, match="signed off by ana"):
        reviews.decide(report, "ben", lenders, "follow_up", replaces=1)
    reviews.reopen(report, "ben", "new evidence from the lender")
    reviews.decide(report, "ben", lenders, "follow_up", replaces=1)

    def findings_at(threshold):
        return build_report(store, run_id, threshold=threshold, models_dir=settings.models_dir).findings

    assert reviews.verify(run_id, findings_at) == []
    review = reviewed_report(store, report).review
    assert review.counts == {"pending": 0, "accepted": 0, "rejected": 1, "relabelled": 1, "follow_up": 1, "added": 0}
    assert review.signoff is None  # reopened
    # someone edits a decision in the database: the chain breaks exactly there
    with sqlite3.connect(tmp_path / "store.db") as db:
        db.execute("UPDATE review_trail SET comment = 'a real breach' WHERE seq = 2")
    problems = reviews.verify(run_id, findings_at)
    assert problems and problems[0].startswith("row 2 (relabel by ana") and "edited" in problems[0]
    result = subprocess.run([DOCINTEL, "review", "verify", run_id], capture_output=True, text=True)
    assert result.returncode == 1 and "row 2 (relabel by ana" in result.stderr


def test_a_stale_decision_is_refused_with_the_other_reviewers(reviewed):
    store, _, _, report = reviewed
    reviews = Reviews(store)
    lenders = _sentence(report, "lenders")
    reviews.decide(report, "ana", lenders, "accept")
    with pytest.raises(StaleDecision) as stale:
        reviews.decide(report, "ben", lenders, "reject", replaces=0)  # ben saw the finding before ana decided
    assert stale.value.current.reviewer == "ana" and stale.value.current.action == "accept"


def _signed_in(client: TestClient, name: str = "ana") -> str:
    page = client.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    assert client.post("/login", data={"name": name, "csrf": csrf}, follow_redirects=False).status_code == 303
    return re.search(r'name="csrf" value="([^"]+)"', client.get("/").text).group(1)


def test_app_review_race_409_add_missed_risk_and_export(reviewed):
    store, run_id, settings, report = reviewed
    ana, ben = TestClient(create_app(settings)), TestClient(create_app(settings))
    ana_csrf, ben_csrf = _signed_in(ana, "ana"), _signed_in(ben, "ben")
    lenders = _sentence(report, "lenders")
    queue = ana.get(f"/runs/{run_id}")
    assert queue.status_code == 200 and "pending: 3" in queue.text
    for client, csrf, action in ((ana, ana_csrf, "accept"), (ben, ben_csrf, "reject")):  # both saw it pending
        answer = client.post(f"/runs/{run_id}/findings/{lenders}",
                             data={"csrf": csrf, "action": action, "replaces": "0"}, follow_redirects=False)
    assert answer.status_code == 409 and "ana" in answer.text and "decided <strong>accept" in answer.text
    # without the token: refused, nothing recorded
    assert ana.post(f"/runs/{run_id}/findings/{lenders}", data={"action": "reject", "replaces": "1"}).status_code == 403
    assert len(Reviews(store).trail(run_id)) == 1
    # a missed risk, found by the semantic search
    hits = ana.get(f"/runs/{run_id}/search", params={"q": "board meeting minutes"})
    assert hits.status_code == 200 and "The board met" in hits.text
    board = next(s.id for s in store.sentences(report.findings[0].doc_id, "spacy:layout") if "board" in s.text)
    added = ana.post(f"/runs/{run_id}/add", data={"csrf": ana_csrf, "sentence_id": board, "label": "internal_control",
                                                 "model_label": "none", "comment": "quorum not met"})
    assert added.status_code == 200 and "added" in added.text
    exported = json.loads(ana.get(f"/runs/{run_id}/export/json").content)
    assert exported["review"]["counts"]["accepted"] == 1 and exported["review"]["counts"]["added"] == 1
    assert exported["review"]["added"][0]["review"]["comment"] == "quorum not met"
    assert exported["review"]["signed_off"] is False
    table = list(csv.DictReader(io.StringIO(ana.get(f"/runs/{run_id}/export/csv").text)))
    assert {row["run_signoff"] for row in table} == {"not signed off"}
    assert [row["review_comment"] for row in table if row["review_status"] == "added"] == ["quorum not met"]


def test_script_in_a_sentence_renders_inert_on_every_page(reviewed):
    store, run_id, settings, report = reviewed
    client = TestClient(create_app(settings))
    _signed_in(client)
    exports = _sentence(report, "export controls")
    pages = [client.get(f"/runs/{run_id}"), client.get(f"/runs/{run_id}/findings/{exports}"),
             client.get(f"/runs/{run_id}/search", params={"q": "export controls"})]
    for page in pages:
        assert page.status_code == 200 and "<script>alert" not in page.text and "&lt;script&gt;alert" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]


def test_non_loopback_needs_reviewers_and_passwords_are_checked_and_rate_limited(reviewed):
    store, _, settings, _ = reviewed
    with pytest.raises(ConfigurationError, match="needs reviewers"):
        create_app(settings, host="0.0.0.0")
    password = add_reviewer(store, "ana")
    # off loopback the session cookie is Secure: the app is meant to sit behind HTTPS
    client = TestClient(create_app(settings.model_copy(update={"review_login_attempts": 3}), host="0.0.0.0"),
                        base_url="https://testserver")
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)
    wrong = [client.post("/login", data={"name": "ana", "password": "guess", "csrf": csrf}).status_code
             for _ in range(4)]
    assert wrong == [401, 401, 401, 429]
    assert client.post("/login", data={"name": "ana", "password": password, "csrf": csrf}).status_code == 429
    fresh = TestClient(create_app(settings, host="0.0.0.0"), base_url="https://testserver")
    csrf = re.search(r'name="csrf" value="([^"]+)"', fresh.get("/login").text).group(1)
    answer = fresh.post("/login", data={"name": "ana", "password": password, "csrf": csrf}, follow_redirects=False)
    assert answer.status_code == 303 and "httponly" in answer.headers["set-cookie"].lower()
    assert "samesite=strict" in answer.headers["set-cookie"].lower()
    unknown = fresh.get("/runs/nope", follow_redirects=False)  # signed in: a clear message, not a sign-in page
    assert unknown.status_code == 400 and "no run &#39;nope&#39; in the store" in unknown.text


def test_reviewed_sentences_feed_training_and_evaluation(reviewed, tmp_path, tiny_models_dir):
    """Reviewers' final labels become corpus rows (split by document), join training, move the model's
    version, and ``docintel evaluate --reviews`` scores a classifier against them."""
    from pipeline.review import review_split, reviewed_examples, write_examples
    from pipeline.training.config import TrainConfig
    from pipeline.training.corpus import read_examples, training_sets
    from pipeline.training.finetune import model_dir

    store, run_id, settings, report = reviewed
    reviews = Reviews(store)
    reviews.decide(report, "ana", _sentence(report, "lenders"), "accept")
    reviews.decide(report, "ana", _sentence(report, "ransomware"), "relabel", label="operational")
    reviews.decide(report, "ana", _sentence(report, "export controls"), "reject")
    board = next(s.id for s in store.sentences(report.findings[0].doc_id, "spacy:layout") if "board" in s.text)
    reviews.decide(report, "ana", board, "add", label="internal_control", model_label="none")
    examples = reviewed_examples(store, run_id)
    assert sorted((e.text[:12], e.label) for e in examples) == [
        ("<script>aler", "none"), ("A ransomware", "operational"), ("Our lenders ", "financial"),
        ("The board me", "internal_control")]
    assert {e.split for e in examples} == {review_split(report.findings[0].doc_id)} and examples[0].origin == "review"
    path = write_examples(examples, tmp_path / "reviewed.jsonl")
    assert read_examples(path) == examples
    plain, with_reviews = training_sets("real"), training_sets("real", reviewed=path)
    split_index = ("train", "dev", "test").index(examples[0].split)
    assert len(with_reviews[split_index]) == len(plain[split_index]) + 4
    config = TrainConfig()
    assert model_dir(config, tiny_models_dir) != model_dir(config, tiny_models_dir, reviewed=path)

    result = subprocess.run([DOCINTEL, "evaluate", "--reviews", run_id], capture_output=True, text=True,
                            env={**os.environ, "DOCINTEL_MODELS_DIR": str(tiny_models_dir)})
    assert result.returncode == 0, result.stderr[-2000:]
    scores = json.loads(result.stdout)
    assert scores["data"] == f"reviews:{run_id}" and scores["n"] == 4 and "macro_f1" in str(scores["fp32"])
