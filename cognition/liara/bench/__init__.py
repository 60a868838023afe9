"""``liara bench``: what a crisis costs next to a bare Temporal workflow, on the same server.

Each side gets its own worker processes on a fresh task queue: Liara's dedicated worker running
crises of P simulated phases (zero duration), and the baseline worker running a plain workflow
of P no-op activities. In each round, and for each side in turn, the benchmark measures the
latency of single runs one after another, then N runs at concurrency C (latency from start to
result, throughput) and the workers' CPU time; then, on the same workers, throughput at each
concurrency and each phase count of the sweeps, and the workers' peak RSS from /proc. It prints
the figures with Liara's as ratios of the baseline's and writes them as JSON (and a PNG plot
when matplotlib is installed).
"""
