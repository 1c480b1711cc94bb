"""Bot checks (issue 14): saved questions with expectations, run by `manage.py bot_check` and the dashboard
against the offline responder or Claude (FakeClaude over HTTP), never touching customer data."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from support import selectors, services
from support.bot import prompt
from support.botcheck import CheckReply, botcheck_evaluate
from support.models import (
    BotCheck,
    BotCheckEscalation,
    BotCheckRun,
    Conversation,
    DailyConversationRollup,
    DailySpend,
    DailyUsageRollup,
    EscalationReason,
    KnowledgeArticle,
    Message,
    TicketEvent,
)
from tests.fakes.fake_claude import FakeClaude, Reply

pytestmark = pytest.mark.django_db

API_KEY = "sk-ant-test-secret-key-0123456789"


@pytest.fixture
def kb(db: None) -> None:
    services.knowledge_article_seed_samples()


@pytest.fixture
def no_key(settings: Any) -> None:
    settings.ANTHROPIC_API_KEY = ""


@pytest.fixture
def claude(settings: Any) -> Iterator[FakeClaude]:
    with FakeClaude() as fake:
        settings.ANTHROPIC_API_KEY = API_KEY
        settings.ANTHROPIC_BASE_URL = fake.base_url
        settings.SUPPORT_CLAUDE_MODEL = "claude-haiku-4-5"
        settings.SUPPORT_CLAUDE_MAX_RETRIES = 0
        yield fake


def pricing_article() -> KnowledgeArticle:
    return KnowledgeArticle.objects.get(title="Pricing and plans")


def no_customer_data_touched() -> None:
    """A run is not a customer: no conversation, turn, event, rollup or budget row appears."""
    assert Conversation.objects.count() == 0
    assert Message.objects.count() == 0
    assert TicketEvent.objects.count() == 0
    assert DailyConversationRollup.objects.count() == 0
    assert DailyUsageRollup.objects.count() == 0
    assert DailySpend.objects.count() == 0
    assert selectors.analytics_summary(days=1)["total_conversations"] == 0


# --- The expectations, one table ---------------------------------------------------------------
ANSWER = CheckReply(text="Rezvo has a FREE plan,\nand paid plans from £10.", cited_article_ids=["7"])
ESCALATED = CheckReply(text="I've passed this on.", escalation_reason=EscalationReason.BOT_TOOL)


@pytest.mark.parametrize(
    ("check", "reply", "failures"),
    [
        (BotCheck(escalation=BotCheckEscalation.MUST), ESCALATED, 0),
        (BotCheck(escalation=BotCheckEscalation.MUST), ANSWER, 1),
        (BotCheck(escalation=BotCheckEscalation.MUST_NOT), ANSWER, 0),
        (BotCheck(escalation=BotCheckEscalation.MUST_NOT), ESCALATED, 1),
        (BotCheck(must_mention="free plan\n\n£10"), ANSWER, 0),
        (BotCheck(must_mention="free   PLAN\nenterprise"), ANSWER, 1),
        (BotCheck(must_not_mention="competitor\n£99"), ANSWER, 0),
        (BotCheck(must_not_mention="paid plans"), ANSWER, 1),
        (BotCheck(must_cite_id=7), ANSWER, 0),
        (BotCheck(must_cite_id=8), ANSWER, 1),
        (BotCheck(must_cite_id=7), ESCALATED, 1),  # no citations at all
        (BotCheck(must_mention="x", escalation=BotCheckEscalation.MUST, must_cite_id=1), ANSWER, 3),
        (BotCheck(), ESCALATED, 0),
    ],
)
def test_each_expectation_that_does_not_hold_is_one_failure(check: BotCheck, reply: CheckReply, failures: int) -> None:
    assert len(botcheck_evaluate(check=check, reply=reply)) == failures


# --- Runs --------------------------------------------------------------------------------------
def test_bot_check_runs_every_active_check_offline_with_progress_and_touches_no_customer_data(
    kb: None, no_key: None
) -> None:
    BotCheck.objects.create(question="How much does it cost?", must_mention="free plan", escalation="must_not")
    BotCheck.objects.create(question="Can my parrot use the API for quantum stuff?", escalation="must")
    BotCheck.objects.create(question="Not asked", active=False)
    out, err = io.StringIO(), io.StringIO()
    call_command("bot_check", stdout=out, stderr=err)
    assert "2/2 passed against Offline responder (knowledge base), cost $0.000000" in out.getvalue()
    assert "checks: 2/2 (100%)" in err.getvalue()
    run = BotCheckRun.objects.get()
    assert (run.checks, run.passed, run.failed, run.status) == (2, 2, 0, "done")
    escalated = run.results.get(question__startswith="Can my parrot")
    assert (escalated.escalated, escalated.escalation_reason) == (True, EscalationReason.NO_ANSWER)
    no_customer_data_touched()


def test_a_failing_check_is_reported_with_why_and_the_command_exits_1(kb: None, no_key: None) -> None:
    BotCheck.objects.create(question="How much does it cost?", must_not_mention="free plan")
    BotCheck.objects.create(question="How do I reset my password?", must_cite=pricing_article())
    out = io.StringIO()
    with pytest.raises(CommandError, match="2 of 2 bot checks failed") as raised:
        call_command("bot_check", "--no-progress", stdout=out)
    assert raised.value.returncode == 1
    assert "FAIL  How much does it cost?" in out.getvalue()
    assert "Mentions “free plan”." in out.getvalue()
    # The offline responder cites the article it answered from: the password one, not pricing.
    password = KnowledgeArticle.objects.get(title__icontains="password")
    assert f"Does not cite article {pricing_article().pk} (cited: {password.pk})." in out.getvalue()


def test_bot_check_refuses_to_run_with_no_checks(no_key: None) -> None:
    with pytest.raises(CommandError, match="No active bot checks"):
        call_command("bot_check")


def test_a_run_against_claude_costs_what_claude_reported_and_never_touches_the_budget(
    kb: None, claude: FakeClaude
) -> None:
    claude.enqueue(Reply(text="Our free plan costs nothing.", input_tokens=1000, output_tokens=200))
    claude.enqueue(Reply(text="Let me get a person.", tool_use={"name": "escalate_to_human", "input": {"reason": "x"}}))
    BotCheck.objects.create(question="How much is it?", must_mention="free plan")
    BotCheck.objects.create(question="I want a refund for last month", escalation="must")
    out = io.StringIO()
    call_command("bot_check", "--no-progress", stdout=out)
    run = BotCheckRun.objects.get()
    assert (run.responder, run.passed, run.failed) == ("claude", 2, 0)
    first = run.results.order_by("pk").first()
    assert first is not None and (first.input_tokens, first.output_tokens, first.model) == (
        1000,
        200,
        "claude-haiku-4-5",
    )
    # claude-haiku-4-5: $1 in and $5 out per million tokens.
    assert first.cost_micros == 1000 * 1 + 200 * 5
    assert run.cost_micros == sum(result.cost_micros for result in run.results.all()) > first.cost_micros
    assert len(claude.requests) == 2
    assert claude.requests[0].history == [{"role": "user", "content": "How much is it?"}]
    no_customer_data_touched()


def test_a_check_against_claude_sends_the_knowledge_base_and_passes_on_the_article_claude_cited(
    kb: None, claude: FakeClaude
) -> None:
    article = KnowledgeArticle.objects.filter(active=True).order_by("pk").first()
    assert article is not None
    claude.enqueue(Reply(text="See our guide.", citations=[{"source": prompt.knowledge_source(article)}]))
    claude.enqueue(Reply(text="See our guide."))  # cites nothing
    BotCheck.objects.create(question="How do I start?", must_cite=article)
    BotCheck.objects.create(question="How do I start again?", must_cite=article)
    with pytest.raises(CommandError):
        call_command("bot_check", "--no-progress", stdout=io.StringIO())
    run = BotCheckRun.objects.get()
    assert (run.passed, run.failed) == (1, 1)
    sent = [b for m in claude.requests[0].body["messages"] for b in m["content"] if isinstance(b, dict)]
    assert prompt.knowledge_source(article) in {b.get("source") for b in sent}


# --- The dashboard page --------------------------------------------------------------------------
@pytest.fixture
def browser(staff_user: Any) -> Client:
    client = Client()
    client.force_login(staff_user)
    return client


def test_the_page_runs_the_checks_and_shows_the_last_runs_pass_fail_cost_and_time(
    browser: Client, kb: None, no_key: None
) -> None:
    BotCheck.objects.create(question="How much does it cost?", must_mention="free plan")
    BotCheck.objects.create(question="How much does it cost?", must_mention="enterprise")
    page = browser.get("/dashboard/bot-checks/")
    assert page.status_code == 200 and b"No run yet." in page.content
    response = browser.post("/dashboard/bot-checks/run", follow=True)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-passed="1"' in html and 'data-failed="1"' in html
    assert "Does not mention “enterprise”." in html
    assert response.context["run"].duration_ms >= 0 and "ms" in html
    assert 'data-testid="run-cost">$0.000000<' in html
    assert response.context["run"].started_by_label == "agent"
    no_customer_data_touched()


def test_the_page_and_its_run_button_are_for_staff_only(customer_user: Any) -> None:
    anonymous = Client()
    assert anonymous.get("/dashboard/bot-checks/").status_code == 302
    assert anonymous.post("/dashboard/bot-checks/run").status_code == 302
    customer = Client()
    customer.force_login(customer_user)
    assert customer.get("/dashboard/bot-checks/").status_code == 403
    assert customer.post("/dashboard/bot-checks/run").status_code == 403
    assert BotCheckRun.objects.count() == 0


def test_the_admin_manages_checks(admin_client: Client, kb: None) -> None:
    response = admin_client.post(
        "/admin/support/botcheck/add/",
        {
            "question": "Do you take deposits?",
            "escalation": "must_not",
            "must_mention": "deposit",
            "must_not_mention": "",
            "must_cite": str(pricing_article().pk),
            "active": "on",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    check = BotCheck.objects.get()
    assert (check.escalation, check.must_cite_id) == ("must_not", pricing_article().pk)
