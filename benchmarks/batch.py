"""Throughput of `healthivert batch` on this machine: 1 vs 2 worker processes (issue #6).

    .venv/bin/python benchmarks/batch.py [--studies 8] [--seed 6000] [--grader rule]

Writes a phantom cohort (T8-L5, ten vertebrae, the phantoms' drawn spacing and orientation)
in the VerSe layout, runs it with 1 worker and then with 2 workers into fresh output folders,
and prints markdown tables: wall time (cluster start included), studies per minute, speedup,
peak resident memory per worker process (its own high-water mark, and psutil samples taken
from here), and what a 1,000-study cohort needs at this pace.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from healthivert.batch import BatchSummary, discover_studies, run_batch
from healthivert.phantom import PhantomConfig, write_cohort
from healthivert.pipeline import RunOptions

PROJECTED_STUDIES = 1000


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


class WorkerRssSampler(threading.Thread):
    """Samples the resident memory of this process's Dask worker processes (psutil, every 0.2 s)."""

    def __init__(self, interval_s: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.interval_s, self.stopped, self.peaks_mb = interval_s, threading.Event(), {}
        self._is_worker: dict[int, bool] = {}

    def run(self) -> None:
        me = psutil.Process()
        while not self.stopped.wait(self.interval_s):
            for child in me.children(recursive=True):
                try:
                    if child.pid not in self._is_worker:  # workers are spawned; skip the resource tracker
                        cmd = " ".join(child.cmdline())
                        self._is_worker[child.pid] = "spawn_main" in cmd and "resource_tracker" not in cmd
                    if self._is_worker[child.pid]:
                        mb = child.memory_info().rss / 2**20
                        self.peaks_mb[child.pid] = max(self.peaks_mb.get(child.pid, 0.0), mb)
                except psutil.Error:
                    continue


def run(specs, out: Path, workers: int, options: RunOptions) -> tuple[BatchSummary, float, dict[int, float]]:
    sampler = WorkerRssSampler()
    sampler.start()
    t0 = time.perf_counter()
    summary = run_batch(specs, out, workers=workers, options=options)
    wall = time.perf_counter() - t0
    sampler.stopped.set()
    sampler.join()
    if summary.failed or summary.done != len(specs):
        sys.exit(f"batch with {workers} worker(s) did not complete: {summary}")
    return summary, wall, sampler.peaks_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=8, help="phantom studies (at least 8; default 8)")
    parser.add_argument("--seed", type=int, default=6000, help="first phantom seed")
    parser.add_argument("--grader", default="rule", help="grader (default rule: no model file needed)")
    args = parser.parse_args()
    if args.studies < 8:
        parser.error("--studies must be at least 8")
    options = RunOptions(grader=args.grader)

    with tempfile.TemporaryDirectory(prefix="hv_batch_bench_") as tmp:
        tmp = Path(tmp)
        print(f"writing {args.studies} phantom studies ...", file=sys.stderr)
        write_cohort(tmp / "cohort", args.studies, args.seed, PhantomConfig(top="T8", bottom="L5"))
        specs = discover_studies(tmp / "cohort")
        results, load = {}, {}
        for workers in (1, 2):
            print(f"running with {workers} worker(s) ...", file=sys.stderr)
            load[workers] = os.getloadavg()[0]  # CPU demand already there: other jobs share the cores
            results[workers] = run(specs, tmp / f"out_{workers}", workers, options)
        tables = [(tmp / f"out_{w}" / "cohort.csv").read_text(encoding="utf-8").splitlines() for w in (1, 2)]
        differing = sum(a != b for a, b in zip(*tables)) + abs(len(tables[0]) - len(tables[1]))
        study_mb = [folder_bytes(p) / 1e6 for p in (tmp / "out_2" / "studies").iterdir() if p.is_dir()]
        input_mb = folder_bytes(tmp / "cohort") / args.studies / 1e6
        cohort_kb = (tmp / "out_2" / "cohort.csv").stat().st_size / 1e3
        vertebrae = (tmp / "out_2" / "cohort.csv").read_text(encoding="utf-8").count("\n") - 1

    base_wall = results[1][1]
    print(f"\n{args.studies} phantom studies (T8-L5, {vertebrae // args.studies} vertebrae each, grader "
          f"{args.grader}, crops written) on {os.cpu_count()} CPU cores; wall time includes starting the "
          f"local cluster.\n")
    print("| workers | wall (s) | studies / min | speedup | mean s / study on a worker "
          "| peak RSS per worker, MiB: VmHWM (psutil sampled) | load average at start |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for workers, (summary, wall, sampled) in results.items():
        peaks = ", ".join(f"{summary.peak_rss_mb[pid]:.0f} ({sampled.get(pid, float('nan')):.0f})"
                          for pid in sorted(summary.peak_rss_mb))
        print(f"| {workers} | {wall:.0f} | {60 * args.studies / wall:.2f} | {base_wall / wall:.2f}x | "
              f"{statistics.mean(summary.study_seconds.values()):.1f} | {peaks} | {load[workers]:.1f} |")
    rate_2 = args.studies / results[2][1]  # studies per second, two workers
    per_study = statistics.mean(study_mb)
    print(f"\ncohort.csv identical with 1 and 2 workers: "
          f"{'yes' if not differing else f'NO, {differing} of {len(tables[0]) - 1} rows differ'}\n")
    print(f"| projection: {PROJECTED_STUDIES:,} studies of this size on this machine (2 workers) | |")
    print("|---|---:|")
    print(f"| time | {PROJECTED_STUDIES / rate_2 / 3600:.1f} h |")
    print(f"| result folders | {PROJECTED_STUDIES * per_study / 1e3:.1f} GB ({per_study:.1f} MB per study) |")
    print(f"| cohort.csv | {PROJECTED_STUDIES * cohort_kb / args.studies / 1e3:.1f} MB |")
    peak = max(max(s.peak_rss_mb.values()) for s, _, _ in results.values())
    print(f"| memory | {peak / 1024:.1f} GiB per worker process at peak |")
    print(f"| input (phantom CT + mask + centroids) | {input_mb:.1f} MB per study |")


if __name__ == "__main__":  # worker processes are spawned: they re-import this module
    main()
