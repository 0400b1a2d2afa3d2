"""Device placement: the planner, the order caps are applied in, OOM back-off, isolated workers.

No GPU here: GPUs are described (the planner only reads declarations), and the framework calls that
would touch one are replaced by recorders — each such test says "faked" in its name.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.placement import CONTEXT_MB, Gpu, PlacementError, discover_gpus, plan, usable_mb
from pipeline.records import Document, Page, Sentence, Span
from pipeline.stages.base import StageSpec
from pipeline.settings import Settings


def spec(name, framework, memory, benefit, device="auto"):
    return StageSpec(name, framework, device, memory, 16, object, object, benefit)


# The card's full set: spaCy transformer sentencizer, USE in TF, MiniLM-sized torch embedder, BERT classifier.
FULL = [spec("ingest", "python", 0, 0), spec("sentencize", "torch", 2048, 2), spec("embed_use", "tensorflow", 512, 1),
        spec("embed", "torch", 512, 3), spec("classify", "torch", 1024, 4), spec("spacy_ner", "spacy", 256, 2)]


def test_single_80gb_gpu_holds_every_stage_with_caps_that_fit():
    gpu = Gpu(0, "H100", 81_559)
    result = plan(FULL, [gpu])
    devices = {p.stage: p.device for p in result.placements}
    assert devices == {"ingest": "cpu", "sentencize": "cuda:0", "embed_use": "cuda:0", "embed": "cuda:0",
                       "classify": "cuda:0", "spacy_ner": "cuda:0"}
    budget = result.budgets[0]
    assert budget == {"context": sum(CONTEXT_MB.values()), "torch": 2048 + 512 + 1024 + 256, "tensorflow": 512}
    assert sum(budget.values()) <= usable_mb(gpu)
    assert result.framework_cap_mb(0, "spacy") == budget["torch"]  # spaCy's arrays live in torch's pool
    assert [p.stage for p in result.placements if p.isolated] == ["embed_use"]  # TF gets its own process


def test_4gb_gpu_moves_the_stages_that_gain_least_first():
    result = plan(FULL, [Gpu(0, "T4 slice", 4096)])
    devices = {p.stage: p.device for p in result.placements}
    # classify (benefit 4) and embed (3) stay; the transformer sentencizer does not fit beside them,
    # USE (1) would need a second framework context: both move to CPU, each with its reason.
    assert devices["classify"] == devices["embed"] == "cuda:0"
    assert devices["embed_use"] == devices["sentencize"] == "cpu"
    assert "moved to CPU" in result.for_stage("embed_use").reason
    assert sum(result.budgets[0].values()) <= usable_mb(Gpu(0, "", 4096))
    assert plan(FULL, [Gpu(0, "T4 slice", 4096)]) == result  # deterministic


def test_no_gpu_gives_an_all_cpu_plan():
    result = plan(FULL, [])
    assert {p.device for p in result.placements} == {"cpu"} and result.budgets == {}
    assert not any(p.isolated for p in result.placements)


def test_a_stage_that_insists_on_a_gpu_and_cannot_fit_fails_clearly():
    insisting = [spec("classify", "torch", 6000, 4, device="cuda")]
    with pytest.raises(PlacementError, match=r"'classify' requires a GPU but does not fit.*3891 MB usable"):
        plan(insisting, [Gpu(0, "small", 4096)])
    with pytest.raises(PlacementError, match="none is visible"):
        plan(insisting, [])


def test_two_gpus_spread_what_one_cannot_hold():
    result = plan(FULL, [Gpu(0, "a", 3000), Gpu(1, "b", 3000)])
    assert {p.device for p in result.placements if p.framework != "python"} >= {"cuda:0", "cuda:1"}
    for index, budget in result.budgets.items():
        assert sum(budget.values()) <= usable_mb(result.gpus[index])


def test_discover_gpus_reads_faked_nvidia_smi_and_honours_cuda_visible_devices(tmp_path, monkeypatch):
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\nprintf '0, NVIDIA H100 80GB HBM3, 81559\\n1, NVIDIA H100 80GB HBM3, 81559\\n'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert discover_gpus() == [Gpu(0, "NVIDIA H100 80GB HBM3", 81559), Gpu(1, "NVIDIA H100 80GB HBM3", 81559)]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert discover_gpus() == [Gpu(0, "NVIDIA H100 80GB HBM3", 81559)]  # renumbered as CUDA does


def test_plan_cli_for_a_hypothetical_machine(isolated_settings):
    run = [str(Path(sys.executable).parent / "docintel"), "plan", "--embedder", "use", "--gpus", "1", "--gpu-memory-mb",
           "4096", "--json"]
    result = subprocess.run(run, capture_output=True, text=True, check=True)
    placements = {p["stage"]: p for p in json.loads(result.stdout)["placements"]}
    assert placements["embed"]["framework"] == "tensorflow" and placements["embed"]["isolated"]
    assert placements["classify"]["device"] == "cuda:0"
    failing = subprocess.run(run[:-1] + ["--gpus", "0"], capture_output=True, text=True,
                             env={**os.environ, "DOCINTEL_DEVICE": "cuda"})
    assert failing.returncode == 2 and "requires a GPU" in failing.stderr


# --- applying caps, in order --------------------------------------------------------------------


def test_torch_cap_then_spacy_gpu_then_allocator_in_that_order_with_faked_gpu_calls(monkeypatch):
    import spacy
    import thinc.api
    import torch

    from pipeline.stages.sentencize import SentencizeStage

    calls = []
    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction",
                        lambda fraction, device: calls.append(("torch_fraction", round(fraction, 3), device)))
    monkeypatch.setattr(spacy, "require_gpu", lambda index: calls.append(("spacy_require_gpu", index)))
    monkeypatch.setattr(thinc.api, "set_gpu_allocator", lambda name: calls.append(("thinc_allocator", name)))
    stage = SentencizeStage("senter", device="auto")
    stage.place("cuda:1", pool_cap_mb=4000, gpu_total_mb=80000)
    stage.warm_up()
    assert calls == [("torch_fraction", 0.05, 1), ("spacy_require_gpu", 1), ("thinc_allocator", "pytorch")]
    with pytest.raises(RuntimeError, match="already loaded"):
        stage.place("cpu")


def test_tensorflow_limit_is_set_before_its_first_gpu_touch_with_faked_gpu_calls(tmp_path, monkeypatch):
    """The logical-device limit precedes hub.load; a TF already initialised is a clear error, not a silent
    no-op."""
    import tensorflow as tf
    import tensorflow_hub as hub

    from pipeline.errors import ConfigurationError
    from pipeline.stages.embed import EmbedStage

    calls = []
    fake_gpu = tf.config.PhysicalDevice(name="/physical_device:GPU:0", device_type="GPU")
    monkeypatch.setattr(tf.config, "list_physical_devices",
                        lambda kind=None: [fake_gpu] if kind == "GPU" else [])
    monkeypatch.setattr(tf.config, "set_visible_devices", lambda devices, kind=None: calls.append(("visible", kind)))
    monkeypatch.setattr(tf.config, "set_logical_device_configuration",
                        lambda device, configs: calls.append(("limit", configs[0].memory_limit)))
    monkeypatch.setattr(hub, "load", lambda handle: calls.append(("hub.load", handle)) or (lambda texts: None))
    stage = EmbedStage(str(tmp_path / "saved"), models_dir=Settings().models_dir)
    (tmp_path / "saved").mkdir()
    (tmp_path / "saved" / "saved_model.pb").write_bytes(b"")
    stage.place("cuda:0", pool_cap_mb=768, gpu_total_mb=80000)
    stage.warm_up()
    assert calls == [("visible", "GPU"), ("limit", 768), ("hub.load", str((tmp_path / "saved").resolve()))]

    def already_initialised(device, configs):
        raise RuntimeError("Virtual devices cannot be modified after being initialized")

    monkeypatch.setattr(tf.config, "set_logical_device_configuration", already_initialised)
    late = EmbedStage(str(tmp_path / "saved"), models_dir=Settings().models_dir)
    late.place("cuda:0", pool_cap_mb=768, gpu_total_mb=80000)
    with pytest.raises(ConfigurationError, match="initialised before"):
        late.warm_up()


# --- out-of-memory back-off --------------------------------------------------------------------


class OutOfMemoryError(RuntimeError):
    """Named like torch's and cupy's: what a full GPU raises."""


def sentences(n: int) -> list[Sentence]:
    texts = [f"Risk {i}: our lenders may accelerate repayment if covenant {i} is breached." for i in range(n)]
    return [Sentence("d" * 64, "/x", (Span(1, 0, len(t)),), t, i) for i, t in enumerate(texts)]


def test_faked_oom_halves_the_batch_then_falls_back_to_cpu_and_loses_nothing():
    from pipeline.stages.embed import EmbedStage

    batch = sentences(9)
    stage = EmbedStage("minilm", models_dir=Settings().models_dir, device="cpu", precision="fp32")  # as on a GPU
    stage.warm_up()
    reference = np.stack([e.vector for e in stage.process(batch)])
    real_encode, sizes = stage._encoder.encode, []

    def tight_gpu(texts, batch_size):  # holds at most 2 sentences at once, and never sentence 4
        sizes.append(len(texts))
        if len(texts) > 2 or any("Risk 4:" in t for t in texts):
            raise OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB")
        return real_encode(texts, batch_size)

    stage._encoder.encode = tight_gpu
    result = stage.process(batch)
    assert [e.sentence for e in result] == batch
    np.testing.assert_allclose(np.stack([e.vector for e in result]), reference, atol=1e-5)
    assert sizes[0] == 9 and 1 in sizes  # halved down to single sentences
    assert stage._cpu_twin is not None and stage._cpu_twin._warm  # sentence 4 went to the CPU copy


def test_faked_oom_in_classify_matches_a_clean_run(tiny_models_dir):
    from pipeline.stages.classify import ClassifyStage

    batch = sentences(6)
    clean = ClassifyStage(models_dir=tiny_models_dir, device="cpu", precision="fp32").process(batch)
    stage = ClassifyStage(models_dir=tiny_models_dir, device="cpu", precision="fp32")
    stage.warm_up()
    real = stage._classifier.predict_proba

    def tight(texts, batch_size=32):
        if len(texts) > 1:
            raise OutOfMemoryError("out of memory")
        return real(texts, batch_size)

    stage._classifier.predict_proba = tight
    backed_off = stage.process(batch)
    assert [(r.label, round(r.score, 5)) for r in backed_off] == [(r.label, round(r.score, 5)) for r in clean]


def test_other_errors_are_not_mistaken_for_oom(minilm):
    from pipeline.stages.embed import EmbedStage

    stage = EmbedStage("minilm", models_dir=Settings().models_dir, device="cpu")
    stage.warm_up()

    def broken(texts, batch_size):
        raise ValueError("bad input")

    stage._encoder.encode = broken
    with pytest.raises(ValueError, match="bad input"):
        stage.process(sentences(4))


# --- isolated worker ---------------------------------------------------------------------------


def test_isolated_worker_gets_its_gpu_through_the_environment_and_returns_the_same_records():
    from pipeline.stages.sentencize import SentencizeStage
    from pipeline.workers import IsolatedStage

    text = "Liquidity is tight. Lenders may call the loan.\n\nThe board met."
    document = Document("e" * 64, "/memo.txt", "text/plain", (Page(1, text),))
    isolated = IsolatedStage(SentencizeStage("rule"), gpu_index=3)
    try:
        assert isolated.worker_environment()["CUDA_VISIBLE_DEVICES"] == "3"
        assert isolated.process([document]) == SentencizeStage("rule").process([document])
        assert isolated.spec().name == "sentencize"
    finally:
        isolated.close()
