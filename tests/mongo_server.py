"""Start a throwaway SecantusDB server for the MongoDB leg of the test suite.

SecantusDB is a MongoDB-compatible server written in Python (WiredTiger
storage) that ships as a PyPI package, so CI and developer machines can run
the MongoDB tests without a real ``mongod``.

Library use (e.g. from a session-scoped pytest fixture)::

    from tests.mongo_server import secantus_server

    with secantus_server() as uri:  # "mongodb://127.0.0.1:<port>/"
        ...

Command-line use::

    python -m tests.mongo_server [--standalone] [--in-memory] -- <command...>

If ``MONGODB_URI`` is already set the command simply runs against that
server; otherwise a SecantusDB server is started, the command runs with
``MONGODB_URI`` pointing at it, and the server is stopped afterwards. The
exit status is the command's.

The command also gets ``MONGODB_SERVER_KIND``: ``secantus`` for SecantusDB
(started here, or a pre-set ``MONGODB_URI`` whose ``buildInfo`` carries
``secantusVersion``), ``mongodb`` for any other server. A value already in
the environment is kept. Tests marked ``secantus_differs`` key off it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import IO, NoReturn
from urllib.parse import urlsplit, urlunsplit

from pymongo import MongoClient
from pymongo.errors import PyMongoError

__all__ = [
    "KIND_ENV",
    "SecantusStartError",
    "find_secantusd",
    "main",
    "secantus_server",
    "server_kind",
]

KIND_ENV = "MONGODB_SERVER_KIND"

EXECUTABLE = "secantusd-py"
HOST = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_GRACE = 10.0
LOG_TAIL_LINES = 40
_PORT_ATTEMPTS = 3


class SecantusStartError(RuntimeError):
    """The SecantusDB server could not be started (or did not answer ping)."""


def find_secantusd() -> str:
    """Return the path of ``secantusd-py``: next to the interpreter, else on PATH."""
    names = [EXECUTABLE, f"{EXECUTABLE}.exe"] if os.name == "nt" else [EXECUTABLE]
    bin_dir = Path(sys.executable).parent
    for name in names:
        candidate = bin_dir / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(EXECUTABLE)
    if found:
        return found
    raise SecantusStartError(
        f"{EXECUTABLE} not found next to {sys.executable} or on PATH; "
        "install the SecantusDB package (see requirements-dev.txt)."
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _log_tail(log_path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no server log)"
    tail = text.splitlines()[-lines:]
    return "\n".join(tail) if tail else "(server log is empty)"


# On Linux the server is exec'd through this tiny shim, which asks the kernel
# to SIGTERM it when the process that started it dies (prctl PR_SET_PDEATHSIG)
# so a killed pytest/CI run leaves no orphaned server. If that parent is
# already gone (reparented) the shim exits instead of starting the server.
_PDEATHSIG_SHIM = (
    "import ctypes, os, sys\n"
    "ctypes.CDLL(None).prctl(1, 15, 0, 0, 0)\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit(1)\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


def _ping(uri: str) -> bool:
    client: MongoClient[dict[str, object]] = MongoClient(
        uri,
        directConnection=True,
        serverSelectionTimeoutMS=500,
        connectTimeoutMS=500,
    )
    try:
        client.admin.command("ping")
    except PyMongoError:
        return False
    finally:
        client.close()
    return True


def server_kind(uri: str, timeout: float = 5.0) -> str | None:
    """``"secantus"`` or ``"mongodb"`` for the server at ``uri``; None if unreachable."""
    client: MongoClient[dict[str, object]] = MongoClient(uri, serverSelectionTimeoutMS=int(timeout * 1000))
    try:
        info = client.admin.command("buildInfo")
    except PyMongoError:
        return None
    finally:
        client.close()
    return "secantus" if "secantusVersion" in info else "mongodb"


def _stop(proc: subprocess.Popen[bytes], grace: float = STOP_GRACE) -> None:
    """SIGTERM the server's process group, then SIGKILL it after ``grace`` s."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGTERM)
        else:  # pragma: no cover
            proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            if os.name == "posix":
                os.killpg(proc.pid, signal.SIGKILL)
            else:  # pragma: no cover
                proc.kill()
        proc.wait()


