"""The benchmark report: ratios, targets, percentiles and the interleaving order."""

from __future__ import annotations

import json
from pathlib import Path

from storefront_dev.bench.measure import Figure, Report, interleaved, machine, percentile


def test_ratio_and_target_of_a_throughput() -> None:
    figure = Figure("1 relay", "relay", 30_000, "events/s", "floor", 20_000, 1.0, "higher")

    assert figure.ratio == 1.5
    assert figure.met is True
    assert figure.target_text() == ">= 1x"


def test_ratio_and_target_of_a_latency() -> None:
    figure = Figure("6 keyset page", "deep", 1.5, "ms", "page 1", 1.0, target=1.2)

    assert figure.met is False
    assert figure.target_text() == "<= 1.2x"


def test_a_target_without_a_reference_applies_to_the_value() -> None:
    figure = Figure("3 end to end", "p99", 40.0, "ms", target=50.0)

    assert figure.ratio is None
    assert figure.met is True
    assert figure.target_text() == "<= 50 ms"


def test_percentiles_are_nearest_rank() -> None:
    samples = [float(n) for n in range(1, 101)]

    assert percentile(samples, 0.5) == 50.0
    assert percentile(samples, 0.99) == 99.0
    assert percentile([7.0], 0.99) == 7.0


def test_interleaving_alternates_the_order_every_round() -> None:
    calls: list[str] = []

    def run(name: str) -> float:
        calls.append(name)
        return 1.0

    samples = interleaved({"a": lambda: run("a"), "b": lambda: run("b")}, repeats=3)

    assert calls == ["a", "b", "b", "a", "a", "b"]
    assert samples == {"a": [1.0] * 3, "b": [1.0] * 3}


def test_results_carry_units_ratios_and_the_machine(tmp_path: Path) -> None:
    report = Report()
    report.add(Figure("6 keyset page", "deep", 1.1, "ms", "page 1", 1.0, target=1.2))
    path = tmp_path / "bench" / "results.json"

    report.write(path, machine() | {"postgresql": "15", "redis": "7"})

    written = json.loads(path.read_text())
    assert written["machine"]["cpu_count"] >= 1
    assert written["machine"]["python"]
    (figure,) = written["figures"]
    assert (figure["unit"], figure["met"]) == ("ms", True)
    assert abs(figure["ratio"] - 1.1) < 1e-9
    assert "| 6 keyset page | deep | 1.10 ms | page 1: 1.00 | 1.10x |" in report.markdown()
    assert "6 keyset page" in report.table()
