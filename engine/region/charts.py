"""Server-rendered SVG charts of the area view: horizontal bars, one per area, drawn as inline <svg>
text — no JavaScript, no charting library, no request to anything (the console's CSP allows neither
inline script nor inline style: everything here is SVG presentation attributes). Every label is
escaped, so an area named with markup is shown as text."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

from engine.region.figures import Figures

BAR_HEIGHT = 22
GAP = 8
LABEL_WIDTH = 140
BAR_AREA = 360
VALUE_WIDTH = 80
TOP = 30
COLOURS = {"flagged": "#0b3d6e", "unmet": "#b3541e"}


def _number(v: float) -> str:
    return f"{v:,.1f}" if v != int(v) else f"{int(v):,}"


def bar_chart(
    title: str, bars: Sequence[tuple[str, float | None]], *, unit: str = "", colour: str = "#0b3d6e"
) -> Markup:
    """A horizontal bar chart: one bar per (label, value), scaled to the largest value; a value of
    None (nothing to divide by) is drawn as no bar and written 「—」. The <svg> has a <title> and
    role="img" with the title as its label, for screen readers."""
    width = LABEL_WIDTH + BAR_AREA + VALUE_WIDTH
    height = TOP + len(bars) * (BAR_HEIGHT + GAP) + GAP
    top = max((v for _, v in bars if v is not None), default=0) or 1
    t = escape(title)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" aria-label="{t}" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-size="13">',
        f"<title>{t}</title>",
        f'<text x="0" y="18" font-weight="bold">{t}</text>',
    ]
    for i, (label, value) in enumerate(bars):
        y = TOP + i * (BAR_HEIGHT + GAP)
        w = 0 if value is None else round(BAR_AREA * value / top, 1)
        shown = "—" if value is None else _number(value) + unit
        parts += [
            f'<text x="{LABEL_WIDTH - 6}" y="{y + 16}" text-anchor="end">{escape(str(label))}</text>',
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{w}" height="{BAR_HEIGHT}" fill="{escape(colour)}">'
            f"<title>{escape(str(label))}: {escape(shown)}</title></rect>",
            f'<text x="{LABEL_WIDTH + w + 6}" y="{y + 16}">{escape(shown)}</text>',
        ]
    parts.append("</svg>")
    return Markup("\n".join(parts))


def flagged_chart(f: Figures) -> Markup:
    """Households with any open flag per 1,000 households, by area, in the view's last month."""
    last = f.months[-1].key
    bars = [(a, f.of(a, last).per_1000(f.of(a, last).flagged_any)) for a in f.areas]
    return bar_chart(f"フラグのある世帯（1,000世帯あたり、{last}）", bars, colour=COLOURS["flagged"])


def unmet_chart(f: Figures) -> Markup:
    """Unmet needs (without a place, or declined for capacity or eligibility) by area, over the view."""
    totals = {a: 0 for a in f.areas}
    for u in f.unmet:
        totals[u.area] = totals.get(u.area, 0) + u.total
    first, last = f.months[0].key, f.months[-1].key
    return bar_chart(
        f"満たされないニーズ（{first}〜{last}）", list(totals.items()), unit=" 件", colour=COLOURS["unmet"]
    )
