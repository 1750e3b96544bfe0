"""What `codeassist doctor` found: the checks, the latency figures and hints, and their text form."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from codeassist.client.latency import percentile

__all__ = ["TTFT_P50_TARGET_MS", "TTFT_P99_TARGET_MS", "Check", "Report", "format_report", "summary"]

TTFT_P50_TARGET_MS = 100.0
TTFT_P99_TARGET_MS = 200.0

# The last line names the worst check, so it never contradicts a warning printed above it.
VERDICTS = {
    "ok": "all checks passed",
    "warnings": "works, with warnings: see warn above",
    "failed": "something is broken: see FAIL above",
}


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    warn: bool = False  # works, but worth a look
    skipped: bool = False  # could not be checked (no data): neither a pass nor a problem


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    latency: dict[str, Any] = field(default_factory=dict)
    hints: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def verdict(self) -> str:
        """The worst check: ``failed``, else ``warnings``, else ``ok`` (skipped checks are neither)."""
        if not self.ok:
            return "failed"
        return "warnings" if any(c.warn for c in self.checks) else "ok"

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "verdict": self.verdict,
            "checks": [asdict(c) for c in self.checks],
            "latency": self.latency,
            "hints": self.hints,
        }


def summary(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(percentile(values, 50), 2), "p99_ms": round(percentile(values, 99), 2), "n": len(values)}


def format_report(report: Report) -> str:
    lines: list[str] = []
    for c in report.checks:
        mark = "FAIL" if not c.ok else "warn" if c.warn else "skip" if c.skipped else " ok "
        lines.append(f"[{mark}] {c.name:<8} {c.detail}")
        if c.fix and (not c.ok or c.warn):
            lines.append(f"         fix: {c.fix}")
    lat = report.latency
    if lat:
        lines.append(
            f"\nlatency over {lat['samples']} requests ({lat['via']}, {lat['errors']} errors, "
            f"{lat.get('cached', 0)} answered from cache):"
        )
        for key in ("dns", "connect", "tls", "ttft", "total", "debounce", "context", "daemon_overhead"):
            if key in lat:
                lines.append(f"  {key:<16} p50 {lat[key]['p50_ms']:8.1f} ms   p99 {lat[key]['p99_ms']:8.1f} ms")
        lines.append(f"  targets: TTFT p50 < {TTFT_P50_TARGET_MS:.0f} ms, p99 < {TTFT_P99_TARGET_MS:.0f} ms")
    for hint in report.hints:
        lines.append(f"hint: {hint}")
    lines.append("\n" + VERDICTS[report.verdict])
    return "\n".join(lines)
