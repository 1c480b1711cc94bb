"""Bar charts drawn on the server as plain SVG geometry: no JavaScript, every bar a link."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    url: str
    title: str
    value: float


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class Chart:
    title: str
    width: int
    height: int
    plot_left: int
    plot_bottom: int
    bars: list[Bar]
    y_ticks: list[Tick]
    x_ticks: list[Tick]

    @property
    def has_data(self) -> bool:
        return any(bar.value for bar in self.bars)


@dataclass(frozen=True)
class Point:
    label: str  # shown under the axis (a date)
    value: float
    url: str
    title: str  # tooltip: what the bar counts


def _nice_max(value: float) -> float:
    """A round axis maximum at or above `value` (1, 2, 2.5, 5 x 10^n)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude  # pragma: no cover


#: Widths of the 11px axis labels' characters (CSS px), a little generous, for sizing the margins.
_NARROW = frozenset(".,:;' ")
_CHAR_PX, _NARROW_PX = 7.0, 3.5


def _text_width(text: str) -> float:
    return sum(_NARROW_PX if ch in _NARROW else _CHAR_PX for ch in text)


def _inside(centre: float, text_width: float, width: int) -> float:
    """A centred label's x, moved in so the whole label stays within 0..width."""
    half = text_width / 2 + 1
    return round(min(max(centre, half), width - half), 2)


def bar_chart(
    *,
    title: str,
    points: Sequence[Point],
    value_label: Callable[[float], str],
    width: int = 400,
    height: int = 210,
) -> Chart:
    top_value = _nice_max(max((p.value for p in points), default=0))
    y_labels = [(f, value_label(top_value * f)) for f in (0, 0.5, 1)]
    # The plot starts right of the widest y label ("$0.0025"), so no label runs off the viewport.
    left = max(28, math.ceil(max(_text_width(label) for _, label in y_labels)) + 10)
    right, top, bottom = 4, 10, 24
    plot_w, plot_h = width - left - right, height - top - bottom
    slot = plot_w / max(len(points), 1)
    gap = min(slot * 0.2, 6)
    bars = []
    for i, point in enumerate(points):
        bar_h = plot_h * point.value / top_value if point.value > 0 else 0.0
        # A zero day keeps a hairline so it is still visible and clickable.
        shown_h = max(bar_h, 1.5)
        bars.append(
            Bar(
                x=round(left + i * slot + gap / 2, 2),
                y=round(top + plot_h - shown_h, 2),
                width=round(max(slot - gap, 1), 2),
                height=round(shown_h, 2),
                url=point.url,
                title=point.title,
                value=point.value,
            )
        )
    y_ticks = [Tick(round(top + plot_h - plot_h * f, 2), label) for f, label in y_labels]
    step = max(1, -(-len(points) // 5))  # at most five date labels
    x_ticks = [
        Tick(_inside(left + i * slot + slot / 2, _text_width(points[i].label), width), points[i].label)
        for i in range(0, len(points), step)
    ]
    return Chart(
        title=title,
        width=width,
        height=height,
        plot_left=left,
        plot_bottom=top + plot_h,
        bars=bars,
        y_ticks=y_ticks,
        x_ticks=x_ticks,
    )
