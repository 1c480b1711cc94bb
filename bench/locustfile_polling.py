"""Locust users for bench/polling.py (run headless by it; not meant to be run by hand).

PacedWidget    the other endpoints' widget traffic at a steady pace: starts conversations, logs pairs
               (Idempotency-Key), reads its transcript.
PacedStaff     the staff traffic of bench/locustfile.py (queue, lists, search, transcripts, status
               changes, analytics) at the same pace.

The other traffic is paced, not flat out: the question is what the polls do to its latency, and a
saturated server would only measure how the CPU is shared. The polling widgets and the staff member
replying to them run in a light client of their own (bench/pollers.py).
"""

from __future__ import annotations

import os

from locust import constant_pacing, task

from bench.locustfile import StaffUser, _Conversations

#: Seconds between two requests of one user of the other traffic (each user waits for its answer).
PACE = float(os.environ.get("BENCH_PACE_S", "0.5"))


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
