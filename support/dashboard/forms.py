"""Query-string and action forms of the staff pages. They only validate; views call selectors/services."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.conf import settings

from support import selectors
from support.models import (
    QUEUE_STATUSES,
    Audience,
    Conversation,
    EscalationReason,
    HandledBy,
    MessageOrigin,
    Outcome,
    Source,
    Status,
)
from support.selectors import ConversationFilters
from support.validators import validate_end_date

ORDER_CHOICES = [("newest", "Newest first"), ("oldest", "Oldest first")]
YES_NO = [("", "Any"), ("true", "Yes"), ("false", "No")]
AUDIENCE_CHOICES = [("", "Any"), *Audience.choices]


def business_field() -> forms.CharField:
    return forms.CharField(required=False, max_length=128, label="Business", help_text="A business_id (venue).")


def staff_choices(*, blank: str, extra: list[tuple[str, str]] | None = None) -> list[tuple[str, str]]:
    users = [(str(user.pk), user.get_username()) for user in selectors.staff_user_list()]
    return [("", blank), *(extra or []), *users]


class ConversationFilterForm(forms.Form):
    """The ticket list's filters; every drill-down link is a query string of these fields."""

    status = forms.MultipleChoiceField(choices=Status.choices, required=False)
    source = forms.MultipleChoiceField(choices=Source.choices, required=False)
    escalated = forms.ChoiceField(choices=YES_NO, required=False)
    escalation_reason = forms.ChoiceField(choices=[("", "Any"), *EscalationReason.choices], required=False)
    assigned_to = forms.ChoiceField(required=False)
    created_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    created_to = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), validators=[validate_end_date]
    )
    q = forms.CharField(required=False, max_length=200, label="Search")
    model = forms.CharField(required=False, max_length=100)
    question = forms.CharField(required=False, max_length=255, widget=forms.HiddenInput)
    closed_after_escalation = forms.BooleanField(required=False, widget=forms.HiddenInput)
    # Issue 14: conversations with a reply that answered a product question citing no article.
    ungrounded = forms.BooleanField(required=False, widget=forms.HiddenInput)
    origin = forms.ChoiceField(choices=[("", "Any"), *MessageOrigin.choices], required=False, widget=forms.HiddenInput)
    first_response = forms.ChoiceField(
        choices=[("", "Any"), *selectors.FIRST_RESPONSE_CHOICES], required=False, widget=forms.HiddenInput
    )
    rating = forms.ChoiceField(
        choices=[("", "Any"), ("rated", "Rated"), ("up", "Thumbs up"), ("down", "Thumbs down")],
        required=False,
        label="Customer rating",
    )
    outcome = forms.MultipleChoiceField(choices=Outcome.choices, required=False, label="Outcome")
    order = forms.ChoiceField(choices=ORDER_CHOICES, required=False)
    business_id = business_field()
    audience = forms.ChoiceField(choices=AUDIENCE_CHOICES, required=False)
    no_business = forms.BooleanField(required=False, widget=forms.HiddenInput)
    no_audience = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        assignee = cast(forms.ChoiceField, self.fields["assigned_to"])
        assignee.choices = staff_choices(blank="Anyone", extra=[("me", "Me"), ("none", "Unassigned")])

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        start, end = data.get("created_from"), data.get("created_to")
        if start and end and start > end:
            self.add_error("created_from", "Must not be after the end date.")
        return data

    def to_filters(self) -> ConversationFilters:
        data = self.cleaned_data
        assigned = data.get("assigned_to") or ""
        assigned_user = None
        if assigned == "me":
            assigned_user = self.user
        elif assigned not in ("", "none"):
            assigned_user = selectors.staff_user_get(user_id=assigned)
        escalated = {"true": True, "false": False}.get(data.get("escalated") or "")
        return ConversationFilters(
            status=data.get("status") or [],
            source=data.get("source") or [],
            escalated=escalated,
            escalation_reason=data.get("escalation_reason") or "",
            assigned_to=assigned_user,
            unassigned=assigned == "none",
            created_from=data.get("created_from"),
            created_to=data.get("created_to"),
            q=data.get("q") or "",
            model=data.get("model") or "",
            question=data.get("question") or "",
            closed_after_escalation=bool(data.get("closed_after_escalation")),
            rating=data.get("rating") or "",
            origin=data.get("origin") or "",
            first_response=data.get("first_response") or "",
            business_id=data.get("business_id") or "",
            audience=data.get("audience") or "",
            no_business=bool(data.get("no_business")),
            no_audience=bool(data.get("no_audience")),
            ungrounded=bool(data.get("ungrounded")),
            outcome=data.get("outcome") or [],
        )

    @property
    def oldest_first(self) -> bool:
        return self.cleaned_data.get("order") == "oldest"


