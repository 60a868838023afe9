"""``liara bench`` measures both sides on the dev server and reports ratios it computed."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.integration


def test_bench_measures_crises_and_the_baseline_and_writes_its_figures(liara_env, tmp_path):
    out_dir = tmp_path / "results"
    completed = run_cli(
        liara_env,
        tmp_path,
        "bench",
        "--crises", "6", "--phases", "2", "--concurrency", "3", "--single-runs", "2",
        "--output-dir", str(out_dir), "--json",
        timeout=240,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    results = json.loads(completed.stdout)
    assert results["plan"] == {"crises": 6, "phases": 2, "concurrency": 3, "workers": 1, "single_runs": 2}
    for side in ("liara", "baseline"):
        figures = results[side]
        assert len(figures["load_latencies_ms"]) == 6
        assert figures["runs_per_second"] > 0
        assert figures["phases_per_second"] == pytest.approx(figures["runs_per_second"] * 2, rel=0.01)
        assert figures["single_latency_ms"]["p50"] <= figures["single_latency_ms"]["p99"]
        assert figures["worker_peak_rss_mib"] > 0
    ratio = results["liara"]["runs_per_second"] / results["baseline"]["runs_per_second"]
    assert results["ratios"]["throughput"] == pytest.approx(ratio, abs=0.001)
    written = list(out_dir.glob("bench-*.json"))
    assert len(written) == 1 and json.loads(written[0].read_text()) == results
