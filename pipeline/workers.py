"""Run a stage in its own process: how the plan isolates TensorFlow on a shared GPU.

TensorFlow never returns GPU memory to the device; in its own process its arena is bounded by its
logical-device limit and freed when the worker exits, and the flow's process (torch, spaCy) never holds
it. The worker sees only its GPU (``CUDA_VISIBLE_DEVICES``), so inside it that GPU is index 0, and it gets
the same cap the plan gave, applied before the framework starts, exactly as in the flow's process.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

from pipeline.stages.base import Stage, StageSpec

_stage: Stage | None = None  # the worker process's stage


def _start(stage_bytes: bytes, environment: dict[str, str]) -> None:
    global _stage
    os.environ.update(environment)
    _stage = pickle.loads(stage_bytes)
    _stage.warm_up()


def _process(batch: Sequence) -> list:
    return _stage.process(batch)


def _model_label() -> str:
    return _stage.model_label


def _environment() -> dict[str, str]:
    return {name: os.environ.get(name, "") for name in ("CUDA_VISIBLE_DEVICES", "TF_FORCE_GPU_ALLOW_GROWTH")}


class IsolatedStage:
    """The same interface as a stage (``spec``, ``warm_up``, ``process``), executed in a spawned worker."""

    def __init__(self, stage: Stage, gpu_index: int | None) -> None:
        self.stage = stage
        self.environment = {"CUDA_VISIBLE_DEVICES": "" if gpu_index is None else str(gpu_index)}
        if gpu_index is not None:
            stage.gpu_index = 0  # renumbered inside the worker
        self._pool: ProcessPoolExecutor | None = None

    @property
    def name(self) -> str:
        return self.stage.name

    def spec(self) -> StageSpec:
        return self.stage.spec()

    def warm_up(self) -> None:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                initializer=_start, initargs=(pickle.dumps(self.stage), self.environment))

    def process(self, batch: Sequence) -> list:
        self.warm_up()
        return self._pool.submit(_process, list(batch)).result()

    @property
    def model_label(self) -> str:
        self.warm_up()
        return self._pool.submit(_model_label).result()

    def worker_environment(self) -> dict[str, str]:
        """What the worker process sees (for checks and logs)."""
        self.warm_up()
        return self._pool.submit(_environment).result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
