"""The report page's charts: plain server-side SVG with a title and a description; the
numbers are in a table beside each (booking.services.reports gives the figures only).

An SVG scales with the width it is given (CSS: width 100%), its text too: the drawing is
400 units wide so that on a phone (about 360 px) the labels stay near their 14-unit size,
and lists.css caps the width on a desktop so that they do not grow past about 17 px."""

from __future__ import annotations

from flask_babel import gettext as _
from markupsafe import Markup, escape

from booking.labels import prefecture_name
from booking.services.reports import Report


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def svg_columns(values: list[tuple[str, float]], *, title: str, max_value: float | None = None,
                label_every: int = 1, suffix: str = "") -> Markup:
    """A column chart (e.g. occupancy per day). Each column has a <title> for pointer users;
    screen readers get the table next to the chart (the SVG is role=img with a label)."""
    width, height, left, bottom, top = 400, 220, 44, 34, 12
    n = max(len(values), 1)
    top_value = max_value or max((v for _label, v in values), default=0) or 1
    step = (width - left - 10) / n
    bar = max(step * 0.7, 1)
    plot_h = height - bottom - top
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 5}" y2="{top + plot_h}" '
        'stroke="#4a5560" stroke-width="1"/>',
    ]
    for frac in (0.5, 1.0):
        y = top + plot_h * (1 - frac)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 5}" y2="{y:.1f}" '
                     'stroke="#c9d2da" stroke-width="1" stroke-dasharray="4 3"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="14" '
                     f'fill="#1b1f24">{_fmt(top_value * frac)}{escape(suffix)}</text>')
    for i, (label, value) in enumerate(values):
        h = plot_h * min(value / top_value, 1) if top_value else 0
        x = left + i * step + (step - bar) / 2
        parts.append(
            f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
            f'fill="#0b5cab"><title>{escape(label)}: {_fmt(value)}{escape(suffix)}</title></rect>'
        )
        if i % label_every == 0:
            parts.append(f'<text x="{x + bar / 2:.1f}" y="{height - bottom + 18}" font-size="14" '
                         f'text-anchor="middle" fill="#1b1f24">{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def svg_bars(values: list[tuple[str, float]], *, title: str) -> Markup:
    """A horizontal bar chart (e.g. companies by prefecture), labels on the left."""
    row_h, left, width = 30, 100, 400
    height = max(len(values), 1) * row_h + 10
    top_value = max((v for _label, v in values), default=0) or 1
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, (label, value) in enumerate(values):
        y = 5 + i * row_h
        w = (width - left - 60) * value / top_value
        parts.append(f'<text x="{left - 6}" y="{y + 17}" text-anchor="end" font-size="14" '
                     f'fill="#1b1f24">{escape(label)}</text>')
        parts.append(f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}" '
                     f'fill="#1d6b35"><title>{escape(label)}: {_fmt(value)}</title></rect>')
        parts.append(f'<text x="{left + w + 6:.1f}" y="{y + 17}" font-size="14" '
                     f'fill="#1b1f24">{_fmt(value)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def occupancy_chart(report: Report) -> Markup:
    values = [(f"{d.day.month}/{d.day.day}", d.rate) for d in report.days]
    return svg_columns(values, title=_("日別の稼働率(%%)") % {}, max_value=100,
                       label_every=len(values) // 8 + 1, suffix="%")


def prefecture_chart(report: Report, locale: str = "ja") -> Markup:
    return svg_bars([(prefecture_name(code, locale, unknown=_("不明")), n)
                     for code, n in report.by_prefecture],
                    title=_("企業の所在都道府県別の企業数"))
