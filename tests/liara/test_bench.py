"""``liara bench`` measures Liara and both baselines (the bare workflow in and outside the workflow
sandbox) on the dev server and reports the ratios it computed."""

from __future__ import annotations

import asyncio
import json
import re
import statistics

import pytest
from rich.progress import Progress

from cognition.liara.bench.runner import BenchPlan, side_order, single_runs
from tests.helpers import REPO_ROOT, assert_eventually
from tests.helpers.cli import run_cli
from tests.helpers.processes import run_script
from tests.helpers.records import scratch_database

pytestmark = pytest.mark.integration


def test_bench_measures_crises_and_the_baseline_and_writes_its_figures(liara_env, tmp_path):
    out_dir = tmp_path / "results"
    completed = run_cli(
        liara_env,
        tmp_path,
        "bench",
        "--crises", "6", "--phases", "2", "--concurrency", "3", "--single-runs", "2", "--rounds", "2",
        "--sweep-concurrency", "1,2", "--sweep-phases", "3", "--sweep-runs", "2",
        "--output-dir", str(out_dir), "--json",
        timeout=240,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    results = json.loads(completed.stdout)
    assert results["plan"] == {
        "crises": 6,
        "phases": 2,
        "concurrency": 3,
        "workers": 1,
        "single_runs": 2,
        "rounds": 2,
        "sweep_concurrency": [1, 2],
        "sweep_phases": [3],
        "sweep_runs": 2,
    }
    for side in ("liara", "baseline", "baseline_unsandboxed"):
        figures = results[side]
        assert len(figures["load_latencies_ms"]) == 12  # 6 in each of the 2 rounds
        assert figures["runs_per_second"] > 0
        assert figures["phases_per_second"] == pytest.approx(figures["runs_per_second"] * 2, rel=0.01)
        assert figures["single_latency_ms"]["p50"] <= figures["single_latency_ms"]["p99"]
        assert figures["worker_peak_rss_mib"] > 0
    rounds = results["rounds"]
    assert [(r["round"], r["first"]) for r in rounds] == [(1, "baseline"), (2, "liara")]  # the sides take turns
    for side, suffix in (("baseline", ""), ("baseline_unsandboxed", "_unsandboxed")):
        for entry in rounds:
            ratio = entry["liara_runs_per_second"] / entry[f"{side}_runs_per_second"]
            assert entry[f"throughput_ratio{suffix}"] == pytest.approx(ratio, abs=0.001)
            ratio = entry["liara_single_p50_ms"] / entry[f"{side}_single_p50_ms"]
            assert entry[f"single_p50_ratio{suffix}"] == pytest.approx(ratio, abs=0.01)
        median = statistics.median(r[f"throughput_ratio{suffix}"] for r in rounds)
        assert results["ratios"][f"throughput{suffix}"] == pytest.approx(median, abs=0.001)
        median = statistics.median(r[f"single_p50_ratio{suffix}"] for r in rounds)
        assert results["ratios"][f"single_p50_latency{suffix}"] == pytest.approx(median, abs=0.001)
    assert results["liara"]["runs_per_second"] == pytest.approx(
        statistics.median(r["liara_runs_per_second"] for r in rounds), abs=0.01
    )
    sweeps = results["sweeps"]
    assert [(p["sweep"], p["phases"], p["concurrency"]) for p in sweeps] == [
        ("concurrency", 2, 1),
        ("concurrency", 2, 2),
        ("phases", 3, 3),
    ]
    for point in sweeps:
        assert point["liara_runs_per_second"] > 0 and point["liara_worker_cpu_ms_per_run"] >= 0
        for side, suffix in (("baseline", ""), ("baseline_unsandboxed", "_unsandboxed")):
            assert point[f"{side}_runs_per_second"] > 0
            ratio = point["liara_runs_per_second"] / point[f"{side}_runs_per_second"]
            assert point[f"throughput_ratio{suffix}"] == pytest.approx(ratio, abs=0.001)
    written = list(out_dir.glob("bench-*.json"))
    assert len(written) == 1 and json.loads(written[0].read_text()) == results


async def test_bench_gate_measures_a_worker_holding_crises_at_an_approval_gate(liara_env, dev_server, tmp_path):
    # Six gated crises, two of them in memory: the other four are replayed when approved.
    args = ("bench", "--gate", "6", "--max-cached-workflows", "2", "--json")
    completed = await asyncio.to_thread(run_cli, liara_env, tmp_path, *args, timeout=240)
    assert completed.returncode == 0, completed.stderr
    figures = json.loads(completed.stdout)
    assert figures["gated_crises"] == 6 and figures["max_cached_workflows"] == 2
    assert 0 < figures["worker_rss_idle_mib"] <= figures["worker_peak_rss_mib"]
    assert figures["worker_rss_mib"] <= figures["worker_peak_rss_mib"]
    assert figures["worker_rss_after_mib"] <= figures["worker_peak_rss_mib"]
    assert figures["drain_seconds"] > 0
    assert figures["drained_per_second"] == pytest.approx(6 / figures["drain_seconds"], rel=0.05)
    # The command answers only once every crisis it started has completed (it fails otherwise).

    async def none_left_running() -> bool:
        query = "CrisisInitiatedBy = 'bench' AND ExecutionStatus = 'Running'"
        return (await dev_server.client.count_workflows(query)).count == 0

    await assert_eventually(none_left_running, timeout=30, interval=0.5)


async def test_the_sides_single_runs_take_turns_run_by_run() -> None:
    ran: list[tuple[str, int]] = []

    def runner(side: str):
        async def run_once(phases: int) -> None:
            ran.append((side, phases))

        return run_once

    order = side_order(2)
    plan = BenchPlan(crises=1, phases=3, concurrency=1, single_runs=2, rounds=1)
    with Progress(disable=True) as progress:
        single = await single_runs(order, {side: runner(side) for side in order}, plan, progress, 2)

    assert ran == [(side, 3) for side in order] * 2
    assert {side: len(times) for side, times in single.items()} == dict.fromkeys(order, 2)


def test_bench_refuses_a_sweep_that_is_not_a_list_of_counts(liara_env, tmp_path):
    completed = run_cli(liara_env, tmp_path, "bench", "--sweep-phases", "1,four", timeout=60)
    assert completed.returncode == 2
    assert "'1,four' is not a comma-separated list of whole numbers" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert not (tmp_path / "bench-results").exists()


def test_bench_cpu_measures_each_side_s_cpu_per_run(liara_env, tmp_path):
    args = ("--rounds", "1", "--runs", "3", "--concurrency", "2", "--phases", "1", "--warm-up", "1")

    done = run_script("scripts/bench_cpu.py", liara_env, tmp_path, *args, timeout=240)

    assert done.returncode == 0, done.stdout + done.stderr
    medians = done.stdout.split("medians of 1 rounds of 3 runs of 1 phases at concurrency 2\n")[1].splitlines()
    assert [line.split()[0] for line in medians] == ["baseline", "baseline_unsandboxed", "liara"]
    for line in medians:
        assert re.fullmatch(r"\s+\S+\s+[\d.]+ runs/s; CPU per run \(ms\): worker\s+[\d.]+, client\s+[\d.]+", line), line


def test_bench_cpu_measures_the_code_before_a_change_as_a_side_of_its_own(liara_env, tmp_path):
    """``--before``: Liara's worker also runs from another checkout (here this one), in the same rounds."""
    args = ("--rounds", "1", "--runs", "2", "--concurrency", "2", "--phases", "1", "--warm-up", "1")

    done = run_script("scripts/bench_cpu.py", liara_env, tmp_path, *args, "--before", str(REPO_ROOT), timeout=240)

    assert done.returncode == 0, done.stdout + done.stderr
    medians = done.stdout.split("medians of 1 rounds of 2 runs of 1 phases at concurrency 2\n")[1].splitlines()
    assert [line.split()[0] for line in medians] == ["baseline", "baseline_unsandboxed", "liara", "liara_before"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--before", "/tmp"), "/tmp is no checkout of Liara (it has no cognition/liara/worker.py)"),
        (("--server-pid", "999999999"), "no process 999999999 runs on this machine"),
        (("--runs", "0"), "--runs must be at least 1"),
        (("--address", "localhost:1", "--rounds", "1"), "Error: Cannot reach the Temporal server at localhost:1"),
    ],
)
def test_bench_cpu_refuses_what_it_cannot_measure_in_one_sentence(liara_env, tmp_path, args, says):
    done = run_script("scripts/bench_cpu.py", liara_env, tmp_path, *args, timeout=120)

    assert done.returncode != 0
    assert says in done.stderr
    assert "Traceback" not in done.stderr


