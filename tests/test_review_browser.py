"""The review app as a reviewer meets it: the real ``docintel review`` server driven in headless Chromium
(Debian's chromium through Playwright). Keyboard review, a relabel, a rejection with a comment, a missed
risk added through the search, a reload, two browser contexts racing on one finding, sign-off and the
exports. Screenshots go to test-artifacts/review/."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from pipeline.store import ResultStore

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DOCINTEL = str(Path(sys.executable).parent / "docintel")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "review"
ROWS = [
    ("Our lenders may accelerate the loan if we breach the leverage covenant.", "financial", 0.91),
    ("A ransomware attack could shut down our order systems for weeks.", "technology", 0.62),
    ("<script>document.title='owned'</script> New export controls may bar sales to our largest customer.",
     "compliance", 0.55),
    ("The board met on 4 March without a quorum and approved the minutes.", "none", 0.97),
]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (installed by .ci/run)")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def served(tmp_path, labelled_run):
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    run_id = labelled_run(ResultStore(store_url), "/inbox/q3-pack.txt", ROWS)
    port = _free_port()
    env = {**os.environ, "DOCINTEL_STORE_URL": store_url, "DOCINTEL_HOME": str(tmp_path / "home")}
    server = subprocess.Popen([DOCINTEL, "review", "--run", run_id, "--port", str(port)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/login", timeout=2)
            break
        except OSError:
            assert server.poll() is None, server.stdout.read()
            assert time.monotonic() < deadline, "docintel review did not come up"
            time.sleep(0.2)
    yield base, run_id, store_url
    server.terminate()
    server.wait(timeout=30)


def _sign_in(page, base: str, name: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=name]", name)
    page.click("button:has-text('Sign in')")
    page.wait_for_url("**/")


def test_review_in_headless_chromium(served, tmp_path):
    from openpyxl import load_workbook
    from playwright.sync_api import sync_playwright

    base, run_id, store_url = served
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        ana = browser.new_context(accept_downloads=True).new_page()
        _sign_in(ana, base, "ana")
        ana.goto(f"{base}/runs/{run_id}?sort=score")  # highest first: lenders, ransomware, export controls
        ana.screenshot(path=str(ARTIFACTS / "queue.png"), full_page=True)
        ana.keyboard.press("j")
        ana.keyboard.press("Enter")
        ana.wait_for_selector("#sentence")
        assert "lenders" in ana.inner_text("#sentence")
        ana.screenshot(path=str(ARTIFACTS / "finding.png"), full_page=True)
        lenders_url = ana.url
        with ana.expect_navigation():
            ana.keyboard.press("a")  # accept → the next pending finding (least certain first)
        assert "export controls" in ana.inner_text("#sentence")
        assert ana.title() != "owned" and "<script>" in ana.inner_text("#sentence")  # shown, not run
        ana.keyboard.press("c")
        ana.keyboard.type("boilerplate, not specific to us")
        ana.keyboard.press("Escape")
        with ana.expect_navigation():
            ana.keyboard.press("r")  # reject with the comment
        assert "ransomware" in ana.inner_text("#sentence")
        with ana.expect_navigation():
            ana.keyboard.press("2")  # relabel: the taxonomy's second label, operational
        # a missed risk, through the semantic search
        ana.goto(f"{base}/runs/{run_id}/search")
        ana.fill("#q", "board meeting without a quorum")
        ana.click("button:has-text('Search')")
        row = ana.locator("#hits tr", has_text="without a quorum")
        row.locator("select[name=label]").select_option("internal_control")
        row.locator("input[name=comment]").fill("no quorum: the approval is invalid")
        row.locator("text=Mark as finding").click()
        ana.wait_for_selector("#status")
        assert ana.inner_text("#status") == "added"
        # reload: every decision persisted
        ana.goto(f"{base}/runs/{run_id}")
        ana.reload()
        counts = ana.inner_text("#counts")
        assert all(s in counts for s in ("pending: 0", "accepted: 1", "rejected: 1", "relabelled: 1", "added: 1"))

        # two reviewers on one finding: the later decision gets the 409 page with the earlier one
        ben = browser.new_context().new_page()
        _sign_in(ben, base, "ben")
        ana.goto(lenders_url)
        ben.goto(lenders_url)
        with ana.expect_navigation():
            ana.click("#follow_up")
        with ben.expect_navigation() as answer:
            ben.click("#reject")
        assert answer.value.status == 409
        assert "Another reviewer decided first" in ben.inner_text("#conflict") and "ana" in ben.inner_text("#conflict")
        ben.screenshot(path=str(ARTIFACTS / "conflict.png"), full_page=True)

        ana.goto(f"{base}/runs/{run_id}")
        with ana.expect_navigation():
            ana.click("text=Sign off this run")
        assert "Signed off by ana" in ana.inner_text("#signoff")
        ana.screenshot(path=str(ARTIFACTS / "signed-off.png"), full_page=True)
        digest = ana.inner_text("#signoff code")
        files = {}
        for fmt in ("json", "xlsx"):
            with ana.expect_download() as download:
                ana.click(f"a[href$='/export/{fmt}']")
            files[fmt] = tmp_path / f"reviewed.{fmt}"
            download.value.save_as(files[fmt])
        browser.close()

    exported = json.loads(files["json"].read_text())
    assert exported["review"]["signoff"]["digest"] == digest and exported["review"]["signoff"]["reviewer"] == "ana"
    statuses = {f["text"][:20]: (f["review"]["status"], f["review"]["final_label"]) for f in exported["findings"]}
    assert statuses["Our lenders may acce"] == ("follow_up", "financial")
    assert statuses["A ransomware attack "] == ("relabelled", "operational")
    assert exported["review"]["added"][0]["review"]["comment"] == "no quorum: the approval is invalid"
    book = load_workbook(files["xlsx"])
    header = [c.value for c in book["Findings"][1]]
    assert {"review_status", "final_label", "reviewer", "review_comment"} <= set(header)
    summary = {row[0].value: row[1].value for row in book["Summary"].iter_rows(min_row=2)}
    assert summary["sign-off digest (sha256)"] == digest and summary["signed off by"] == "ana"
    verified = subprocess.run([DOCINTEL, "review", "verify", run_id], capture_output=True, text=True,
                              env={**os.environ, "DOCINTEL_STORE_URL": store_url})
    assert verified.returncode == 0, verified.stderr
