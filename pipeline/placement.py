"""Device placement: put the stages on GPUs with memory caps that are enforced, or on CPU.

Three frameworks share one card and none of them knows about the others: TensorFlow maps nearly all GPU
memory at first touch and never gives it back; PyTorch keeps its own caching allocator; spaCy/thinc
allocates through cupy, a third pool. The budget that must hold per GPU is

    TF cap + torch cap + one CUDA context (kernels, cuBLAS/cuDNN handles) per framework ≤ GPU memory

where spaCy's arrays are routed into torch's pool (``set_gpu_allocator("pytorch")``), so its need is part
of the torch cap. The planner reads only the stages' declarations and the visible GPUs (from
``nvidia-smi``, never by initialising a framework), and answers per stage: device, memory cap, and whether
it runs in the flow's process or an isolated worker. When the stages do not fit it moves, one at a time,
the stage that loses least on CPU (the lowest declared ``gpu_benefit``: USE is a cheap averaging model,
the BERT classifier gains most) and says why; a stage that insists on ``cuda`` and cannot fit is an error.
"""

from __future__ import annotations

import math

import csv
import io
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from pipeline.errors import ConfigurationError
from pipeline.stages.base import StageSpec

# Measured order of magnitude of what each framework holds on a GPU before any tensor: the CUDA context
# plus its kernel images and library handles (torch ≈ 500 MB with cuBLAS; TF ≈ 600 MB with cuDNN;
# cupy's own kernels ≈ 200 MB). Reserved per framework present on a GPU.
CONTEXT_MB = {"torch": 600, "tensorflow": 700, "spacy": 300}
SAFETY_FRACTION = 0.05  # left free on every card: fragmentation, other processes' contexts


class PlacementError(ConfigurationError):
    """The stages cannot be placed as asked (e.g. a stage requires a GPU that cannot hold it)."""


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    memory_mb: int


@dataclass(frozen=True)
class Placement:
    stage: str
    framework: str
    device: str  # "cpu" or "cuda:N"
    memory_cap_mb: int  # the stage's share of its framework's cap on that GPU; 0 on CPU
    isolated: bool  # runs in its own worker process (TensorFlow on a GPU: its arena is never returned)
    reason: str

    @property
    def gpu_index(self) -> int | None:
        return int(self.device.split(":")[1]) if self.device.startswith("cuda") else None


@dataclass(frozen=True)
class Plan:
    gpus: tuple[Gpu, ...]
    placements: tuple[Placement, ...]
    # per GPU index: framework → enforced cap in MB (torch's includes spaCy's pool), plus "context" reserved
    budgets: dict[int, dict[str, int]] = field(default_factory=dict)

    def for_stage(self, name: str) -> Placement:
        return next(p for p in self.placements if p.stage == name)

    def framework_cap_mb(self, gpu_index: int, framework: str) -> int:
        pool = "torch" if framework == "spacy" else framework
        return self.budgets.get(gpu_index, {}).get(pool, 0)

    def to_dict(self) -> dict:
        return {"gpus": [asdict(g) for g in self.gpus], "placements": [asdict(p) for p in self.placements],
                "budgets": {str(k): v for k, v in self.budgets.items()}}

    def table(self) -> str:
        lines = ["| stage | framework | device | cap MB | process | why |", "|---|---|---|---:|---|---|"]
        for p in self.placements:
            lines.append(f"| {p.stage} | {p.framework} | {p.device} | {p.memory_cap_mb or ''} | "
                         f"{'isolated worker' if p.isolated else 'flow'} | {p.reason} |")
        for gpu in self.gpus:
            budget = self.budgets.get(gpu.index)
            if budget:
                used = sum(budget.values())
                parts = ", ".join(f"{k} {v}" for k, v in budget.items())
                lines.append(f"\nGPU {gpu.index} ({gpu.name}, {gpu.memory_mb} MB): {parts} = {used} MB "
                             f"of {usable_mb(gpu)} MB usable")
        return "\n".join(lines)


def usable_mb(gpu: Gpu) -> int:
    return int(gpu.memory_mb * (1 - SAFETY_FRACTION))


