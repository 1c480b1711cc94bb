"""The mixed traffic bench/memory.py sends between checkpoints, and how it reads each worker's memory."""

from __future__ import annotations

import collections
import contextlib
import json
import random
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import harness

MODELS = ["claude-haiku-4-5", "claude-haiku-4-5", "claude-sonnet-4-5", "claude-unknown-model"]
WORDS = "booking table refund password login invoice menu deposit cancel opening hours staff rota".split()
#: What a visitor or a member of staff does next, and how often (the widget's traffic dominates).
MIX = {
    "create": 1,
    "pair_with_key": 5,
    "pair": 3,
    "widget_config": 2,
    "transcript": 2,
    "chat_json": 1,
    "chat_stream": 1,
    "tickets": 1,
    "conversations": 1,
    "search": 1,
    "staff_transcript": 1,
    "analytics": 1,
    "status_change": 1,
    "health": 1,
}
PAIRS_PER_CONVERSATION = 12


@dataclass
class WorkerMemory:
    rss_mib: float
    pss_mib: float


@dataclass
class Checkpoint:
    requests: int
    workers: dict[int, WorkerMemory]
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def max_rss_mib(self) -> float:
        return max((m.rss_mib for m in self.workers.values()), default=0.0)


def _kib(path: Path, key: str) -> int:
    for line in path.read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    return 0


def worker_memory(server: harness.Server) -> dict[int, WorkerMemory]:
    """Each live worker's RSS (VmRSS) and PSS (its share of pages shared with the master and other workers)."""
    memory = {}
    for pid in server.worker_pids():
        with contextlib.suppress(OSError):
            rss = _kib(Path(f"/proc/{pid}/status"), "VmRSS:")
            pss = _kib(Path(f"/proc/{pid}/smaps_rollup"), "Pss:")
            memory[pid] = WorkerMemory(rss_mib=rss / 1024, pss_mib=pss / 1024)
    return memory


