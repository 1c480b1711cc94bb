"""A generated knowledge base for the retrieval bench: 40 product areas x 50 tasks = 2,000 articles.

Each article is one task in one area ("Refund a gift voucher"), with the synonyms customers use for
both in its keywords and a templated answer padded with sentences every article shares, so the words
of a question are spread over many articles and only the right pair of area and task ranks first.
Deterministic: the same seed gives the same bytes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

#: (name, synonyms customers use)
AREAS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("gift voucher", ("gift card", "voucher", "gift certificate")),
    ("deposit", ("prepayment", "upfront payment", "down payment")),
    ("sms reminder", ("text reminder", "text message", "sms")),
    ("email confirmation", ("confirmation email", "booking email", "receipt email")),
    ("staff rota", ("shift", "staff schedule", "roster")),
    ("opening hours", ("business hours", "trading hours", "open times")),
    ("online booking page", ("booking link", "booking site", "booking page")),
    ("booking widget", ("website widget", "embed", "book button")),
    ("calendar sync", ("google calendar", "outlook calendar", "ical")),
    ("payment terminal", ("card reader", "card machine", "pos terminal")),
    ("invoice", ("bill", "billing statement", "tax invoice")),
    ("subscription plan", ("plan", "tier", "package")),
    ("customer profile", ("client record", "client card", "customer details")),
    ("loyalty points", ("rewards", "loyalty scheme", "points")),
    ("waiting list", ("waitlist", "standby list", "queue list")),
    ("no-show fee", ("missed appointment charge", "no show charge", "late cancel fee")),
    ("service menu", ("treatment list", "price list", "services")),
    ("room resource", ("treatment room", "chair", "station")),
    ("two-factor login", ("2fa", "authenticator", "security code")),
    ("password", ("login password", "passcode", "sign-in password")),
    ("team member account", ("staff login", "employee account", "user seat")),
    ("marketing campaign", ("newsletter", "promo email", "mailing")),
    ("discount code", ("promo code", "coupon", "offer code")),
    ("review request", ("feedback request", "rating request", "review invite")),
    ("instagram booking", ("instagram", "insta book button", "social booking")),
    ("reports dashboard", ("analytics", "sales report", "statistics")),
    ("data export", ("csv export", "spreadsheet download", "backup file")),
    ("tax settings", ("vat", "sales tax", "gst")),
    ("currency", ("money format", "local currency", "exchange")),
    ("time zone", ("timezone", "clock setting", "local time")),
    ("multi-location", ("second branch", "another location", "multiple shops")),
    ("package bundle", ("course of treatments", "bundle", "multi-session pack")),
    ("membership", ("monthly membership", "member plan", "recurring membership")),
    ("intake form", ("consultation form", "questionnaire", "medical form")),
    ("mobile app", ("iphone app", "android app", "phone app")),
    ("notification sound", ("alert sound", "ping", "notification tone")),
    ("card on file", ("saved card", "stored card", "payment method")),
    ("refund policy", ("cancellation policy", "terms", "policy page")),
    ("commission report", ("staff commission", "payroll", "earnings")),
    ("holiday closure", ("bank holiday", "closed day", "vacation block")),
)

#: (title verb, synonyms customers use)
TASKS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Set up", ("configure", "enable", "turn on")),
    ("Turn off", ("disable", "switch off", "deactivate")),
    ("Refund", ("money back", "reimburse", "give back")),
    ("Cancel", ("stop", "terminate", "end")),
    ("Change", ("edit", "modify", "update")),
    ("Delete", ("remove", "erase", "get rid of")),
    ("Export", ("download", "save out", "extract")),
    ("Import", ("upload", "bring in", "migrate")),
    ("Troubleshoot", ("not working", "broken", "fix")),
    ("Price", ("cost", "how much", "fee")),
    ("Rename", ("new name", "relabel", "retitle")),
    ("Share", ("send", "forward", "give access")),
    ("Print", ("printout", "paper copy", "hard copy")),
    ("Limit", ("cap", "restrict", "maximum")),
    ("Schedule", ("plan ahead", "set a date", "book in advance")),
    ("Translate", ("language", "other language", "localise")),
    ("Customise", ("personalise", "brand", "look and feel")),
    ("Merge", ("combine", "join", "duplicate")),
    ("Restore", ("undo", "recover", "bring back")),
    ("Audit", ("history", "log", "who changed")),
    ("Verify", ("confirm", "check", "validate")),
    ("Transfer", ("move", "hand over", "switch owner")),
    ("Pause", ("hold", "freeze", "suspend")),
    ("Resume", ("restart", "unpause", "continue")),
    ("Automate", ("automatic", "auto", "without clicking")),
    ("Remind", ("nudge", "follow up", "chase")),
    ("Approve", ("accept", "sign off", "authorise")),
    ("Reject", ("decline", "deny", "turn down")),
    ("Split", ("divide", "share cost", "part pay")),
    ("Upgrade", ("go up", "bigger plan", "more features")),
    ("Downgrade", ("go down", "smaller plan", "fewer features")),
    ("Secure", ("protect", "privacy", "safe")),
    ("Report on", ("stats", "numbers", "figures")),
    ("Filter", ("search", "find", "narrow down")),
    ("Sort", ("order by", "arrange", "rank")),
    ("Test", ("try out", "preview", "sandbox")),
    ("Connect", ("link", "integrate", "hook up")),
    ("Disconnect", ("unlink", "unhook", "remove integration")),
    ("Backdate", ("past date", "earlier date", "retroactive")),
    ("Bulk edit", ("many at once", "mass update", "all together")),
    ("Tag", ("label", "category", "mark")),
    ("Notify", ("alert", "tell", "inform")),
    ("Expire", ("expiry", "run out", "valid until")),
    ("Extend", ("longer", "add time", "prolong")),
    ("Reserve", ("hold a spot", "keep aside", "block out")),
    ("Charge", ("take payment", "bill", "collect")),
    ("Discount", ("reduce", "cheaper", "lower price")),
    ("Assign", ("allocate", "give to", "put on")),
    ("Track", ("follow", "monitor", "keep an eye on")),
    ("Archive", ("hide", "put away", "store old")),
)

SHARED = (
    "You can do this from the dashboard on any device.",
    "Changes take effect straight away for new bookings.",
    "If you get stuck, our support team is happy to help.",
    "Owners and managers can change this; staff accounts cannot.",
    "Your customers are not charged anything extra for this.",
)


@dataclass(frozen=True)
class GeneratedArticle:
    pk: int
    title: str
    keywords: str
    answer: str
    public_url: str = ""


def articles(seed: int = 14) -> list[GeneratedArticle]:
    rng = random.Random(seed)
    made: list[GeneratedArticle] = []
    for area, area_words in AREAS:
        for task, task_words in TASKS:
            pk = len(made) + 1
            keywords = ", ".join((area, *area_words, task.lower(), *task_words))
            answer = (
                f"To {task.lower()} a {area}, open Settings > {area.title()} and choose '{task}'. "
                f"Customers sometimes call this '{rng.choice(task_words)} {rng.choice(area_words)}'. "
                + " ".join(rng.sample(SHARED, 3))
            )
            made.append(GeneratedArticle(pk=pk, title=f"{task} a {area}", keywords=keywords, answer=answer))
    return made


OPENERS = ("", "Hi, ", "Hello! ", "Quick question: ", "Sorry to bother you, ")
FORMS = (
    "how do I {task} my {area}?",
    "can I {task} the {area}",
    "is there a way to {task} a {area} please",
    "I need to {task} our {area}, where is that?",
    "{area}: how to {task}?",
)


def questions(count: int = 50, seed: int = 1414) -> list[dict[str, str]]:
    """Questions phrased with customers' synonyms, each with the title of the article that answers it."""
    rng = random.Random(seed)
    pairs = rng.sample([(a, t) for a in AREAS for t in TASKS], count)
    made = []
    for (area, area_words), (task, task_words) in pairs:
        text = rng.choice(OPENERS) + rng.choice(FORMS).format(task=rng.choice(task_words), area=rng.choice(area_words))
        made.append({"question": text[0].upper() + text[1:], "expected": f"{task} a {area}"})
    return made
