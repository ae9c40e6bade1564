"""What chaos scenario 4 found: cases and statuses per operation, and failures.

Kept apart from :mod:`.schema_fuzz`, which sends the cases: this is what a
run prints, and what the short form in ``tests/chaos`` asserts on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from schemathesis.core.failures import Failure

__all__ = ["Finding", "FuzzReport", "OperationTally", "record"]


@dataclass
class OperationTally:
    function: str
    label: str  # "GET /products/{product_id}"
    cases: int = 0
    statuses: Counter[int] = field(default_factory=Counter)


@dataclass(frozen=True)
class Finding:
    """One distinct failure, and the first request that showed it."""

    label: str
    role: str
    title: str
    status: int
    request: str
    response: str
    message: str

    def lines(self) -> list[str]:
        lines = [
            f"FAILED {self.label} as {self.role}: {self.title} (status {self.status})",
            f"    request: {self.request}",
            f"    response: {self.response}",
        ]
        return lines + [f"    {line}" for line in self.message.strip().splitlines() if line]


@dataclass
class FuzzReport:
    examples: int
    seed: int
    functions: Sequence[str]
    roles: Sequence[str]
    tallies: dict[str, OperationTally] = field(default_factory=dict)
    findings: dict[tuple[str, str, str, int], Finding] = field(default_factory=dict)
    unsendable: int = 0  # cases no HTTP client sends (a header value that is not latin-1)
    # Calls of the stateful pass, chained by the document's links.
    stateful_steps: int = 0
    # Steps of that pass that took their values from each declared link.
    links: Counter[str] = field(default_factory=Counter)
    # Hypothesis runs of the stateful pass, and those it stopped when a
    # replay met changed data.
    stateful_runs: int = 0
    stateful_cut_short: int = 0
    seconds: float = 0.0

    @property
    def cases(self) -> int:
        return sum(tally.cases for tally in self.tallies.values())

    @property
    def passed(self) -> bool:
        return not self.findings and self.server_errors == 0

    @property
    def server_errors(self) -> int:
        return sum(
            count
            for tally in self.tallies.values()
            for status, count in tally.statuses.items()
            if status >= 500
        )

    def lines(self) -> list[str]:
        lines = [
            f"{self.cases:,} cases for {len(self.tallies)} operations through the local gateway"
            f" in {self.seconds:.0f} s ({self.cases / max(self.seconds, 1e-9):.0f}/s);"
            f" as {', '.join(self.roles)}; {self.examples} generated per pass; seed {self.seed}",
            f"server errors: {self.server_errors}; schema violations: {len(self.findings)};"
            f" unsendable cases skipped: {self.unsendable}",
            f"stateful (link-following) pass: {self.stateful_steps:,} chained calls,"
            f" {self.links.total():,} along {sum(1 for n in self.links.values() if n)}"
            f" of the document's {len(self.links)} links"
            + (
                f" ({self.stateful_cut_short} of {self.stateful_runs} runs cut short:"
                " a replay met the server's changed data)"
                if self.stateful_cut_short
                else ""
            ),
        ]
        lines.extend(f"  {count:>6,}  {link}" for link, count in sorted(self.links.items()))
        for function in self.functions:
            tallies = [tally for tally in self.tallies.values() if tally.function == function]
            lines.append(f"{function}: {sum(tally.cases for tally in tallies):,} cases")
            for tally in sorted(tallies, key=lambda tally: tally.label.split(" ")[::-1]):
                statuses = " ".join(f"{code}:{n}" for code, n in sorted(tally.statuses.items()))
                lines.append(f"  {tally.label:<48} {tally.cases:>6,}  {statuses}")
        for finding in self.findings.values():
            lines.extend(finding.lines())
        return lines


def record(
    report: FuzzReport,
    label: str,
    role: str,
    failures: Iterable[Failure],
    case: schemathesis.Case[Any],
    response: schemathesis.Response,
) -> None:
    request = response.request
    body = request.body
    sent = f"{request.method} {request.path_url}"
    if case.headers:
        sent += f" headers {dict(case.headers)}"  # generated ones: never the token
    if body:
        text = body.decode(errors="replace") if isinstance(body, bytes) else str(body)
        sent += f" body {_clip(text)}"
    content_type = response.headers.get("content-type") or ["-"]
    for failure in failures:
        key = (label, role, failure.title, response.status_code)
        report.findings.setdefault(
            key,
            Finding(
                label=label,
                role=role,
                title=failure.title,
                status=response.status_code,
                request=sent,
                response=f"{content_type[0]} {_clip(response.text)}",
                message=_clip(failure.message, 600),
            ),
        )


def _clip(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
