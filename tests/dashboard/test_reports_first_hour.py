"""Analytics and the manage.py reports as a new user reads them (issue 10): names, shapes, progress, errors."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from support import rollups, selectors, services
from support.models import Conversation, DailyQuestionRollup, Role
from tests.fakes.desk import build_desk, turn_pair

pytestmark = pytest.mark.django_db


def run(*args: str, stderr: Any = None) -> tuple[str, str]:
    out, err = io.StringIO(), stderr or io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def answered_offline(question: str = "What are your opening hours?") -> Conversation:
    """A conversation the knowledge base answered: both turns stored unpriced, with no model."""
    conversation, _ = services.conversation_create()
    services.message_log(
        conversation=conversation,
        turns=[
            services.Turn(role=Role.USER, content=question, priced=False),
            services.Turn(role=Role.ASSISTANT, content="We open at 9.", priced=False),
        ],
    )
    return conversation


def answered_by_claude(question: str = "How much is it?") -> Conversation:
    """A chat-path conversation: the customer's turn unpriced, the reply on Claude."""
    conversation, _ = services.conversation_create()
    services.message_log(
        conversation=conversation,
        turns=[
            services.Turn(role=Role.USER, content=question, priced=False),
            services.Turn(role=Role.ASSISTANT, content="£29", model="claude-haiku-4-5", output_tokens=30),
        ],
    )
    return conversation


# --- "By model" names the knowledge base ---------------------------------------------------------
def test_by_model_names_the_knowledge_base_row_in_analytics_the_dashboard_and_cost_report(
    staff_user: Any,
) -> None:
    offline = answered_offline()
    answered_offline("Do you have parking?")
    answered_by_claude()

    by_model = {row["model"]: row for row in selectors.analytics_summary(days=1)["by_model"]}
    assert set(by_model) == {"claude-haiku-4-5", rollups.KNOWLEDGE_BASE}
    assert by_model[rollups.KNOWLEDGE_BASE]["conversations"] == 2
    assert by_model[rollups.KNOWLEDGE_BASE]["messages"] == 2  # the bot's replies, not the customer's turns
    assert by_model["claude-haiku-4-5"]["conversations"] == 1

    client = Client()
    client.force_login(staff_user)
    page = client.get("/dashboard/analytics/?days=7")
    assert "knowledge base (offline)" in page.content.decode()
    [row] = [r for r in page.context["tables"]["models"] if r["model"] == rollups.KNOWLEDGE_BASE]
    listed = client.get(row["url"]).context["totals"]["conversations"]
    assert listed == 2
    assert offline.pk in {c.pk for c in client.get(row["url"]).context["page"]}

    out, _ = run("cost_report", "--days", "1", "--by", "model", "--format", "json")
    rows = {row["model"]: row for row in json.loads(out)["rows"]}
    assert rows[rollups.KNOWLEDGE_BASE]["conversations"] == 2
    assert rows[rollups.KNOWLEDGE_BASE]["messages"] == 2
    assert "" not in rows


def test_the_rollup_rebuild_agrees_with_the_live_knowledge_base_row() -> None:
    answered_offline()
    answered_by_claude()
    live = selectors.analytics_summary(days=1)["by_model"]
    services.rollups_rebuild()
    assert selectors.analytics_summary(days=1)["by_model"] == live


# --- Top questions keep their apostrophes ------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("I can't log in!", "i can't log in"),
        ("I can\u2019t log in", "i can't log in"),
        ("Where's my 'booking'?", "where's my booking"),
        ("How much is it?!", "how much is it"),
        ("The diners' tables", "the diners tables"),
    ],
)
def test_questions_keep_apostrophes_inside_words_and_group_curly_with_straight(text: str, key: str) -> None:
    assert rollups.normalise_question(text) == key


def test_rebuild_rollups_recomputes_question_keys_stored_without_apostrophes(staff_user: Any) -> None:
    conversation, _ = services.conversation_create()
    services.message_log(conversation=conversation, turns=turn_pair("I can\u2019t log in", "Reset it here."))
    other, _ = services.conversation_create()
    services.message_log(conversation=other, turns=turn_pair("I can't log in", "Reset it here."))
    # As stored before the fix.
    Conversation.objects.update(question_key="i can t log in")
    DailyQuestionRollup.objects.update(question_key="i can t log in")

    run("rebuild_rollups", "--no-progress")

    assert selectors.analytics_summary(days=1)["top_questions"] == [{"question": "i can't log in", "count": 2}]
    filters = selectors.ConversationFilters(question="i can't log in")
    assert selectors.conversation_list(filters=filters).count() == 2


# --- cost_report: one row shape; progress on a terminal and off it --------------------------------
@pytest.mark.parametrize("by", selectors.COST_REPORT_GROUPS)
def test_cost_report_json_rows_and_the_total_share_one_shape(staff_user: Any, by: str) -> None:
    build_desk(staff=staff_user)
    body = json.loads(run("cost_report", "--days", "7", "--by", by, "--format", "json")[0])
    shapes = {tuple(row) for row in [*body["rows"], body["total"]]}
    assert len(shapes) == 1, shapes
    assert body["total"][by] == "total"
    assert "key" not in body["total"]


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_tqdm_bar_on_a_terminal_and_a_few_plain_lines_otherwise(staff_user: Any) -> None:
    for _ in range(4):
        build_desk(staff=staff_user)  # 32 conversations
    terminal = FakeTerminal()
    run("rebuild_rollups", "--batch-size", "1", stderr=terminal)
    drawn = terminal.getvalue()
    assert "100%|" in drawn and "32/32" in drawn, drawn[-300:]
    assert drawn.count("\n") <= 1, "a bar redraws one line"
    assert "\x1b[31" not in drawn and "\x1b[1;31" not in drawn, "not bold red"

    _, plain = run("rebuild_rollups", "--batch-size", "1")
    lines = plain.splitlines()
    assert 2 <= len(lines) <= 11, lines
    assert lines[-1] == "conversations: 32/32 (100%)"
    assert "\r" not in plain


# --- reprice refuses a model nobody uses ------------------------------------------------------
def test_reprice_refuses_a_model_with_no_prices_and_no_turns(staff_user: Any) -> None:
    build_desk(staff=staff_user)
    with pytest.raises(CommandError, match="claude-unknown"):
        run("reprice", "--model", "claude-unknown", "--since", "2025-01-01")
    out, _ = run("reprice", "--model", "claude-haiku-4-5", "--since", "2025-01-01", "--dry-run")
    assert "Model claude-haiku-4-5" in out