def discover_gpus() -> list[Gpu]:
    """Visible NVIDIA GPUs from ``nvidia-smi`` (no framework is initialised), honouring CUDA_VISIBLE_DEVICES."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=20, check=True).stdout
    except (subprocess.SubprocessError, OSError):
        return []
    gpus = [Gpu(int(row[0]), row[1].strip(), int(float(row[2]))) for row in csv.reader(io.StringIO(out)) if row]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        wanted = [int(v) for v in visible.split(",") if v.strip().isdigit()]
        gpus = [Gpu(i, g.name, g.memory_mb) for i, g in enumerate(g for w in wanted for g in gpus if g.index == w)]
    return gpus


def _need_mb(specs: Sequence[StageSpec]) -> int:
    """Memory one GPU must hold for these stages: their needs plus one context per framework."""
    return sum(s.gpu_memory_mb for s in specs) + sum(CONTEXT_MB[f] for f in {s.framework for s in specs})


def plan(specs: Sequence[StageSpec], gpus: Sequence[Gpu]) -> Plan:
    """Deterministic placement of ``specs`` on ``gpus`` (see the module docstring).

    Stages are taken in order of priority (those that insist on a GPU, then the most to gain) and each
    goes to the first GPU, largest first, that can hold it beside those already there with one context
    per framework; a stage that fits nowhere runs on CPU, or is an error if it insists on a GPU."""
    wants_gpu = [s for s in specs if s.framework != "python" and s.device != "cpu" and s.gpu_memory_mb > 0]
    reasons: dict[str, str] = {}
    for s in specs:
        if s.framework == "python":
            reasons[s.name] = "no GPU work"
        elif s.device == "cpu":
            reasons[s.name] = "asked for CPU"
        elif s.gpu_memory_mb == 0:
            reasons[s.name] = "needs no GPU here (no model, or no GPU support installed)"
    if not gpus:
        for s in wants_gpu:
            if s.device == "cuda":
                raise PlacementError(f"stage {s.name!r} requires a GPU, but none is visible")
            reasons[s.name] = "no GPU visible"
        wants_gpu = []
    assigned: dict[str, Gpu] = {}
    on_gpu: dict[int, list[StageSpec]] = {g.index: [] for g in gpus}
    for s in sorted(wants_gpu, key=lambda s: (s.device != "cuda", -s.gpu_benefit)):
        gpu = next((g for g in sorted(gpus, key=lambda g: (-g.memory_mb, g.index))
                    if _need_mb(on_gpu[g.index] + [s]) <= usable_mb(g)), None)
        if gpu is not None:
            assigned[s.name] = gpu
            on_gpu[gpu.index].append(s)
            continue
        biggest = max(gpus, key=lambda g: (g.memory_mb, -g.index))
        need = _need_mb(on_gpu[biggest.index] + [s])
        detail = (f"GPU {biggest.index} has {usable_mb(biggest)} MB usable; with its {s.gpu_memory_mb} MB the "
                  f"stages there would need {need} MB including one context per framework")
        if s.device == "cuda":
            raise PlacementError(f"stage {s.name!r} requires a GPU but does not fit: {detail}. Use a smaller "
                                 "model or batch, or let it fall back to CPU (device auto)")
        reasons[s.name] = f"moved to CPU: {detail}"
    budgets: dict[int, dict[str, int]] = {}
    for gpu in gpus:
        here = [s for s in wants_gpu if assigned.get(s.name) == gpu]
        if here:
            frameworks = sorted({s.framework for s in here})
            budget = {"context": sum(CONTEXT_MB[f] for f in frameworks)}
            for pool in ("torch", "tensorflow"):
                members = [s for s in here if (s.framework == "spacy" and pool == "torch") or s.framework == pool]
                if members:
                    budget[pool] = sum(s.gpu_memory_mb for s in members)
            budgets[gpu.index] = budget
    placements = []
    for s in specs:
        gpu = assigned.get(s.name)
        if gpu is None:
            placements.append(Placement(s.name, s.framework, "cpu", 0, False, reasons[s.name]))
        else:
            placements.append(Placement(
                s.name, s.framework, f"cuda:{gpu.index}", s.gpu_memory_mb, s.framework == "tensorflow",
                f"fits on GPU {gpu.index}" + (" (own process: TensorFlow never returns GPU memory)"
                                              if s.framework == "tensorflow" else "")))
    return Plan(tuple(gpus), tuple(placements), budgets)


def ray_resources(result: Plan, gpu_memory_mb: int) -> dict[str, dict[str, float]]:
    """Ray resource requests per stage from a plan: a GPU stage asks for the fraction of a GPU that its
    memory cap plus its framework's context take (each Ray worker is its own process, with its own CUDA
    context), rounded up to 1/100, so Ray packs onto one GPU only stages that fit together; every stage
    asks for one CPU."""
    requests = {}
    for placement in result.placements:
        request = {"num_cpus": 1.0}
        if placement.gpu_index is not None and placement.memory_cap_mb:
            need = placement.memory_cap_mb + CONTEXT_MB.get(placement.framework, 0)
            request["num_gpus"] = min(1.0, math.ceil(100 * need / gpu_memory_mb) / 100)
        requests[placement.stage] = request
    return requests
