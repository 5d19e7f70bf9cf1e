"""Small charts drawn on the server as SVG: intervals, a scatter with intervals, lines.

No JavaScript and nothing fetched: each chart is one `<svg>` element in the page, and
every label passes through `markupsafe.escape`, so a society or member name cannot
inject markup.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from markupsafe import Markup, escape

PALETTE = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3",
           "#8c8c8c", "#ccb974", "#64b5cd"]
FONT = 'font-family="sans-serif" font-size="11"'


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _svg(width: int, height: int, parts: list[str], title: str) -> Markup:
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img"><title>{escape(title)}</title>'
        + "".join(parts) + "</svg>")


def _ticks(low: float, high: float, n: int = 5) -> list[float]:
    if high <= low:
        return [low]
    step = 10 ** math.floor(math.log10((high - low) / n))
    for mult in (1, 2, 5, 10):
        if (high - low) / (step * mult) <= n:
            step *= mult
            break
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step) + 1)]


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def intervals(rows: Sequence[tuple[str, float, float, float]], axis: str,
              low: float | None = None, high: float | None = None,
              percent: bool = False) -> Markup:
    """One row per (label, value, interval low, interval high): a dot and a whisker."""
    left, width, row_h = 170, 620, 24
    height = 40 + row_h * len(rows)
    lo = low if low is not None else min((r[2] for r in rows), default=0.0)
    hi = high if high is not None else max((r[3] for r in rows), default=1.0)
    if hi <= lo:
        hi = lo + 1

    def x(v: float) -> float:
        return left + (v - lo) / (hi - lo) * (width - left - 20)

    parts = []
    for t in _ticks(lo, hi):
        parts.append(f'<line x1="{x(t):.1f}" y1="10" x2="{x(t):.1f}" y2="{height - 28}" '
                     'stroke="#ddd"/>')
        label = f"{t:.0%}" if percent else _fmt(t)
        parts.append(f'<text x="{x(t):.1f}" y="{height - 16}" text-anchor="middle" {FONT}>'
                     f"{label}</text>")
    for i, (name, value, a, b) in enumerate(rows):
        y = 22 + i * row_h
        parts.append(f'<text x="{left - 8}" y="{y + 4}" text-anchor="end" {FONT}>'
                     f"{escape(name)}</text>")
        parts.append(f'<line x1="{x(a):.1f}" y1="{y}" x2="{x(b):.1f}" y2="{y}" '
                     f'stroke="{colour(i)}" stroke-width="2"/>')
        parts.append(f'<circle cx="{x(value):.1f}" cy="{y}" r="4" fill="{colour(i)}"/>')
    parts.append(f'<text x="{(left + width) / 2}" y="{height - 2}" text-anchor="middle" '
                 f"{FONT}>{escape(axis)}</text>")
    return _svg(width, height, parts, axis)


def scatter(points: Sequence[tuple[str, float, float, float, float]], xlabel: str,
            ylabel: str, logx: bool = True) -> Markup:
    """(label, x, y, y low, y high) points with vertical intervals; y from 0 to 1."""
    width, height, left, bottom, top = 640, 340, 60, 40, 15
    xs = [p[1] for p in points if not logx or p[1] > 0] or [1.0]

    def tx(v: float) -> float:
        return math.log10(v) if logx else v

    x_lo, x_hi = tx(min(xs)), tx(max(xs))
    pad = (x_hi - x_lo) * 0.15 or 0.5
    x_lo, x_hi = x_lo - pad, x_hi + pad

    def px(v: float) -> float:
        return left + (tx(v) - x_lo) / (x_hi - x_lo) * (width - left - 20)

    def py(v: float) -> float:
        return top + (1 - v) * (height - top - bottom)

    parts = []
    for t in (0, 0.25, 0.5, 0.75, 1):
        parts.append(f'<line x1="{left}" y1="{py(t):.1f}" x2="{width - 20}" y2="{py(t):.1f}" '
                     f'stroke="#ddd"/><text x="{left - 6}" y="{py(t) + 4:.1f}" '
                     f'text-anchor="end" {FONT}>{t:.0%}</text>')
    ticks = [10 ** e for e in range(math.floor(x_lo), math.ceil(x_hi) + 1)] if logx \
        else _ticks(x_lo, x_hi)
    for t in ticks:
        if x_lo <= tx(t) <= x_hi:
            parts.append(f'<line x1="{px(t):.1f}" y1="{top}" x2="{px(t):.1f}" '
                         f'y2="{height - bottom}" stroke="#eee"/><text x="{px(t):.1f}" '
                         f'y="{height - bottom + 14}" text-anchor="middle" {FONT}>'
                         f"{_fmt(t)}</text>")
    for i, (name, xv, y, a, b) in enumerate(points):
        if logx and xv <= 0:
            continue
        cx = px(xv)
        parts.append(f'<line x1="{cx:.1f}" y1="{py(a):.1f}" x2="{cx:.1f}" y2="{py(b):.1f}" '
                     f'stroke="{colour(i)}" stroke-width="2"/><circle cx="{cx:.1f}" '
                     f'cy="{py(y):.1f}" r="4" fill="{colour(i)}"/><text x="{cx + 6:.1f}" '
                     f'y="{py(y) - 6:.1f}" {FONT}>{escape(name)}</text>')
    parts.append(f'<text x="{(left + width) / 2}" y="{height - 8}" text-anchor="middle" '
                 f"{FONT}>{escape(xlabel)}</text>")
    parts.append(f'<text x="12" y="{(height - bottom) / 2}" {FONT} '
                 f'transform="rotate(-90 12 {(height - bottom) / 2})" text-anchor="middle">'
                 f"{escape(ylabel)}</text>")
    return _svg(width, height, parts, f"{ylabel} against {xlabel}")


def lines(series: dict[str, Sequence[tuple[float, float]]], xlabel: str, ylabel: str,
          marks: Sequence[tuple[float, str]] = (), dashed: Sequence[str] = ()) -> Markup:
    """One line per series of (x, y) points; `marks` are labelled vertical rules (events)."""
    width, height, left, bottom, top, legend = 760, 360, 60, 40, 15, 130
    pts = [p for s in series.values() for p in s]
    x_lo, x_hi = (min(p[0] for p in pts), max(p[0] for p in pts)) if pts else (0.0, 1.0)
    y_lo, y_hi = (min(0.0, *(p[1] for p in pts)), max(p[1] for p in pts)) if pts else (0, 1)
    x_hi, y_hi = max(x_hi, x_lo + 1), max(y_hi, y_lo + 1)

    def px(v: float) -> float:
        return left + (v - x_lo) / (x_hi - x_lo) * (width - left - legend)

    def py(v: float) -> float:
        return top + (y_hi - v) / (y_hi - y_lo) * (height - top - bottom)

    parts = []
    for t in _ticks(y_lo, y_hi):
        parts.append(f'<line x1="{left}" y1="{py(t):.1f}" x2="{width - legend}" '
                     f'y2="{py(t):.1f}" stroke="#ddd"/><text x="{left - 6}" '
                     f'y="{py(t) + 4:.1f}" text-anchor="end" {FONT}>{_fmt(t)}</text>')
    for t in _ticks(x_lo, x_hi):
        parts.append(f'<text x="{px(t):.1f}" y="{height - bottom + 14}" text-anchor="middle" '
                     f"{FONT}>{_fmt(t)}</text>")
    for xv, label in marks:
        parts.append(f'<line x1="{px(xv):.1f}" y1="{top}" x2="{px(xv):.1f}" '
                     f'y2="{height - bottom}" stroke="#999" stroke-dasharray="2 3">'
                     f"<title>{escape(label)}</title></line>")
    for i, (name, points) in enumerate(series.items()):
        if not points:
            continue
        path = " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in points)
        dash = ' stroke-dasharray="6 3"' if name in dashed else ""
        stroke = "#000" if name in dashed else colour(i)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{stroke}" '
                     f'stroke-width="1.5"{dash}><title>{escape(name)}</title></polyline>')
        ly = top + 10 + i * 15
        parts.append(f'<line x1="{width - legend + 10}" y1="{ly}" x2="{width - legend + 28}" '
                     f'y2="{ly}" stroke="{stroke}" stroke-width="2"{dash}/><text '
                     f'x="{width - legend + 32}" y="{ly + 4}" {FONT}>{escape(name)}</text>')
    parts.append(f'<text x="{(left + width - legend) / 2}" y="{height - 8}" '
                 f'text-anchor="middle" {FONT}>{escape(xlabel)}</text>')
    parts.append(f'<text x="12" y="{(height - bottom) / 2}" {FONT} '
                 f'transform="rotate(-90 12 {(height - bottom) / 2})" text-anchor="middle">'
                 f"{escape(ylabel)}</text>")
    return _svg(width, height, parts, f"{ylabel} against {xlabel}")