async def test_bench_records_measures_both_stores_and_writes_its_figures(liara_env, tmp_path, postgres):
    _, url = scratch_database(postgres)
    figures_file = tmp_path / "records.json"
    args = ("--record-store", url, "--phases", "2,3", "--phase-writes", "4", "--workers", "1", "--crises", "2")
    args += ("--crisis-phases", "2", "--concurrency", "2", "--json", str(figures_file))

    done = await asyncio.to_thread(run_script, "scripts/bench_records.py", liara_env, tmp_path, *args, timeout=240)

    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(figures_file.read_text())
    costs = {(cost["store"], cost["phases"]): cost for cost in figures["write_cost"]}
    assert set(costs) == {(store, phases) for store in ("files", "postgresql") for phases in (2, 3)}
    for (_, phases), cost in costs.items():
        assert cost["phase_writes"] == phases * max(1, 4 // phases)
        for figure in ("per_phase_mean_ms", "per_phase_median_ms", "create_ms", "finalize_ms"):
            assert cost[figure] > 0, cost
    rates = {(point["store"], point["workers"]): point["crises_per_second"] for point in figures["throughput"]}
    assert set(rates) == {("files", 1), ("postgresql", 1)}
    assert all(rate > 0 for rate in rates.values()), rates
    assert figures["settings"]["crises"] == 2 and "record_store" not in figures["settings"]
    assert url.split("@")[0] not in figures_file.read_text(), "the figures never carry the database password"
