"""A one-off cold ``docintel run`` against the naive script (bench/naive_script.py) on one real 10-K
risk-factor section: whole-process wall time, as a user waits for it, medians of repeats, side by side in
one run. The docintel run keeps everything a run has (Prefect's temporary API server, flow and task runs
with their logs and states, the store, sentences.jsonl and five report formats); the script writes one
JSONL file.

    python bench/cold_run.py [--repeats 3] [--file PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipeline.settings import REPO_ROOT

DOCINTEL = str(Path(sys.executable).parent / "docintel")
DEFAULT_FILE = REPO_ROOT.parent / "shared" / "eval" / "docs" / "item1a_twlo_2018-03-01.txt"


def _wall(command: list[str], env: dict) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return seconds


def main(repeats: int, source: Path = DEFAULT_FILE) -> dict:
    work = Path(tempfile.mkdtemp(prefix="docintel-cold-"))
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}  # `docintel run` starts its own API
    env |= {"PREFECT_HOME": str(work / "prefect"), "DOCINTEL_HOME": str(work / "home")}
    naive = [sys.executable, str(REPO_ROOT / "bench" / "naive_script.py"), str(source)]
    # untimed: the page cache warm for both sides, and Prefect's database created (as after any first use)
    _wall(naive + [str(work / "warm.jsonl")], env)
    _wall([DOCINTEL, "run", str(source), "--out", str(work / "warm")],
          {**env, "DOCINTEL_STORE_URL": f"sqlite:///{work / 'warm.db'}"})
    ours, theirs = [], []
    for i in range(repeats):  # alternated, each docintel run on a fresh store: nothing is reused
        ours.append(_wall([DOCINTEL, "run", str(source), "--out", str(work / f"out-{i}")],
                          {**env, "DOCINTEL_STORE_URL": f"sqlite:///{work / f'{i}.db'}"}))
        theirs.append(_wall(naive + [str(work / f"naive-{i}.jsonl")], env))
    sentences = sum(1 for _ in (work / "out-0" / "sentences.jsonl").open())
    result = {"file": str(source), "sentences": sentences, "docintel_run_s": statistics.median(ours),
              "naive_script_s": statistics.median(theirs), "docintel_runs": ours, "naive_runs": theirs}
    result["speedup"] = result["naive_script_s"] / result["docintel_run_s"]
    print("| cold, whole process | seconds (median) |\n|---|---:|")
    print(f"| `docintel run` ({sentences} sentences, store + 5 reports) | {result['docintel_run_s']:.1f} |")
    print(f"| naive script | {result['naive_script_s']:.1f} |")
    print(f"\ndocintel is {result['speedup']:.2f}× the naive script; runs: ours {ours}, naive {theirs}")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE)
    args = parser.parse_args()
    print(json.dumps(main(args.repeats, args.file), indent=2))
