"""The benchmark's figures: as JSON, as a plot, and as the tables ``liara bench`` prints."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from cognition.liara.bench.runner import BASELINES, SIDES, SWEEPS, BenchPlan
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
    for side in SIDES:
        histogram.hist(results[side]["load_latencies_ms"], bins=40, alpha=0.6, label=side)
    plan = results["plan"]
    histogram.set_title(f"Latency: {plan['crises']} runs of P={plan['phases']} at C={plan['concurrency']}")
    histogram.set_xlabel("start to result, ms")
    histogram.set_ylabel("runs")
    histogram.legend()
    for axis, sweep in zip(axes[0][1:], [s for s in SWEEPS if any(p["sweep"] == s for p in sweeps)], strict=True):
        points = [point for point in sweeps if point["sweep"] == sweep]
        for side in SIDES:
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
    """The headline figures, the rounds and the sweeps, as tables, with Liara's ratio to each
    baseline: the bare workflow with the SDK's defaults ("baseline") and outside the sandbox
    ("unsandboxed").
    """
    liara, ratios = results["liara"], results["ratios"]
    baselines = [results[side] for side in BASELINES]

    def row(label: str, key: str, cut: str | None = None, ratio: str | None = None) -> tuple[object, ...]:
        def figure(side: dict[str, Any]) -> object:
            return side[key][cut] if cut else side[key]

        shown = [ratios[f"{ratio}{suffix}"] if ratio else "" for suffix in BASELINES.values()]
        return (label, *(figure(side) for side in baselines), figure(liara), *shown)

    rows: list[tuple[object, ...]] = [
        row("runs/s under load", "runs_per_second", ratio="throughput"),
        row("phases/s under load", "phases_per_second"),
    ]
    for label, key, ratio in (
        ("single run", "single_latency_ms", "single_p50_latency"),
        ("under load", "load_latency_ms", "load_p50_latency"),
    ):
        for cut in ("p50", "p95", "p99"):
            rows.append(row(f"{label} {cut} ms", key, cut, ratio if cut == "p50" else None))
    rows.append(row("worker CPU s under load", "worker_cpu_seconds", ratio="cpu"))
    rows.append(row("worker peak RSS MiB", "worker_peak_rss_mib"))
    say(
        f"{plan.crises} runs of {plan.phases} phases at concurrency {plan.concurrency}, "
        f"{plan.workers} worker process(es) per side, {plan.rounds} round(s), server {results['server']}; "
        "runs/s and CPU are the median round's, ratios the median of the rounds' ratios; "
        "baseline: a bare workflow with the SDK's defaults, unsandboxed: the same outside the workflow sandbox"
    )
    headers = ("", "baseline", "unsandboxed", "liara", "liara / baseline", "liara / unsandboxed")
    out.print(table_of(headers, rows))
    if len(results["rounds"]) > 1:
        headers = (
            "round",
            "first",
            "baseline runs/s",
            "unsandboxed runs/s",
            "liara runs/s",
            "ratio",
            "ratio unsandboxed",
            "single p50 ratio",
            "single p50 ratio unsandboxed",
        )
        per_round = [
            (
                entry["round"],
                entry["first"],
                *(entry[f"{side}_runs_per_second"] for side in BASELINES),
                entry["liara_runs_per_second"],
                *(entry[f"throughput_ratio{suffix}"] for suffix in BASELINES.values()),
                *(entry[f"single_p50_ratio{suffix}"] for suffix in BASELINES.values()),
            )
            for entry in results["rounds"]
        ]
        out.print(table_of(headers, per_round))
    if results["sweeps"]:
        headers = (
            "sweep",
            "P",
            "C",
            "baseline runs/s",
            "unsandboxed runs/s",
            "liara runs/s",
            "liara / baseline",
            "liara / unsandboxed",
        )
        sweeps = [
            (
                point["sweep"],
                point["phases"],
                point["concurrency"],
                *(point[f"{side}_runs_per_second"] for side in BASELINES),
                point["liara_runs_per_second"],
                *(point[f"throughput_ratio{suffix}"] for suffix in BASELINES.values()),
            )
            for point in results["sweeps"]
        ]
        out.print(table_of(headers, sweeps))