class QueueFilterForm(ConversationFilterForm):
    status = forms.MultipleChoiceField(
        choices=[(s.value, s.label) for s in QUEUE_STATUSES], required=False, widget=forms.MultipleHiddenInput
    )
    # The queue's default: who must be answered soonest (first-response due time), overdue ones on top.
    order = forms.ChoiceField(choices=[("due", "Reply due first"), *ORDER_CHOICES], required=False)

    def to_filters(self) -> ConversationFilters:
        filters = super().to_filters()
        if self.cleaned_data.get("order") in ("", "due"):
            filters.order = "due"
        return filters


WINDOW_CHOICES = [("7", "7 days"), ("30", "30 days"), ("90", "90 days")]


class AnalyticsWindowForm(forms.Form):
    days = forms.TypedChoiceField(choices=WINDOW_CHOICES, coerce=int, required=False, empty_value=None)
    date_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="From")
    date_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="To")
    business_id = business_field()
    audience = forms.ChoiceField(choices=AUDIENCE_CHOICES, required=False)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        problem = selectors.window_error(date_from=data.get("date_from"), date_to=data.get("date_to"))
        if problem:
            self.add_error(problem[0], problem[1].replace("date_to", "the end date"))
        return data

    def venue(self) -> dict[str, str]:
        """The business and audience asked for (blank: all)."""
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        return {"business_id": data.get("business_id") or "", "audience": data.get("audience") or ""}

    def window(self) -> selectors.Window:
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        return selectors.window_for(
            days=data.get("days") or 30, date_from=data.get("date_from"), date_to=data.get("date_to")
        )


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=Status.choices)


class AssignForm(forms.Form):
    assigned_to = forms.ChoiceField(required=False, label="Assign to")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["assigned_to"]).choices = staff_choices(blank="Nobody")

    def clean_assigned_to(self) -> Any:
        value = self.cleaned_data["assigned_to"]
        if not value:
            return None
        user = selectors.staff_user_get(user_id=value)
        if user is None:
            raise forms.ValidationError("No active staff user has this id.")
        return user


class NotesForm(forms.Form):
    """One more entry on the ticket's notes timeline (services.ticket_note_add); earlier ones stay."""

    notes = forms.CharField(
        max_length=20000, label="Add a note", widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Add a note"})
    )


class ContactForm(forms.Form):
    contact_email = forms.EmailField(
        required=False, label="Contact email", max_length=Conversation._meta.get_field("contact_email").max_length
    )


class ReplyForm(forms.Form):
    """The reply composer: Markdown the customer reads in the widget; "Send and hand back" sets hand_back."""

    content = forms.CharField(
        label="Your reply",
        widget=forms.Textarea(attrs={"rows": 5, "placeholder": "Write a reply (Markdown; Ctrl+Enter sends)"}),
        error_messages={"required": "Write a reply first."},
    )
    hand_back = forms.BooleanField(required=False)

    def clean_content(self) -> str:
        content = str(self.cleaned_data["content"])
        # Read per request, not at import, so the limit follows settings like the API's does.
        limit = settings.SUPPORT_MAX_MESSAGE_CHARS
        if len(content) > limit:
            raise forms.ValidationError(f"A reply can be at most {limit} characters (this one has {len(content)}).")
        return content


class HandoffForm(forms.Form):
    """Take over (handled_by=human) or hand back to the bot (handled_by=bot)."""

    handled_by = forms.ChoiceField(choices=HandledBy.choices)


class QueueLiveForm(QueueFilterForm):
    """The queue's filters plus the moment the page was opened or last focused, to count new escalations."""

    since = forms.DateTimeField(required=False)


TICKET_ACTIONS: dict[str, type[forms.Form]] = {
    "status": StatusForm,
    "assign": AssignForm,
    "notes": NotesForm,
    "contact": ContactForm,
}
