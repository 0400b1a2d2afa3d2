"""The warm-Analyzer cache: a long-lived process (docintel serve, a bench, a Ray worker) loads models once per
stage configuration, not once per store or report setting."""

from __future__ import annotations

from pipeline.analysis import analyzer_for
from pipeline.settings import Settings


def test_runs_differing_only_outside_the_stages_share_one_warm_analyzer(tmp_path):
    first = analyzer_for(Settings(store_url=f"sqlite:///{tmp_path / 'a.db'}", report_threshold=0.7))
    assert analyzer_for(Settings(store_url=f"sqlite:///{tmp_path / 'b.db'}", risk_register=tmp_path / "r.csv")) \
        is first
    other = analyzer_for(Settings(embedder="use"))
    assert other is not first and other.embed_stage.model == "use" and first.embed_stage.model == "minilm"
