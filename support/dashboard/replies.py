"""The ticket page's handoff actions: reply to the customer, take over or hand back, and the live thread.

The composer and the two buttons are plain forms (they work without JavaScript); static/dashboard/ticket.js
adds Ctrl+Enter, the canned-reply picker and the poll that appends the customer's new turns from
`ticket_turns`, which renders them with the page's own template and Markdown rules.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from support import selectors, services
from support.dashboard.forms import HandoffForm, ReplyForm
from support.dashboard.views import NO_CONVERSATION, staff_required, ticket_context, turn
from support.models import Conversation


def _conversation(request: HttpRequest, conversation_id: str) -> Conversation:
    conversation = selectors.conversation_get(conversation_id=conversation_id, user=request.user)
    if conversation is None:
        raise Http404(NO_CONVERSATION)
    return conversation


def _ticket_again(request: HttpRequest, conversation: Conversation) -> HttpResponse:
    return redirect("dashboard:ticket", conversation_id=conversation.pk)


@require_POST
@staff_required
def ticket_reply(request: HttpRequest, conversation_id: str) -> HttpResponse:
    """Send the composer's reply (services.conversation_reply takes the ticket over unless handing back)."""
    conversation = _conversation(request, conversation_id)
    form = ReplyForm(request.POST)
    if not form.is_valid():
        context = ticket_context(conversation, {"reply": form}, viewer=request.user)
        return render(request, "dashboard/ticket.html", context, status=400)
    hand_back = bool(form.cleaned_data["hand_back"])
    try:
        services.conversation_reply(
            conversation=conversation, author=request.user, content=form.cleaned_data["content"], hand_back=hand_back
        )
    except services.ConversationConflict:
        messages.error(request, "The ticket kept changing while the reply was sent; nothing was sent. Try again.")
        return _ticket_again(request, conversation)
    messages.success(request, "Reply sent; the bot answers again." if hand_back else "Reply sent.")
    return _ticket_again(request, conversation)


@require_POST
@staff_required
def ticket_handoff(request: HttpRequest, conversation_id: str) -> HttpResponse:
    """Take over (the bot stops answering) or hand back to the bot."""
    conversation = _conversation(request, conversation_id)
    form = HandoffForm(request.POST)
    if not form.is_valid():
        return HttpResponse(form.errors.as_text(), status=400, content_type="text/plain")
    handled_by = form.cleaned_data["handled_by"]
    try:
        services.conversation_handoff(conversation=conversation, handled_by=handled_by, actor=request.user)
    except services.ConversationConflict:
        messages.error(request, "The ticket kept changing while it was saved; nothing was changed. Try again.")
        return _ticket_again(request, conversation)
    done = "You took over: the bot stays quiet." if handled_by == "human" else "Handed back to the bot."
    messages.success(request, done)
    return _ticket_again(request, conversation)


@require_GET
@staff_required
def ticket_turns(request: HttpRequest, conversation_id: str) -> HttpResponse:
    """The turns after ?after=<message id>, as the thread shows them (an HTML fragment for ticket.js).

    An unknown `after` (a turn that is not in this conversation) answers every turn, so the page can
    rebuild its thread rather than miss one.
    """
    conversation = _conversation(request, conversation_id)
    turns = list(selectors.message_list(conversation=conversation))
    after = request.GET.get("after", "")
    ids = [str(message.pk) for message in turns]
    if after in ids:
        turns = turns[ids.index(after) + 1 :]
    context: dict[str, Any] = {"turns": [turn(message) for message in turns]}
    response = render(request, "dashboard/_turns.html", context)
    response["X-Turns-Replace"] = "false" if after in ids else "true"
    return response
