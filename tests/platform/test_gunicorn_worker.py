"""rezvo_support.gunicorn_worker: a client slow to close its connection must not hold up the next request.

gunicorn 26+'s gthread worker waits on its main thread (up to 2 s) for each client to close its side of a
finished connection; nothing is accepted meanwhile. Our worker leaves that wait to its poller."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = """
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """(port, worker pid) of gunicorn with the shipped worker class, keep-alive off, one worker."""
    (tmp_path / "tiny_app.py").write_text(APP)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "gunicorn", "-k", "rezvo_support.gunicorn_worker.ThreadWorker", "-w", "1"]
    command += ["--threads", "4", "--keep-alive", "0", "-b", f"127.0.0.1:{port}", "--pythonpath", str(ROOT)]
    command += ["--control-socket", str(tmp_path / "gunicorn.ctl"), "tiny_app:app"]
    # Started in tmp_path, so gunicorn does not read the project's gunicorn.conf.py (it loads Django).
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
            if children and _answers(port):
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"gunicorn did not start: {process.stderr.read() if process.stderr else ''}")
        yield port, int(children[0])
    finally:
        process.terminate()
        process.wait(timeout=30)


def _answers(port: int, timeout: float = 1.0) -> bool:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        connection.request("GET", "/")
        ok = connection.getresponse().read() == b"ok"
        connection.close()
        return ok
    except OSError:
        return False


def _held_open(port: int) -> tuple[socket.socket, bytes]:
    """A request whose client reads the whole answer and then keeps its socket open."""
    held = socket.create_connection(("127.0.0.1", port))
    held.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    held.settimeout(5)
    answer = b""
    while not answer.endswith(b"ok"):
        answer += held.recv(4096)
    return held, answer


def test_the_next_request_is_answered_while_a_client_keeps_its_finished_connection_open(
    server: tuple[int, int],
) -> None:
    port, _worker = server
    held, answer = _held_open(port)
    try:
        assert answer.startswith(b"HTTP/1.1 200")
        # gunicorn's own worker would take this request only once the held socket closed or 2 s passed.
        assert _answers(port, timeout=1.0)
        assert held.recv(4096) == b"", "the answer ends with the server's FIN, as before"
    finally:
        held.close()


def test_a_half_closed_connection_is_released_when_its_client_closes(server: tuple[int, int]) -> None:
    port, worker = server

    def open_sockets() -> int:
        count = 0
        for fd in Path(f"/proc/{worker}/fd").iterdir():
            try:
                count += os.readlink(fd).startswith("socket:")
            except FileNotFoundError:  # closed between the listing and the read: not open any more
                continue
        return count

    before = open_sockets()
    held = [_held_open(port)[0] for _ in range(5)]
    for sock in held:
        sock.close()
    deadline = time.monotonic() + 5
    while open_sockets() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert open_sockets() <= before


_FREEZE_THEN_MAKE_GARBAGE = """
import gc
from rezvo_support.gunicorn_worker import objects_freeze

app = [[] for _ in range(600_000)]  # what the master loaded
gc.collect()
objects_freeze()
full = []
gc.callbacks.append(lambda phase, info: phase == "stop" and info["generation"] == 2 and full.append(1))
class Node:
    pass
for _ in range(30):  # a worker's requests: cycles still in use at young collections reach the oldest generation
    in_flight = []
    for _ in range(1_000):
        node = Node()
        node.me = node
        in_flight.append(node)
    gc.collect(1)
    del in_flight
more = [[] for _ in range(5_000)]
print(len(full))
"""


def test_a_worker_still_runs_full_collections_after_the_master_froze_its_objects() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _FREEZE_THEN_MAKE_GARBAGE], capture_output=True, text=True, timeout=60, check=True
    )
    assert int(done.stdout) >= 1, "cyclic garbage piles up until a full collection"
