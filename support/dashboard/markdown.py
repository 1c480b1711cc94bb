"""The bot's replies as staff read them: the widget's small, safe markdown subset, rendered on the server.

markdown-it-py with raw HTML off escapes everything first; only paragraphs, line breaks, **bold**,
*italic*, lists, `code` and links are enabled, bare URLs are linked (linkify), and a link is kept only
when it points to http(s) or mailto, with rel="noopener nofollow".
"""

from __future__ import annotations

from typing import Any

from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

_SAFE_SCHEMES = ("http://", "https://", "mailto:")


class _WebLinksOnly(MarkdownIt):
    def validateLink(self, url: str) -> bool:
        # Only web and mail links: javascript:, data:, file: and relative links stay plain text.
        return url.strip().lower().startswith(_SAFE_SCHEMES)


def _build() -> MarkdownIt:
    md = _WebLinksOnly("zero", {"html": False, "linkify": True, "breaks": True, "typographer": False})
    md.enable(["paragraph", "newline", "emphasis", "list", "backticks", "link", "linkify", "escape", "entity"])

    def link_open(renderer: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        tokens[idx].attrSet("rel", "noopener nofollow")
        return renderer.renderToken(tokens, idx, options, env)

    md.add_render_rule("link_open", link_open)
    return md


_MD = _build()


def render(text: str) -> SafeString:
    """Safe HTML for one message: the renderer escapes all input, so the result can be marked safe."""
    return mark_safe(_MD.render(text or "").strip())
