"""Figures, ratios against a reference, interleaved runs and the machine they ran on.

Every figure is measured side by side with a reference in the same run and
quoted as a ratio, because this machine is shared and absolute times drift:
a neighbour's test run slows subject and reference alike, so their ratio
holds while the absolute figures move. Runs are interleaved (reference,
subject, subject, reference, ...) so a burst of noise lands on both.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "Figure",
    "Report",
    "interleaved",
    "interleaved_async",
    "machine",
    "percentile",
]

Better = Literal["higher", "lower"]


@dataclass
class Figure:
    """One measured value, with the reference it is compared to."""

    benchmark: str
    name: str
    value: float
    unit: str
    reference: str | None = None  # the reference figure's name
    reference_value: float | None = None
    # Of value / reference_value; None without a reference.
    target: float | None = None
    better: Better = "lower"  # how the ratio must relate to the target
    samples: int = 1
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.reference_value is None or self.reference_value == 0:
            return None
        return self.value / self.reference_value

    @property
    def met(self) -> bool | None:
        ratio = self.ratio if self.reference is not None else self.value
        if self.target is None or ratio is None:
            return None
        return ratio >= self.target if self.better == "higher" else ratio <= self.target

    def target_text(self) -> str:
        if self.target is None:
            return ""
        sign = ">=" if self.better == "higher" else "<="
        suffix = "x" if self.reference is not None else f" {self.unit}"
        return f"{sign} {self.target:g}{suffix}"

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = self.ratio
        data["met"] = self.met
        return data


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def table(self) -> str:
        header = ("benchmark", "figure", "value", "reference", "ratio", "target", "met")
        rows = [header]
        for figure in self.figures:
            reference = ""
            if figure.reference is not None and figure.reference_value is not None:
                reference = f"{figure.reference}: {_number(figure.reference_value)}"
            ratio = figure.ratio
            met = figure.met
            rows.append(
                (
                    figure.benchmark,
                    figure.name,
                    f"{_number(figure.value)} {figure.unit}",
                    reference,
                    "" if ratio is None else f"{ratio:.2f}x",
                    figure.target_text(),
                    "" if met is None else ("yes" if met else "NO"),
                )
            )
        widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
        lines = [
            " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            for row in rows
        ]
        lines.insert(1, "-+-".join("-" * width for width in widths))
        return "\n".join(line.rstrip() for line in lines)

    def markdown(self) -> str:
        lines = [
            "| Benchmark | Figure | Value | Reference | Ratio | Target | Met |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for figure in self.figures:
            reference = ""
            if figure.reference is not None and figure.reference_value is not None:
                reference = f"{figure.reference}: {_number(figure.reference_value)}"
            ratio, met = figure.ratio, figure.met
            cells = (
                figure.benchmark,
                figure.name,
                f"{_number(figure.value)} {figure.unit}",
                reference,
                "" if ratio is None else f"{ratio:.2f}x",
                figure.target_text().replace("<=", "≤").replace(">=", "≥"),
                "" if met is None else ("yes" if met else "**no**"),
            )
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def write(self, path: Path, environment: Mapping[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": dict(environment),
            "figures": [figure.as_json() for figure in self.figures],
            "notes": self.notes,
        }
        path.write_text(json.dumps(document, indent=2) + "\n")


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` in 0..1) of ``samples``."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))
    return ordered[rank]


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def interleaved(runs: Mapping[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Each run ``repeats`` times, alternating the order every round (ABBA)."""
    results: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for round_ in range(repeats):
        for name in names if round_ % 2 == 0 else reversed(names):
            results[name].append(runs[name]())
    return results


async def interleaved_async(
    runs: Mapping[str, Callable[[], Awaitable[float]]], repeats: int
) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for round_ in range(repeats):
        for name in names if round_ % 2 == 0 else reversed(names):
            results[name].append(await runs[name]())
    return results


def machine() -> dict[str, Any]:
    """What the figures ran on: they mean little without it."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor()
    try:
        load = list(os.getloadavg())
    except OSError:
        load = []
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": [round(value, 2) for value in load],
    }
