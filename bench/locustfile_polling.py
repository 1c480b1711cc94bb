"""Locust users for bench/polling.py (run headless by it; not meant to be run by hand).

PacedWidget    the other endpoints' widget traffic at a steady pace: starts conversations, logs pairs
               (Idempotency-Key), reads its transcript.
PacedStaff     the staff traffic of bench/locustfile.py (queue, lists, search, transcripts, status
               changes, analytics) at the same pace.
PollingWidget  one open widget on a conversation a person owns (handled_by=human): GET .../messages?after=
               every 3 s with If-None-Match, keeping the ETag and the newest id as widget.js does (opened once
               by bench/polling.py; each phase goes on from the ETags the last one left).
StaffReplier   a staff member answering one polled conversation now and then, so some polls are 200s.

The other traffic is paced, not flat out: the question is what the polls do to its latency, and a
saturated server would only measure how the CPU is shared. $BENCH_POLL_FILE lists the polled
conversations (id and widget token) and $BENCH_POLL_COUNTS receives the poll outcomes on quitting.
"""

from __future__ import annotations

import collections
import itertools
import json
import os
import random
from typing import Any

import gevent
from locust import FastHttpUser, constant_pacing, events, task

from bench.locustfile import StaffUser, _Conversations

#: Seconds between two requests of one user of the other traffic (each user waits for its answer).
PACE = float(os.environ.get("BENCH_PACE_S", "0.5"))
#: The widget's poll interval while a person owns the conversation and the tab is visible.
POLL_EVERY = float(os.environ.get("BENCH_POLL_EVERY_S", "3"))
POLLERS = int(os.environ.get("BENCH_POLLERS", "300"))
REPLY_EVERY = float(os.environ.get("BENCH_REPLY_EVERY_S", "1"))
POLLED: list[dict[str, str]] = (
    json.loads(open(os.environ["BENCH_POLL_FILE"]).read()) if os.environ.get("BENCH_POLL_FILE") else []
)
_NEXT = itertools.count()
POLL_COUNTS: collections.Counter[str] = collections.Counter()
OPENING_COUNTS: collections.Counter[str] = collections.Counter()


@events.quitting.add_listener
def write_poll_counts(**kwargs: Any) -> None:
    if os.environ.get("BENCH_POLL_COUNTS"):
        with open(os.environ["BENCH_POLL_COUNTS"], "w") as out:
            json.dump(dict(POLL_COUNTS), out)
    # Each widget's newest id and ETag, for the next phase: it goes on polling where this one left it.
    if os.environ.get("BENCH_POLL_FILE") and POLLED:
        with open(os.environ["BENCH_POLL_FILE"], "w") as out:
            json.dump(POLLED, out)


class PacedWidget(_Conversations):
    weight = 5
    wait_time = constant_pacing(PACE)

    @task(10)
    def log_message(self) -> None:
        self.log_pair()
        if len(self.sent) >= 12:
            self.new_conversation()
            self.sent = []

    @task(2)
    def read_transcript(self) -> None:
        self.client.get(
            f"/api/support/conversations/{self.conversation_id}",
            headers={"X-Conversation-Token": self.token},
            name="GET conversations/{id} (widget)",
        )


class PacedStaff(StaffUser):
    weight = 1
    wait_time = constant_pacing(PACE)


class PollingWidget(FastHttpUser):
    fixed_count = POLLERS
    wait_time = constant_pacing(POLL_EVERY)

    def on_start(self) -> None:
        self.polled = POLLED[next(_NEXT) % len(POLLED)]
        self.url = f"/api/support/conversations/{self.polled['id']}/messages"
        self.token = self.polled["token"]
        # Widgets poll at different moments, not all in the same tick.
        gevent.sleep(random.uniform(0, POLL_EVERY))
        if not self.polled.get("etag"):  # opened by bench/polling.py before the phases; else its first poll
            self.poll(name="GET messages?after= (widget opened)")
            gevent.sleep(POLL_EVERY)

    @property
    def last_id(self) -> str:
        return self.polled["last_id"]

    @property
    def etag(self) -> str:
        return self.polled.get("etag", "")

    @task
    def poll(self, name: str = "GET messages?after= (poll)") -> None:
        headers = {"X-Conversation-Token": self.token}
        if self.etag:
            headers["If-None-Match"] = self.etag
        url = f"{self.url}?after={self.last_id}" if self.last_id else self.url
        counted = POLL_COUNTS if name.endswith("(poll)") else OPENING_COUNTS
        with self.client.get(url, headers=headers, name=name, catch_response=True) as r:
            if r.status_code == 304:
                counted["304"] += 1
                return
            if r.status_code != 200:
                counted["error"] += 1
                r.failure(f"status {r.status_code}")
                return
            counted["200"] += 1
            body = r.json()
            if body["messages"]:
                counted["200 with turns"] += 1
                self.polled["last_id"] = body["messages"][-1]["id"]
            self.polled["etag"] = r.headers.get("ETag") or ""


class StaffReplier(FastHttpUser):
    fixed_count = 1
    wait_time = constant_pacing(REPLY_EVERY)

    @task
    def reply(self) -> None:
        polled = random.choice(POLLED)
        self.client.post(
            f"/api/support/conversations/{polled['id']}/replies",
            json={"content": "Thanks, I've moved your booking to 19:30."},
            headers={"Authorization": f"Token {os.environ.get('BENCH_STAFF_TOKEN', '')}"},
            name="POST replies (poll bench)",
        )
