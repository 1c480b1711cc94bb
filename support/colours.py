"""Readable colours from the one brand colour (SUPPORT_WIDGET_PRIMARY_COLOUR), by WCAG 2 contrast.

widget.js computes the same for the widget (a site's data-colour attribute may override the server's).
"""

from __future__ import annotations

RGB = tuple[float, float, float]
WHITE: RGB = (255.0, 255.0, 255.0)
BLACK: RGB = (0.0, 0.0, 0.0)
#: WCAG AA for normal text; the small margin keeps rounding to whole hex digits on the right side.
AA_TEXT = 4.5


def rgb(hex_colour: str) -> RGB:
    digits = hex_colour.lstrip("#")
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return (float(int(digits[0:2], 16)), float(int(digits[2:4], 16)), float(int(digits[4:6], 16)))


def hex_of(colour: RGB) -> str:
    return "#" + "".join(f"{round(c):02x}" for c in colour)


def mix(a: RGB, b: RGB, t: float) -> RGB:
    """`t` of `b` into `a`, per sRGB channel (as CSS color-mix(in srgb, ...) does)."""
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t)


def luminance(colour: RGB) -> float:
    def linear(channel: float) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in colour)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: RGB, b: RGB) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def on_colour(hex_colour: str) -> str:
    """White or black for text on the colour, whichever contrasts more: one always reaches 4.58:1."""
    base = rgb(hex_colour)
    return "#ffffff" if contrast(base, WHITE) >= contrast(base, BLACK) else "#000000"


def text_colour(hex_colour: str, *, surfaces: tuple[RGB, ...] = (WHITE,)) -> str:
    """The colour darkened just enough to read as text (4.5:1 and a margin) on every one of `surfaces`."""
    base = rgb(hex_colour)
    for step in range(21):
        candidate = mix(base, BLACK, step / 20)
        if all(contrast(rgb(hex_of(candidate)), surface) >= AA_TEXT + 0.1 for surface in surfaces):
            return hex_of(candidate)
    return "#000000"


def brand_palette(hex_colour: str) -> dict[str, str]:
    """The dashboard's accent variables: the brand fill, text on it, the brand as text, and a pale tint."""
    soft = mix(WHITE, rgb(hex_colour), 0.1)
    return {
        "brand": hex_colour,
        "brand-ink": on_colour(hex_colour),
        # Links and chips sit on white, the page's grey and the tint itself.
        "brand-text": text_colour(hex_colour, surfaces=(WHITE, rgb("#f5f6f8"), soft)),
        "brand-soft": hex_of(soft),
    }
