"""The staff pages in headless Chromium (Debian's `chromium`, driven by Playwright).

`make browser-deps` installs chromium (`make test` runs it first). With REZVO_SCREENSHOTS set to a
folder (`make screenshots` sets docs/screenshots) they also save the README's screenshots.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.models import Conversation, Status
from tests.fakes.desk import build_showcase

PASSWORD = "correct-horse-battery"

pytestmark = [
    pytest.mark.browser,
]


@pytest.fixture(scope="module")
def chromium(browser: Any) -> Any:
    """The shared headless browser from tests/conftest.py."""
    return browser


@pytest.fixture
def page(chromium: Any, live_server: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1280, "height": 860}, base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def showcase(transactional_db: None, staff_user: Any, other_staff: Any) -> list[Conversation]:
    return build_showcase(staff=staff_user, other=other_staff)


def shoot(page: Any, name: str) -> None:
    folder = os.environ.get("REZVO_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def log_in(page: Any) -> None:
    page.goto("/dashboard/")
    assert "/accounts/login/" in page.url
    page.fill("input[name=username]", "agent")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard/")


def test_staff_log_in_open_a_ticket_close_it_and_it_leaves_the_queue(page: Any, showcase: Any) -> None:
    log_in(page)
    waiting = Conversation.objects.filter(status__in=[Status.NEEDS_REVIEW, Status.OPEN, Status.IN_PROGRESS])
    assert page.locator("table.tickets tbody tr").count() == min(waiting.count(), 50)
    shoot(page, "queue")

    target = waiting.order_by("-created_at", "-pk").first()
    page.click(f"a[href='/dashboard/conversations/{target.pk}/']")
    page.wait_for_url(f"**/dashboard/conversations/{target.pk}/")
    assert page.locator(".turn").count() == target.message_count
    shoot(page, "ticket")

    page.click("button[name=status][value=closed]")
    page.wait_for_selector(".flash")
    assert page.inner_text("[data-testid=status]") == "Closed"
    assert Conversation.objects.get(pk=target.pk).status == Status.CLOSED

    page.click("nav.nav >> text=Queue")
    page.wait_for_url("**/dashboard/")
    assert page.locator(f"a[href='/dashboard/conversations/{target.pk}/']").count() == 0


def test_the_analytics_page_draws_its_charts_with_data(page: Any, showcase: Any) -> None:
    log_in(page)
    page.goto("/dashboard/analytics/?days=30")
    charts = page.locator("svg.bars")
    assert charts.count() == 3
    for index in range(3):
        heights = (
            charts.nth(index)
            .locator("rect.bar")
            .evaluate_all("rects => rects.map(r => r.getBoundingClientRect().height)")
        )
        assert heights and max(heights) > 5, f"chart {index} has no visible bars"
    shoot(page, "analytics")

    # A bar is a link to the tickets it counts.
    first_bar = charts.nth(0).locator("a").last
    expected = int(float(first_bar.locator("rect").get_attribute("data-value")))
    first_bar.click()
    page.wait_for_url("**/dashboard/conversations/?**")
    assert int(page.get_attribute("[data-conversations]", "data-conversations")) == expected


@pytest.mark.parametrize("path", ["/dashboard/", "/dashboard/analytics/", "/dashboard/conversations/", "ticket"])
def test_pages_fit_a_phone_screen(chromium: Any, live_server: Any, showcase: Any, path: str) -> None:
    if path == "ticket":
        path = f"/dashboard/conversations/{next(c for c in showcase if c.escalated).pk}/"
    context = chromium.new_context(viewport={"width": 390, "height": 844}, base_url=live_server.url, is_mobile=True)
    phone = context.new_page()
    log_in(phone)
    phone.goto(path)
    # Against the device width: a mobile browser widens its layout viewport to fit wide content.
    overflow = phone.evaluate("document.documentElement.scrollWidth") - 390
    context.close()
    assert overflow <= 0, f"{path} scrolls sideways on a phone by {overflow}px"
