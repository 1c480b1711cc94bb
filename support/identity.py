"""Verified identity: the embedding site's server vouches for its signed-in user.

The site computes ``user_hash = HMAC-SHA256(SUPPORT_IDENTITY_SECRET, user_id)`` (hex) on its server and
renders it into the widget's script tag with the user's id, business, audience, email and name (the
pattern Intercom and Chatwoot use). The secret never reaches the browser, so a page can only present a
hash its server made. A valid hash marks the conversation ``identity_verified``; without one the values
are claims anyone could type, stored for staff but marked unverified and never used to unlock anything.

What the hash covers is the user id: the business, audience, email and name travel beside it from the
same server-rendered tag. Only a verified conversation's business and audience scope the knowledge base
(support.bot.scope), so an unverified page cannot name another venue to read its private articles.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from django.conf import settings


class IdentityRefused(ValueError):
    """The conversation must be verified and is not; `field` names the request field at fault (the API's 400)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Identity:
    """Who the embedding page says the customer is, and whether its server signed it."""

    user_id: str = ""
    business_id: str = ""
    audience: str = ""
    email: str = ""
    name: str = ""
    verified: bool = False

    @property
    def claims_anything(self) -> bool:
        return any((self.user_id, self.business_id, self.audience, self.email, self.name))


def user_hash(user_id: str, *, secret: str | None = None) -> str:
    """The hex HMAC-SHA256 of `user_id`: what the embedding site's server computes (tests and docs use it too)."""
    key = settings.SUPPORT_IDENTITY_SECRET if secret is None else secret
    return hmac.new(key.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def hash_valid(*, user_id: str, given: str) -> bool:
    """Whether `given` is the hash of `user_id`, compared in constant time. Never valid without a secret or id."""
    if not settings.SUPPORT_IDENTITY_SECRET or not user_id or not given:
        return False
    return hmac.compare_digest(user_hash(user_id).encode(), given.strip().lower().encode())


def identity_resolve(
    *,
    user_id: str = "",
    business_id: str = "",
    audience: str = "",
    email: str = "",
    name: str = "",
    given_hash: str = "",
) -> Identity:
    """The identity to store: verified when the hash matches; IdentityRefused when SUPPORT_REQUIRE_IDENTITY
    demands a valid hash for a page that names anyone (an anonymous visitor may still chat)."""
    verified = hash_valid(user_id=user_id, given=given_hash)
    identity = Identity(
        user_id=user_id, business_id=business_id, audience=audience, email=email, name=name, verified=verified
    )
    if verified or not settings.SUPPORT_REQUIRE_IDENTITY or not identity.claims_anything:
        return identity
    if not user_id:
        raise IdentityRefused("user_id", "Identity must be verified: send user_id with its user_hash.")
    if not given_hash:
        raise IdentityRefused("user_hash", "Identity must be verified: user_hash is required with user_id.")
    raise IdentityRefused("user_hash", "user_hash does not match user_id.")
