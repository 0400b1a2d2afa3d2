"""The stage contract: read this first.

A stage declares, as data a planner can read before anything is loaded, which framework it runs
on, which device it wants, how much GPU memory it needs and its batch size, plus the record type
it takes and the one it returns. The constructor only stores settings (cheap, picklable);
``warm_up()`` loads models once and is idempotent; ``process(batch)`` returns new records and
never mutates its input. Framework imports live inside ``warm_up``/``process``, never at import
time, so TensorFlow's memory settings can be applied before it touches a GPU.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Generic, Literal, TypeVar

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


class Stage(ABC, Generic[In, Out]):
    """Base class of every stage. Subclasses set the class-level declarations below."""

    name: ClassVar[str]
    framework: ClassVar[Framework]
    takes: ClassVar[type]
    returns: ClassVar[type]
    gpu_memory_mb: ClassVar[int] = 0

    def __init__(self, *, device: DeviceWish = "auto", batch_size: int = 32) -> None:
        self.device: DeviceWish = device
        self.batch_size = batch_size
        self._warm = False

    def spec(self) -> StageSpec:
        """The declaration a planner reads; instance-aware because a chosen model can change it."""
        return StageSpec(
            name=self.name,
            framework=self.framework,
            device=self.device,
            gpu_memory_mb=self.gpu_memory_mb,
            batch_size=self.batch_size,
            takes=self.takes,
            returns=self.returns,
        )

    def warm_up(self) -> None:
        """Load models once; calling it again is a no-op."""
        if not self._warm:
            self._load()
            self._warm = True

    def process(self, batch: Sequence[In]) -> list[Out]:
        """Return new records for ``batch``; warms up on first use."""
        self.warm_up()
        return self._process(batch)

    @abstractmethod
    def _load(self) -> None:
        """Import the framework and load the model (heavy; runs once)."""

    @abstractmethod
    def _process(self, batch: Sequence[In]) -> list[Out]:
        """Turn a batch of input records into output records without mutating the input."""
