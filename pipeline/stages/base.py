"""The stage contract: read this first.

A stage declares, as data a planner can read before anything is loaded, which framework it runs
on, which device it wants, how much GPU memory it needs and its batch size, plus the record type
it takes and the one it returns. The constructor only stores settings (cheap, picklable);
``warm_up()`` loads models once and is idempotent; ``process(batch)`` returns new records and
never mutates its input. Framework imports live inside ``warm_up``/``process``, never at import
time, so TensorFlow's memory settings can be applied before it touches a GPU.

Declarations are class attributes; a stage whose framework or memory need follows from its chosen model
overrides ``spec()``, the one instance-level declaration point. ``takes``/``returns`` are checked where
stages are chained (``pipeline.analysis.Analyzer``).

The placement planner (``pipeline.placement``) answers with a device and the enforced memory cap of the
stage's framework pool; ``place()`` records them and ``warm_up()`` applies the cap before loading. A batch
that runs out of GPU memory is halved and retried down to one record, then run on a CPU copy of the
stage: nothing is lost and results match a small-batch run.
"""

from __future__ import annotations

import copy
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Generic, Literal, TypeVar

import numpy as np

Framework = Literal["python", "spacy", "torch", "tensorflow"]
DeviceWish = Literal["cpu", "cuda", "auto"]

In = TypeVar("In")
Out = TypeVar("Out")


@dataclass(frozen=True, slots=True)
class StageSpec:
    """What a stage declares about itself; the placement planner reads only this."""

    name: str
    framework: Framework
    device: DeviceWish
    gpu_memory_mb: int
    batch_size: int
    takes: type
    returns: type
    gpu_benefit: int = 0  # how much the stage gains from a GPU, relative to the others: who leaves first


class Stage(ABC, Generic[In, Out]):
    """Base class of every stage. Subclasses set the class-level declarations below."""

    name: ClassVar[str]
    framework: ClassVar[Framework]
    takes: ClassVar[type]
    returns: ClassVar[type]
    gpu_memory_mb: ClassVar[int] = 0
    gpu_benefit: ClassVar[int] = 0
    precision: str | None = None  # stages with a numeric precision choice set it; "auto" depends on the device

    def __init__(self, *, device: DeviceWish = "auto", batch_size: int = 32) -> None:
        self.device: DeviceWish = device
        self.batch_size = batch_size
        self.gpu_index = 0  # set by place(): which visible GPU
        self.pool_cap_mb: int | None = None  # enforced cap of this stage's framework pool on that GPU
        self.gpu_total_mb: int | None = None
        self._warm = False
        self._cpu_twin: Stage | None = None

    def place(self, device: str, *, pool_cap_mb: int | None = None, gpu_total_mb: int | None = None) -> None:
        """Apply a plan's answer (``cpu`` or ``cuda:N``) before warm-up."""
        if self._warm:
            raise RuntimeError(f"stage {self.name!r} is already loaded; place it before warm_up()")
        self.device = "cpu" if device == "cpu" else "cuda"
        self.gpu_index = int(device.split(":")[1]) if ":" in device else 0
        self.pool_cap_mb, self.gpu_total_mb = pool_cap_mb, gpu_total_mb

    def spec(self) -> StageSpec:
        """The declaration a planner reads; override it (not the class attributes) when a chosen model
        changes it."""
        return StageSpec(
            name=self.name,
            framework=self.framework,
            device=self.device,
            gpu_memory_mb=self.gpu_memory_mb,
            batch_size=self.batch_size,
            takes=self.takes,
            returns=self.returns,
            gpu_benefit=self.gpu_benefit,
        )

    def warm_up(self) -> None:
        """Apply the memory cap (before the framework touches the GPU), then load models once. Thread-safe:
        a load started in the background (``pipeline.analysis.prewarm``) is waited for, not repeated."""
        if self._warm:
            return
        with _LOADING:
            if not self._warm:
                if self.device == "cuda" and self.pool_cap_mb:
                    apply_cap(self.spec().framework, self.gpu_index, self.pool_cap_mb, self.gpu_total_mb)
                self._load()
                self._warm = True

    def process(self, batch: Sequence[In]) -> list[Out]:
        """Return new records for ``batch``; warms up on first use; backs off on GPU out-of-memory."""
        self.warm_up()
        return self._process_backing_off(list(batch))

    def _process_backing_off(self, batch: list[In]) -> list[Out]:
        try:
            return self._process(batch)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            if len(batch) > 1:
                half = len(batch) // 2
                return self._process_backing_off(batch[:half]) + self._process_backing_off(batch[half:])
            return self._on_cpu().process(batch)

    def _on_cpu(self) -> Stage[In, Out]:
        """A CPU copy of this stage, loaded on first need, for the records a GPU cannot hold. Its precision
        stays the GPU run's (``auto`` would mean int8 on CPU), so those records get the GPU run's numbers."""
        if self._cpu_twin is None:
            twin = copy.copy(self)
            twin.device, twin.pool_cap_mb, twin._warm, twin._cpu_twin = "cpu", None, False, None
            if twin.precision == "auto":
                twin.precision = "fp32"
            self._cpu_twin = twin
        return self._cpu_twin

    @abstractmethod
    def _load(self) -> None:
        """Import the framework and load the model (heavy; runs once)."""

    @abstractmethod
    def _process(self, batch: Sequence[In]) -> list[Out]:
        """Turn a batch of input records into output records without mutating the input."""


_LOADING = threading.RLock()  # one model load at a time per process (a lock is not picklable: not on the stage)

OOM_ERRORS = {"OutOfMemoryError", "ResourceExhaustedError"}  # torch and cupy; TensorFlow


def is_out_of_memory(exc: BaseException) -> bool:
    """A GPU out-of-memory error from any framework, recognised without importing one (CUDA errors that
    are not typed as such say "out of memory")."""
    return type(exc).__name__ in OOM_ERRORS or "out of memory" in str(exc).lower()


def length_batches(texts: Sequence[str], batch_size: int):
    """Positions of ``texts`` in batches of similar length (models pad each batch to its longest: measured
    1.3x faster here); stable, so equal inputs always batch the same way."""
    order = np.argsort([len(t) for t in texts], kind="stable")
    for start in range(0, len(texts), batch_size):
        yield order[start : start + batch_size]


def apply_cap(framework: str, gpu_index: int, pool_cap_mb: int, gpu_total_mb: int | None) -> None:
    """Enforce a framework pool's cap in this process, before the framework allocates on the GPU.

    torch and spaCy: ``set_per_process_memory_fraction`` on torch's caching allocator (it refuses beyond
    the cap, raising OOM, which the stage backs off from); spaCy then routes cupy's arrays into that pool
    (``require_gpu`` then ``set_gpu_allocator("pytorch")`` as it loads), so they count against this cap.
    TensorFlow: its cap is a logical-device memory limit that must precede TF's first op; the embed stage
    applies it while loading (``configure_tensorflow``), since that is also where TF learns its device.
    """
    if framework in ("torch", "spacy") and gpu_total_mb:
        import torch

        torch.cuda.set_per_process_memory_fraction(min(1.0, pool_cap_mb / gpu_total_mb), gpu_index)