def _request(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""  # connection refused or reset: counted as status 0


@dataclass
class Visitor:
    """One client's own conversation (the widget's view of it)."""

    rng: random.Random
    conversation_id: str = ""
    token: str = ""
    pairs: int = 0


class MixedLoad:
    def __init__(self, url: str, staff_token: str, *, clients: int, seed: int, leave_out: Iterable[str] = ()) -> None:
        self.url = url
        self.mix = {action: weight for action, weight in MIX.items() if action not in set(leave_out)}
        self.staff = {"Authorization": f"Token {staff_token}"}
        self.visitors = [Visitor(rng=random.Random(seed + n)) for n in range(clients)]
        self.statuses: collections.Counter[int] = collections.Counter()
        self.conversations: list[str] = []
        self._lock = threading.Lock()
        self._left = 0

    @staticmethod
    def staff_token(env: dict[str, str]) -> str:
        """A superuser's API token in the leg's database (made by a child with the leg's settings)."""
        code = "from bench.harness import staff_token; print(staff_token())"
        result = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code],
            cwd=harness.ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        )
        return result.stdout.split()[-1]

    def run(self, requests: int) -> None:
        """Send this many requests from every client at once, with a progress bar; returns when all answered."""
        from tqdm import tqdm

        self._left = requests
        with tqdm(total=requests, desc="mixed requests", unit="req", mininterval=2) as bar:
            self._bar = bar
            with ThreadPoolExecutor(max_workers=len(self.visitors)) as pool:
                for future in [pool.submit(self._client, visitor) for visitor in self.visitors]:
                    future.result()

    def _take(self) -> bool:
        with self._lock:
            if self._left <= 0:
                return False
            self._left -= 1
            return True

    def _client(self, visitor: Visitor) -> None:
        names, weights = list(self.mix), list(self.mix.values())
        while self._take():
            action = "create" if not visitor.conversation_id else visitor.rng.choices(names, weights)[0]
            status = getattr(self, f"_{action}")(visitor)
            with self._lock:
                self.statuses[status] += 1
                self._bar.update(1)

    # --- The widget ------------------------------------------------------------------------------
    def _widget(self, visitor: Visitor) -> dict[str, str]:
        return {"X-Conversation-Token": visitor.token}

    def _create(self, visitor: Visitor) -> int:
        body = {"source": visitor.rng.choice(["web", "app_owner", "app_diner"]), "page_url": "https://example.com/help"}
        status, raw = _request("POST", f"{self.url}/api/support/conversations", body)
        if status == 201:
            data = json.loads(raw)
            visitor.conversation_id, visitor.token, visitor.pairs = data["id"], data["token"], 0
            with self._lock:
                self.conversations.append(visitor.conversation_id)
        return status

    def _pair(self, visitor: Visitor, key: str = "") -> int:
        if visitor.pairs >= PAIRS_PER_CONVERSATION:
            return self._create(visitor)
        rng = visitor.rng
        body = {
            "user_message": _sentence(rng, rng.randint(3, 12)),
            "assistant_message": _sentence(rng, rng.randint(8, 40)),
            "input_tokens": rng.randint(10, 2000),
            "output_tokens": rng.randint(10, 800),
            "cache_read_tokens": rng.choice([0, 0, 1024]),
            "model": rng.choice(MODELS),
            "is_escalation": rng.random() < 0.05,
        }
        headers = self._widget(visitor) | ({"Idempotency-Key": key} if key else {})
        url = f"{self.url}/api/support/conversations/{visitor.conversation_id}/messages"
        status, _ = _request("POST", url, body, headers)
        visitor.pairs += 1
        return status

    def _pair_with_key(self, visitor: Visitor) -> int:
        return self._pair(visitor, key=uuid.uuid4().hex)

    def _widget_config(self, visitor: Visitor) -> int:
        return _request("GET", f"{self.url}/api/support/widget/config")[0]

    def _transcript(self, visitor: Visitor) -> int:
        url = f"{self.url}/api/support/conversations/{visitor.conversation_id}"
        return _request("GET", url, headers=self._widget(visitor))[0]

    def _chat(self, visitor: Visitor, *, stream: bool) -> int:
        body = {"message": _sentence(visitor.rng, visitor.rng.randint(3, 12)), "stream": stream}
        headers = self._widget(visitor) | {"Idempotency-Key": uuid.uuid4().hex}
        url = f"{self.url}/api/support/conversations/{visitor.conversation_id}/chat"
        return _request("POST", url, body, headers)[0]

    def _chat_json(self, visitor: Visitor) -> int:
        return self._chat(visitor, stream=False)

    def _chat_stream(self, visitor: Visitor) -> int:
        return self._chat(visitor, stream=True)

    def _health(self, visitor: Visitor) -> int:
        return _request("GET", f"{self.url}/health")[0]

    # --- Staff -----------------------------------------------------------------------------------
    def _some_conversation(self, visitor: Visitor) -> str:
        with self._lock:
            return visitor.rng.choice(self.conversations) if self.conversations else visitor.conversation_id

    def _tickets(self, visitor: Visitor) -> int:
        return _request("GET", f"{self.url}/api/support/tickets?page_size=25", headers=self.staff)[0]

    def _conversations(self, visitor: Visitor) -> int:
        status = visitor.rng.choice(["", "&status=needs_review", "&source=web", "&escalated=false"])
        return _request("GET", f"{self.url}/api/support/conversations?page_size=50{status}", headers=self.staff)[0]

    def _search(self, visitor: Visitor) -> int:
        word = visitor.rng.choice(WORDS)
        return _request("GET", f"{self.url}/api/support/conversations?q={word}", headers=self.staff)[0]

    def _staff_transcript(self, visitor: Visitor) -> int:
        url = f"{self.url}/api/support/conversations/{self._some_conversation(visitor)}"
        return _request("GET", url, headers=self.staff)[0]

    def _analytics(self, visitor: Visitor) -> int:
        return _request("GET", f"{self.url}/api/support/analytics?days=30", headers=self.staff)[0]

    def _status_change(self, visitor: Visitor) -> int:
        url = f"{self.url}/api/support/conversations/{self._some_conversation(visitor)}"
        body = {"status": visitor.rng.choice(["open", "in_progress", "needs_review"])}
        return _request("PATCH", url, body, self.staff)[0]


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "?"
