"""The explicit escalation rules the chat proxy applies besides Claude's own escalate_to_human tool."""

from __future__ import annotations

import re

from django.conf import settings

_HUMAN_REQUEST = re.compile(
    r"""
    \b(?:talk|speak|chat|get\s+through)\s+(?:to|with)\s+
        (?:a\s+|an\s+|the\s+|your\s+)?(?:real\s+|live\s+|actual\s+)?
        (?:human|person|agent|some\s?one|somebody|representative|operator|staff\s+member|member\s+of\s+staff
           |support\s+team|team\s+member)\b
    | \b(?:real|live|actual)\s+(?:human|person|agent)\b
    | \bhuman\s+(?:being|agent|support|help|please)\b
    | \b(?:want|need|get\s+me|give\s+me|connect\s+me\s+(?:to|with)|transfer\s+me\s+to|put\s+me\s+through\s+to)
        \s+(?:to\s+)?(?:a\s+|an\s+)?(?:human|agent|representative|operator)\b
    | ^\W*(?:a\s+)?(?:human|agent|operator|representative|person|real\s+person)(?:\s+please)?\W*$
    """,
    re.IGNORECASE | re.VERBOSE,
)


def customer_asks_for_human(text: str) -> bool:
    """'Can I speak to a person?', 'human please', 'I want an agent' - not 'add a staff member'."""
    return bool(_HUMAN_REQUEST.search(text))


def mentions_support_email(text: str, email: str | None = None) -> bool:
    """The seed widget's rule: a reply that hands out the support email (`email`: a business's own, from its
    profile; else SUPPORT_EMAIL) needs a human to follow up."""
    email = (email or settings.SUPPORT_EMAIL).strip().lower()
    return bool(email) and email in text.lower()
