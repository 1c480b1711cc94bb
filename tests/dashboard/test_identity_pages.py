"""The ticket page shows whether the customer's identity is verified and, for a verified customer, their
earlier conversations; the admin edits business profiles and article scopes (issue 15)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from support import services
from support.identity import Identity
from support.models import BusinessProfile, Conversation, KnowledgeArticle
from tests.fakes.desk import turn_pair
from tests.fakes.venues import limit_to

pytestmark = pytest.mark.django_db


@pytest.fixture
def desk(staff_user: Any) -> Client:
    client = Client()
    client.force_login(staff_user)
    return client


def _started(question: str, **identity: Any) -> Conversation:
    conversation, _ = services.conversation_create(identity=Identity(**identity))
    services.message_log(conversation=conversation, turns=turn_pair(question, "Answer."))
    return conversation


def _ticket(desk: Client, conversation: Conversation) -> str:
    response = desk.get(f"/dashboard/conversations/{conversation.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def test_a_verified_customer_is_badged_and_their_earlier_conversations_listed(desk: Client) -> None:
    first = _started("Table for two on Friday?", user_id="u1", business_id="b7", verified=True)
    _started("Someone typed u1 into a page", user_id="u1", business_id="b7")
    _started("Another customer", user_id="u2", verified=True)
    current = _started("Can I move my booking?", user_id="u1", business_id="b7", name="Ann", verified=True)
    html = _ticket(desk, current)
    assert (
        'class="verified"' in html and "unverified" not in html.split('id="customer-heading"')[1].split("</section>")[0]
    )
    earlier = html.split("Earlier conversations")[1].split("</ol>")[0]
    assert "Table for two on Friday?" in earlier
    assert f"/dashboard/conversations/{first.pk}/" in earlier
    assert "Someone typed u1" not in earlier and "Another customer" not in earlier
    assert "Can I move my booking?" not in earlier  # not itself


def test_an_unverified_customers_claims_are_each_marked_and_list_no_history(desk: Client) -> None:
    _started("Verified earlier", user_id="u1", verified=True)
    current = _started("Claiming to be u1", user_id="u1", business_id="b7", name="Mallory", audience="owner")
    customer = _ticket(desk, current).split('id="customer-heading"')[1].split("</section>")[0]
    assert 'class="verified"' not in customer
    assert customer.count(">unverified</span>") == 4  # name, user id, business id, audience
    assert "Earlier conversations" not in customer and "Verified earlier" not in customer


def test_the_admin_edits_a_business_profile_and_refuses_bad_hours(admin_client_for: Client) -> None:
    url = "/admin/support/businessprofile/add/"
    values = {"business_id": "b7", "display_name": "Sette", "greeting": "Ciao", "support_email": "s@sette.example"}
    bad = admin_client_for.post(url, {**values, "business_hours": "Mars/Olympus; Mon 09:00-17:00"})
    assert bad.status_code == 200 and "unknown time zone" in bad.content.decode()
    good = admin_client_for.post(url, {**values, "business_hours": "Europe/Rome; Mon-Fri 09:00-17:00"})
    assert good.status_code == 302, good.content.decode()[:2000]
    assert BusinessProfile.objects.get(business_id="b7").business_hours == "Europe/Rome; Mon-Fri 09:00-17:00"


def test_the_admin_scopes_an_article_to_businesses_and_an_audience(admin_client_for: Client) -> None:
    response = admin_client_for.post(
        "/admin/support/knowledgearticle/add/",
        {
            "title": "Parking",
            "keywords": "parking",
            "answer": "Behind.",
            "active": "on",
            "order": "0",
            "business_ids": "b7, b9",
            "audience": "diner",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    article = KnowledgeArticle.objects.get(title="Parking")
    assert (article.business_ids, article.audience) == ("b7, b9", "diner")


def test_the_admin_marks_the_ids_verified_only_when_signed(admin_client_for: Client) -> None:
    verified = _started("Signed", user_id="u1", business_id="b7", verified=True)
    claimed = _started("Typed", user_id="u1", business_id="b7")
    signed_page = admin_client_for.get(f"/admin/support/conversation/{verified.pk}/change/").content.decode()
    typed_page = admin_client_for.get(f"/admin/support/conversation/{claimed.pk}/change/").content.decode()
    assert signed_page.count("(verified: signed by the site&#x27;s server)") == 2
    assert "(unverified" not in signed_page
    assert typed_page.count("(unverified: sent by the widget&#x27;s page)") == 2


def test_a_limited_staff_user_sees_only_their_businesses_in_the_customers_history(
    desk: Client, staff_user: Any
) -> None:
    _started("Booked at b7 before", user_id="u1", business_id="b7", verified=True)
    _started("Booked at b8 before", user_id="u1", business_id="b8", verified=True)
    current = _started("Now at b7", user_id="u1", business_id="b7", verified=True)
    limit_to(staff_user, "b7")
    earlier = _ticket(desk, current).split("Earlier conversations")[1].split("</ol>")[0]
    assert "Booked at b7 before" in earlier
    assert "Booked at b8 before" not in earlier
