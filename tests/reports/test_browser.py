"""The HTML report as a reader's browser shows it: headless Chromium renders it, runs its script, and the DOM
it ends with is checked — findings table, charts, hostile document text shown as text and never executed.
The screenshot is kept under test-artifacts/ for a person to look at."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import replace
from html.parser import HTMLParser

import pytest

from pipeline.reports.audit import build_report
from pipeline.reports.exports import export
from pipeline.settings import REPO_ROOT

ARTIFACTS = REPO_ROOT / "test-artifacts"
# would mark the page if the browser ran them; document text must stay inert
PAYLOADS = ("<script>document.body.dataset.pwned='script'</script> appeared in a supplier e-mail.",
            "<img src=x onerror=\"document.body.dataset.pwned='img'\"> was pasted into the vendor portal.")


def _chromium() -> str:
    found = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    if found is None:
        if os.environ.get("DOCINTEL_REQUIRE_BROWSER"):  # set by .ci/run, which installs Debian's chromium
            pytest.fail("chromium is not installed; .ci/run installs it with apt-get install chromium")
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    return found


def _browser(chromium: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--virtual-time-budget=2000", *args], capture_output=True, text=True, timeout=60,
                          check=True)


class _Dom(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.text, self.body_attrs, self.finding_rows, self._where = [], [], {}, 0, []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        if tag == "body":
            self.body_attrs = attrs
        if tag == "table":
            self._where.append(attrs.get("id"))
        if tag == "tr" and self._where[-1:] == ["findings"] and "data-label" in attrs:
            self.finding_rows += 1

    def handle_endtag(self, tag):
        if tag == "table" and self._where:
            self._where.pop()

    def handle_data(self, data):
        self.text.append(data)


def test_chromium_renders_the_report_with_hostile_text_inert(report_store, tmp_path):
    chromium = _chromium()
    store, run_id = report_store
    report = build_report(store, run_id, models_dir=tmp_path)
    extra = [replace(report.findings[0], text=text, score=0.99 - i / 100) for i, text in enumerate(PAYLOADS)]
    report = replace(report, findings=extra + report.findings)
    [html] = export(report, tmp_path / "out", ("html",)).written

    dom = _Dom()
    dom.feed(_browser(chromium, "--dump-dom", html.as_uri()).stdout)  # the DOM after the page's script ran
    text = "".join(dom.text)
    assert len(text) > 2_000 and f"Risk findings — run {run_id}" in text
    assert dom.finding_rows == len(report.findings) == 8
    assert dom.tags.count("svg") == 2 and dom.tags.count("rect") >= 6  # both charts drawn
    assert "<script>alert(1)</script> was injected by the attacker into our portal." in text  # shown as text
    assert all(payload in text for payload in PAYLOADS)
    assert "data-pwned" not in dom.body_attrs and dom.tags.count("script") == 1 and "img" not in dom.tags

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    _browser(chromium, "--window-size=1280,2000", f"--screenshot={shot}", html.as_uri())
    from PIL import Image

    image = Image.open(shot).convert("L")
    low, high = image.getextrema()
    assert image.size == (1280, 2000) and high - low > 100  # something was painted, not a blank page
