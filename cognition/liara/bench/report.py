"""The benchmark's figures: as JSON, as a plot, and as the tables ``liara bench`` prints."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from cognition.liara.bench.runner import SWEEPS, BenchPlan
from cognition.liara.commands.output import out, say, table_of


def write_results(results: dict[str, Any], output_dir: Path) -> list[Path]:
    """The JSON figures and, with matplotlib installed, a latency plot; returns the files written."""
    output_dir.mkdir(parents=True, exist_ok=True)
    stem = output_dir / f"bench-{time.strftime('%Y%m%d-%H%M%S')}"
    written = [stem.with_suffix(".json")]
    written[0].write_text(json.dumps(results, indent=2) + "\n")
    try:  # the bench extra
        import matplotlib  # pyright: ignore[reportMissingImports]

        matplotlib.use("Agg")
        from matplotlib import pyplot  # pyright: ignore[reportMissingImports]
    except ImportError:
        return written
    sweeps = results["sweeps"]
    panels = 1 + sum(1 for sweep in SWEEPS if any(point["sweep"] == sweep for point in sweeps))
    figure, axes = pyplot.subplots(1, panels, figsize=(6 * panels, 4.5), squeeze=False)
    histogram = axes[0][0]
    for side in ("baseline", "liara"):
        histogram.hist(results[side]["load_latencies_ms"], bins=40, alpha=0.6, label=side)
    plan = results["plan"]
    histogram.set_title(f"Latency: {plan['crises']} runs of P={plan['phases']} at C={plan['concurrency']}")
    histogram.set_xlabel("start to result, ms")
    histogram.set_ylabel("runs")
    histogram.legend()
    for axis, sweep in zip(axes[0][1:], [s for s in SWEEPS if any(p["sweep"] == s for p in sweeps)], strict=True):
        points = [point for point in sweeps if point["sweep"] == sweep]
        for side in ("baseline", "liara"):
            axis.plot([p[sweep] for p in points], [p[f"{side}_runs_per_second"] for p in points], "o-", label=side)
        fixed = "phases" if sweep == "concurrency" else "concurrency"
        axis.set_title(f"Throughput against {sweep} ({fixed} {points[0][fixed]})")
        axis.set_xscale("log", base=2)
        axis.set_xlabel(sweep)
        axis.set_ylabel("runs/s")
        if sweep == "phases":
            axis.set_yscale("log")  # cost linear in P: a straight line of slope -1
        axis.legend()
    figure.tight_layout()
    figure.savefig(stem.with_suffix(".png"))
    written.append(stem.with_suffix(".png"))
    return written


def print_results(results: dict[str, Any], plan: BenchPlan) -> None:
    """The headline figures, the rounds and the sweeps, as tables."""
    liara, baseline, ratios = results["liara"], results["baseline"], results["ratios"]
    rows: list[tuple[object, ...]] = [
        ("runs/s under load", baseline["runs_per_second"], liara["runs_per_second"], ratios["throughput"]),
        ("phases/s under load", baseline["phases_per_second"], liara["phases_per_second"], ""),
    ]
    for label, key, ratio in (
        ("single run", "single_latency_ms", "single_p50_latency"),
        ("under load", "load_latency_ms", "load_p50_latency"),
    ):
        for cut in ("p50", "p95", "p99"):
            rows.append(
                (f"{label} {cut} ms", baseline[key][cut], liara[key][cut], ratios[ratio] if cut == "p50" else "")
            )
    rows.append(("worker CPU s under load", baseline["worker_cpu_seconds"], liara["worker_cpu_seconds"], ratios["cpu"]))
    rows.append(("worker peak RSS MiB", baseline["worker_peak_rss_mib"], liara["worker_peak_rss_mib"], ""))
    say(
        f"{plan.crises} runs of {plan.phases} phases at concurrency {plan.concurrency}, "
        f"{plan.workers} worker process(es) per side, {plan.rounds} round(s), server {results['server']}; "
        "runs/s and CPU are the median round's, ratios the median of the rounds' ratios"
    )
    out.print(table_of(("", "baseline", "liara", "liara / baseline"), rows))
    if len(results["rounds"]) > 1:
        headers = ("round", "first", "baseline runs/s", "liara runs/s", "ratio", "single p50 ratio")
        per_round = [
            (
                entry["round"],
                entry["first"],
                entry["baseline_runs_per_second"],
                entry["liara_runs_per_second"],
                entry["throughput_ratio"],
                entry["single_p50_ratio"],
            )
            for entry in results["rounds"]
        ]
        out.print(table_of(headers, per_round))
    if results["sweeps"]:
        headers = ("sweep", "P", "C", "baseline runs/s", "liara runs/s", "liara / baseline")
        sweeps = [
            (
                point["sweep"],
                point["phases"],
                point["concurrency"],
                point["baseline_runs_per_second"],
                point["liara_runs_per_second"],
                point["throughput_ratio"],
            )
            for point in results["sweeps"]
        ]
        out.print(table_of(headers, sweeps))
