"""Small inline SVG charts rendered on the server (no script, no CDN): bars and lines over labelled points.

Each chart carries its numbers too: a ``<title>`` per point (the browser's tooltip) and ``data-values`` on the
``<svg>`` (for tests and scrapers), so the picture is never the only place a figure is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

__all__ = ["bar_chart", "line_chart", "nice_max"]

W, H = 560, 200
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 24, 28
PALETTE = ("#2563eb", "#d97706", "#059669", "#7c3aed", "#dc2626")


def nice_max(v: float) -> float:
    """A round axis top at or above ``v`` (1, 2, 2.5, 5 × 10^k)."""
    if v <= 0 or not math.isfinite(v):
        return 1.0
    exp = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if m * exp >= v:
            return m * exp
    return 10 * exp


def _fmt(v: float) -> str:
    if v >= 1000:
        return f"{v:,.0f}"
    if v == int(v):
        return f"{int(v)}"
    return f"{v:.2g}" if v < 1 else f"{v:.1f}"


def _raw(v: float | None) -> str:
    return "" if v is None else f"{round(v, 3):g}"


def _frame(top: float, labels: Sequence[str], unit: str) -> list[str]:
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    out = []
    for i in range(5):
        y = TOP + ph - ph * i / 4
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}" class="grid"/>')
        out.append(f'<text x="{LEFT - 4}" y="{y + 4:.1f}" class="ax" text-anchor="end">{_fmt(top * i / 4)}</text>')
    if unit:
        out.append(f'<text x="4" y="{TOP - 12}" class="ax">{escape(unit)}</text>')
    n = len(labels)
    step = max(1, math.ceil(n / 10))
    for i, lab in enumerate(labels):
        if i % step == 0 or i == n - 1:
            x = LEFT + pw * (i + 0.5) / max(1, n)
            out.append(f'<text x="{x:.1f}" y="{H - 8}" class="ax" text-anchor="middle">{escape(lab)}</text>')
    return out


def _open(chart_id: str, title: str, values: str) -> str:
    return (
        f'<svg id="{escape(chart_id)}" class="chart" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" '
        f'aria-label="{escape(title)}" data-values="{escape(values)}" xmlns="http://www.w3.org/2000/svg">'
    )


def bar_chart(chart_id: str, title: str, labels: Sequence[str], values: Sequence[float | None], unit: str = "") -> str:
    """One bar per label (None: no bar)."""
    top = nice_max(max((v for v in values if v is not None), default=0.0))
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    n = max(1, len(labels))
    bw = pw / n * 0.7
    out = [_open(chart_id, title, ",".join(_raw(v) for v in values)), *_frame(top, labels, unit)]
    for i, (lab, v) in enumerate(zip(labels, values, strict=True)):
        if v is None:
            continue
        h = ph * v / top
        x = LEFT + pw * (i + 0.5) / n - bw / 2
        out.append(
            f'<rect x="{x:.1f}" y="{TOP + ph - h:.1f}" width="{bw:.1f}" height="{h:.1f}" fill="{PALETTE[0]}">'
            f"<title>{escape(lab)}: {_fmt(v)}{escape(unit and ' ' + unit)}</title></rect>"
        )
    out.append("</svg>")
    return "".join(out)


def line_chart(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    unit: str = "",
    targets: Sequence[tuple[str, float]] = (),
) -> str:
    """Lines over the labels (a None breaks the line), with dashed target lines and a legend."""
    highest = max((v for _, vs in series for v in vs if v is not None), default=0.0)
    top = nice_max(max([highest, *(t * 1.1 for _, t in targets)]))
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    n = max(1, len(labels))
    values = ";".join(f"{name}=" + ",".join(_raw(v) for v in vs) for name, vs in series)
    out = [_open(chart_id, title, values), *_frame(top, labels, unit)]
    for name, t in targets:
        y = TOP + ph - ph * min(t, top) / top
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}" class="target"/>')
        out.append(f'<text x="{W - RIGHT - 2}" y="{y - 3:.1f}" class="tlabel" text-anchor="end">{escape(name)}</text>')
    for k, (name, vs) in enumerate(series):
        color = PALETTE[k % len(PALETTE)]
        runs: list[list[str]] = [[]]
        for i, v in enumerate(vs):
            if v is None:
                runs.append([])
                continue
            x, y = LEFT + pw * (i + 0.5) / n, TOP + ph - ph * min(v, top) / top
            runs[-1].append(f"{x:.1f},{y:.1f}")
            out.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}">'
                f"<title>{escape(name)} {escape(labels[i])}: {_fmt(v)}{escape(unit and ' ' + unit)}</title></circle>"
            )
        for run in runs:
            if len(run) > 1:
                out.append(f'<polyline points="{" ".join(run)}" fill="none" stroke="{color}" stroke-width="2"/>')
        lx = LEFT + 8 + 110 * k
        out.append(f'<rect x="{lx}" y="3" width="10" height="10" fill="{color}"/>')
        out.append(f'<text x="{lx + 14}" y="12" class="ax">{escape(name)}</text>')
    out.append("</svg>")
    return "".join(out)
