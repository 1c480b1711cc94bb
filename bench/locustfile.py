"""Locust users for bench/load.py (run headless by it; not meant to be run by hand).

CeilingUser   POSTs the bare one-row insert (bench/urls.py): the stack's ceiling.
LoggerUser    logs question/answer pairs into its own conversation, each with a fresh
              Idempotency-Key: message logging alone, measured side by side with the ceiling.
WidgetUser    the widget's real mix: starts conversations, logs pairs, chats through the proxy
              (streamed and JSON, Claude being the fake server with some faults mixed in), reads
              its transcript, retries a finished request with the same key (must replay, not
              store again) and sends the same key twice at once (one stores, the other waits or
              replays).
StaffUser     the review queue, conversation lists, search, transcripts, analytics, status changes.

Every pair acknowledged with 201 is written to $BENCH_ACK_FILE when the run stops, keyed by
conversation and Idempotency-Key, so load.py can prove stored == acknowledged, exactly once.
Failed attempts are retried with the same key, as the widget does, and still counted as errors.
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from typing import Any

import gevent
from locust import FastHttpUser, constant, events, task

STAFF_TOKEN = os.environ.get("BENCH_STAFF_TOKEN", "")
ACK_FILE = os.environ.get("BENCH_ACK_FILE", "")
MODELS = ["claude-haiku-4-5", "claude-haiku-4-5", "claude-sonnet-4-5", "claude-unknown-model"]
WORDS = "booking table refund password login invoice menu deposit cancel opening hours staff rota".split()
MAX_ATTEMPTS = 8

# conversation id -> {Idempotency-Key: sorted acknowledged message ids}
ACKS: dict[str, dict[str, list[str]]] = {}
CONVERSATIONS: list[str] = []
REPLAY_MISMATCHES: list[str] = []
CEILING_ACKED = [0]
# How chat turns ended: answered by Claude, partial (stream broke), fallback (knowledge base); and how many
# tries found every reply thread of the worker busy and waited, as the widget does.
CHAT_OUTCOMES: dict[str, int] = {"claude": 0, "partial": 0, "fallback": 0, "person": 0, "no_reply": 0, "waited": 0}
#: widget.js: a 429 with Retry-After 1 (`server_busy`) is tried again after a second, three times at most.
BUSY_RETRIES = 3


@events.quitting.add_listener
def write_acks(**kwargs: Any) -> None:
    # On quitting, not test_stop: users finishing their last task (--stop-timeout) still ack.
    if ACK_FILE:
        with open(ACK_FILE, "w") as out:
            json.dump(
                {
                    "acks": ACKS,
                    "replay_mismatches": REPLAY_MISMATCHES,
                    "ceiling_acked": CEILING_ACKED[0],
                    "chat_outcomes": CHAT_OUTCOMES,
                },
                out,
            )


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "?"


class _Conversations(FastHttpUser):
    abstract = True
    wait_time = constant(0)

    def on_start(self) -> None:
        self.rng = random.Random()
        self.sent: list[tuple[str, dict[str, Any], list[str]]] = []
        self.new_conversation()

    def new_conversation(self) -> None:
        body = {"source": self.rng.choice(["web", "app_owner", "app_diner"]), "page_url": "https://example.com/help"}
        for _ in range(MAX_ATTEMPTS):
            with self.client.post(
                "/api/support/conversations", json=body, name="POST conversations", catch_response=True
            ) as response:
                if response.status_code == 201:
                    data = response.json()
                    self.conversation_id, self.token = data["id"], data["token"]
                    ACKS.setdefault(self.conversation_id, {})
                    CONVERSATIONS.append(self.conversation_id)
                    return
                response.failure(f"status {response.status_code}")
            time.sleep(0.1)
        raise RuntimeError("could not start a conversation")

    def pair(self) -> dict[str, Any]:
        return {
            "user_message": sentence(self.rng, self.rng.randint(3, 12)),
            "assistant_message": sentence(self.rng, self.rng.randint(8, 40)),
            "input_tokens": self.rng.randint(10, 2000),
            "output_tokens": self.rng.randint(10, 800),
            "cache_read_tokens": self.rng.choice([0, 0, 1024]),
            "model": self.rng.choice(MODELS),
            "is_escalation": self.rng.random() < 0.05,
        }

    def post_pair(self, key: str, body: dict[str, Any], name: str = "POST messages") -> list[str] | None:
        """Send until acknowledged (201), retrying failures with the same key; the ids, or None."""
        headers = {"X-Conversation-Token": self.token, "Idempotency-Key": key}
        url = f"/api/support/conversations/{self.conversation_id}/messages"
        for _ in range(MAX_ATTEMPTS):
            with self.client.post(url, json=body, headers=headers, name=name, catch_response=True) as response:
                if response.status_code == 201:
                    ids = sorted(m["id"] for m in response.json()["messages"])
                    ACKS[self.conversation_id][key] = ids
                    return ids
                if response.status_code == 409 and name.endswith("(race)"):
                    response.success()  # the twin is still running: expected, retry shortly
                else:
                    response.failure(f"status {response.status_code}: {(response.text or '')[:120]}")
                    if response.status_code and response.status_code < 500 and response.status_code != 409:
                        return None
            time.sleep(0.05)
        return None

    def chat(self, stream: bool) -> None:
        """One chat turn with an Idempotency-Key, retried like a pair; its two stored ids are acknowledged."""
        key = uuid.uuid4().hex
        headers = {"X-Conversation-Token": self.token, "Idempotency-Key": key}
        body = {"message": sentence(self.rng, self.rng.randint(3, 12)), "stream": stream}
        url = f"/api/support/conversations/{self.conversation_id}/chat"
        name = "POST chat (stream)" if stream else "POST chat (json)"
        busy = 0
        for _ in range(MAX_ATTEMPTS + BUSY_RETRIES):
            with self.client.post(url, json=body, headers=headers, name=name, catch_response=True) as response:
                done = None
                if response.status_code == 429 and response.headers.get("Retry-After") == "1" and busy < BUSY_RETRIES:
                    busy += 1
                    CHAT_OUTCOMES["waited"] += 1
                    response.success()  # the widget waits and sends again; counted apart, not an error
                    time.sleep(1)
                    continue
                if response.status_code == 201:
                    done = response.json()
                elif response.status_code == 200:
                    events = [frame for frame in (response.text or "").split("\n\n") if frame.startswith("event: done")]
                    done = json.loads(events[-1].split("data: ", 1)[1]) if events else None
                if done is not None and done.get("handled_by") == "human":
                    # A person handles the conversation (escalated earlier): the turn is stored, no bot reply.
                    ACKS[self.conversation_id][key] = [done["user_message_id"]]
                    CHAT_OUTCOMES["person"] += 1
                    return
                if done is not None and done.get("text"):
                    ACKS[self.conversation_id][key] = sorted([done["user_message_id"], done["message_id"]])
                    outcome = "fallback" if done["fallback"] else "partial" if done["partial"] else "claude"
                    CHAT_OUTCOMES[outcome] += 1
                    return
                response.failure(f"status {response.status_code}: {(response.text or '')[:120]}")
                if response.status_code and response.status_code < 500 and response.status_code != 409:
                    CHAT_OUTCOMES["no_reply"] += 1
                    return
            time.sleep(0.05)
        CHAT_OUTCOMES["no_reply"] += 1

    def log_pair(self) -> None:
        key = uuid.uuid4().hex
        body = self.pair()
        ids = self.post_pair(key, body)
        if ids is not None:
            self.sent.append((key, body, ids))


class CeilingUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def insert_one(self) -> None:
        with self.client.post("/bench/insert", name="POST bench/insert (ceiling)", catch_response=True) as response:
            if response.status_code == 201:
                CEILING_ACKED[0] += 1
            else:
                response.failure(f"status {response.status_code}")


class LoggerUser(_Conversations):
    @task
    def log_message(self) -> None:
        self.log_pair()
        if len(self.sent) >= 20:  # a long support conversation, then the next customer
            self.new_conversation()
            self.sent = []


class NoKeyLoggerUser(_Conversations):
    """Message logging without an Idempotency-Key: sent once (a retry could store the turns twice); the ids of
    each 201 are acknowledged under a made-up "nokey:" key, which the integrity check knows has no record."""

    @task
    def log_message(self) -> None:
        url = f"/api/support/conversations/{self.conversation_id}/messages"
        headers = {"X-Conversation-Token": self.token}
        with self.client.post(
            url, json=self.pair(), headers=headers, name="POST messages (no key)", catch_response=True
        ) as response:
            if response.status_code == 201:
                ids = sorted(m["id"] for m in response.json()["messages"])
                ACKS[self.conversation_id][f"nokey:{uuid.uuid4().hex}"] = ids
                self.sent.append(("", {}, ids))
            else:
                response.failure(f"status {response.status_code}: {(response.text or '')[:120]}")
        if len(self.sent) >= 20:  # a long support conversation, then the next customer
            self.new_conversation()
            self.sent = []


class WidgetUser(_Conversations):
    weight = 5

    @task(10)
    def log_message(self) -> None:
        self.log_pair()
        if len(self.sent) >= 12:  # conversations stay short, as real ones do
            self.new_conversation()
            self.sent = []

    @task(3)
    def chat_streamed(self) -> None:
        self.chat(stream=True)

    @task(1)
    def chat_json(self) -> None:
        self.chat(stream=False)

    @task(2)
    def read_transcript(self) -> None:
        self.client.get(
            f"/api/support/conversations/{self.conversation_id}",
            headers={"X-Conversation-Token": self.token},
            name="GET conversations/{id} (widget)",
        )

    @task(1)
    def retry_a_finished_turn(self) -> None:
        if not self.sent:
            return
        key, body, ids = self.rng.choice(self.sent)
        replayed = self.post_pair(key, body, name="POST messages (retry)")
        if replayed is not None and replayed != ids:
            REPLAY_MISMATCHES.append(f"{self.conversation_id}/{key}")

    @task(1)
    def send_the_same_turn_twice_at_once(self) -> None:
        key, body = uuid.uuid4().hex, self.pair()
        twins = [gevent.spawn(self.post_pair, key, body, "POST messages (race)") for _ in range(2)]
        gevent.joinall(twins)
        results = [twin.value for twin in twins]
        if results[0] is not None and results[1] is not None and results[0] != results[1]:
            REPLAY_MISMATCHES.append(f"{self.conversation_id}/{key}")
        if results[0] is not None:
            self.sent.append((key, body, results[0]))


class StaffUser(FastHttpUser):
    weight = 1
    wait_time = constant(0)

    def on_start(self) -> None:
        self.headers = {"Authorization": f"Token {STAFF_TOKEN}"}
        self.rng = random.Random()

    def some_conversation(self) -> str | None:
        return self.rng.choice(CONVERSATIONS) if CONVERSATIONS else None

    @task(3)
    def review_queue(self) -> None:
        self.client.get("/api/support/tickets?page_size=25", headers=self.headers, name="GET tickets")

    @task(2)
    def list_conversations(self) -> None:
        status = self.rng.choice(["", "&status=needs_review", "&source=web", "&escalated=false"])
        self.client.get(
            f"/api/support/conversations?page_size=50{status}", headers=self.headers, name="GET conversations"
        )

    @task(1)
    def search(self) -> None:
        word = self.rng.choice(WORDS)
        self.client.get(f"/api/support/conversations?q={word}", headers=self.headers, name="GET conversations?q=")

    @task(3)
    def read_transcript(self) -> None:
        conversation_id = self.some_conversation()
        if conversation_id:
            self.client.get(
                f"/api/support/conversations/{conversation_id}", headers=self.headers, name="GET conversations/{id}"
            )

    @task(1)
    def change_status(self) -> None:
        conversation_id = self.some_conversation()
        if conversation_id:
            self.client.patch(
                f"/api/support/conversations/{conversation_id}",
                json={"status": self.rng.choice(["open", "in_progress", "needs_review"])},
                headers=self.headers,
                name="PATCH conversations/{id}",
            )

    @task(1)
    def analytics(self) -> None:
        self.client.get("/api/support/analytics?days=30", headers=self.headers, name="GET analytics")