def _launch(
    executable: str,
    port: int,
    workdir: Path,
    storage: str,
    log_file: IO[bytes],
    *,
    standalone: bool,
    log_level: str,
) -> subprocess.Popen[bytes]:
    config = workdir / "secantusd.toml"
    config.touch()  # an explicit (empty) config disables auto-discovery
    cmd = [
        executable,
        "--config",
        str(config),
        "--host",
        HOST,
        "--port",
        str(port),
        "--storage-path",
        storage,
        "--log-level",
        log_level,
    ]
    if standalone:
        cmd.append("--standalone")
    if sys.platform.startswith("linux"):
        cmd = [sys.executable, "-c", _PDEATHSIG_SHIM, str(os.getpid()), *cmd]
    posix = os.name == "posix"
    return subprocess.Popen(
        cmd,
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        # Own session: a Ctrl-C in the terminal does not reach the server
        # directly; it is stopped in order by the code that started it.
        start_new_session=posix,
    )


def _wait_ready(proc: subprocess.Popen[bytes], uri: str, log_path: Path, timeout: float) -> bool:
    """Wait until ``uri`` answers ping; False if the process exited early."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            return False
        if _ping(uri):
            return True
        if time.monotonic() >= deadline:
            raise SecantusStartError(
                f"SecantusDB at {uri} did not answer ping within {timeout:.0f} s. "
                f"Last lines of {log_path.name}:\n{_log_tail(log_path)}"
            )
        time.sleep(0.1)


@contextlib.contextmanager
def secantus_server(
    *,
    standalone: bool = False,
    in_memory: bool = False,
    timeout: float = START_TIMEOUT,
    log_level: str = "WARNING",
) -> Iterator[str]:
    """Run SecantusDB on a free 127.0.0.1 port and yield its URI.

    By default the server advertises a one-node replica set named
    ``secantus`` with an oplog, so multi-document transactions work.
    ``standalone`` drops that advertisement: drivers see a standalone server
    (django-mongodb-backend's ``features._supports_transactions`` is False),
    although SecantusDB itself still accepts transactions, unlike mongod.
    Data lives in a temporary directory (or SecantusDB's ``:memory:`` mode
    when ``in_memory``) that is removed on exit, together with the server
    log (``secantusd.log``), whose tail is included in start-up errors.
    On Linux the server also gets SIGTERM if the thread that entered this
    context dies, so enter it from a thread that outlives its use (pytest
    session fixtures run in the main thread).
    """
    executable = find_secantusd()
    workdir = Path(tempfile.mkdtemp(prefix="secantusdb-"))
    log_path = workdir / "secantusd.log"
    proc: subprocess.Popen[bytes] | None = None
    try:
        with log_path.open("ab") as log_file:
            for attempt in range(1, _PORT_ATTEMPTS + 1):
                port = _free_port()
                uri = f"mongodb://{HOST}:{port}/"
                storage = ":memory:" if in_memory else str(workdir / "data")
                proc = _launch(
                    executable,
                    port,
                    workdir,
                    storage,
                    log_file,
                    standalone=standalone,
                    log_level=log_level,
                )
                if _wait_ready(proc, uri, log_path, timeout):
                    break
                # Exited early. If another process took the port between
                # _free_port() and the server's bind, retry on a new port.
                port_taken = "Address already in use" in _log_tail(log_path, 5)
                if not port_taken or attempt == _PORT_ATTEMPTS:
                    raise SecantusStartError(
                        f"SecantusDB exited with status {proc.returncode} "
                        f"during start-up. Last lines of {log_path.name}:\n"
                        f"{_log_tail(log_path)}"
                    )
            yield uri
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)


# --------------------------------------------------------------------- CLI


class _Interrupted(BaseException):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _redact(uri: str) -> str:
    """Hide the password of ``user:password@host`` URIs when printing."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "<unparsable MONGODB_URI>"
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _terminal_shares_group() -> bool:
    """True if a terminal Ctrl-C also reached our children (same fg group)."""
    try:
        return os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp()
    except OSError:
        return False


def _exit_status(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def _run_command(command: Sequence[str], env: dict[str, str]) -> int:
    """Run ``command``, forwarding SIGINT/SIGTERM to it; return its status."""
    try:
        child = subprocess.Popen(list(command), env=env)
    except OSError as exc:
        print(f"mongo_server: cannot run {command[0]!r}: {exc}", file=sys.stderr)
        return 127

    def forward(signum: int, frame: FrameType | None) -> None:
        # A terminal Ctrl-C already went to the child (same process group);
        # anything else (kill -INT/-TERM of this wrapper) is passed on once.
        if signum == signal.SIGINT and _terminal_shares_group():
            return
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    try:
        return _exit_status(child.wait())
    finally:
        # The command is done: finish cleanup without being interrupted.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog="mongo_server.py",
        description=(
            "Run COMMAND with MONGODB_URI pointing at a MongoDB server: the "
            "one in $MONGODB_URI if set, else a temporary SecantusDB server."
        ),
        usage="%(prog)s [-h] [--standalone] [--in-memory] -- COMMAND [ARG ...]",
    )
    parser.add_argument(
        "--standalone",
        action="store_true",
        help="start SecantusDB as a standalone server (no replica set, so no transactions)",
    )
    parser.add_argument(
        "--in-memory",
        action="store_true",
        help="use SecantusDB's ':memory:' storage instead of a temp dir",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=START_TIMEOUT,
        help="seconds to wait for the server to answer ping (default: %(default)s)",
    )
    args_list = list(argv)
    if "--" in args_list:
        split = args_list.index("--")
        options, command = args_list[:split], args_list[split + 1 :]
    else:
        options, command = [], args_list
        while command and command[0].startswith("-"):
            options.append(command.pop(0))
    args = parser.parse_args(options)
    if not command:
        parser.error("no command given (put it after '--')")
    return args, command


def main(argv: Sequence[str] | None = None) -> int:
    args, command = _parse_args(sys.argv[1:] if argv is None else argv)
    env = dict(os.environ)

    existing = env.get("MONGODB_URI", "").strip()
    if existing:
        if not env.get(KIND_ENV):
            kind = server_kind(existing)
            if kind:
                env[KIND_ENV] = kind
        shown = env.get(KIND_ENV) or "kind unknown: not reachable"
        print(f"Using existing MongoDB server from MONGODB_URI: {_redact(existing)} ({shown})")
        sys.stdout.flush()
        return _run_command(command, env)

    def interrupted(signum: int, frame: FrameType | None) -> NoReturn:
        raise _Interrupted(signum)

    # Until the command runs, a signal aborts start-up; the context manager
    # still stops the server and removes its directory.
    previous = {sig: signal.signal(sig, interrupted) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with secantus_server(standalone=args.standalone, in_memory=args.in_memory, timeout=args.timeout) as uri:
            mode = "standalone" if args.standalone else "replica set 'secantus'"
            print(f"SecantusDB started at {uri} ({mode})")
            sys.stdout.flush()
            env["MONGODB_URI"] = uri
            env[KIND_ENV] = "secantus"
            status = _run_command(command, env)
    except _Interrupted as exc:
        print("mongo_server: interrupted; SecantusDB stopped", file=sys.stderr)
        return 128 + exc.signum
    except SecantusStartError as exc:
        print(f"mongo_server: {exc}", file=sys.stderr)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status


if __name__ == "__main__":
    sys.exit(main())
