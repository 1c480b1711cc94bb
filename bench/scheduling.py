"""CPU time and CPU waits of the bench's server processes, read from /proc (bench/polling.py)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def database_pid() -> int | None:
    """The local database server of $MONGODB_URI (SecantusDB, started by main()), found by the port on its
    command line; None on SQLite, which runs inside the workers."""
    uri = os.environ.get("MONGODB_URI", "")
    port = uri.rsplit(":", 1)[-1].strip("/").encode() if uri.count(":") >= 2 else b""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline") if port else []:
        with contextlib.suppress(OSError):
            args = cmdline.read_bytes().split(b"\0")
            if b"--port" in args and port in args and any(b"secantusd" in arg for arg in args):
                return int(cmdline.parent.name)
    return None


def waits(pids: list[int]) -> dict[str, float]:
    """Per thread of `pids` (schedstat): the seconds it has waited for a CPU so far, runnable but not run (the
    CPU it wanted and the machine did not give it: a busy neighbour, not our code)."""
    found = {}
    for pid in pids:
        for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                found[f"{pid}/{stat.parent.name}"] = int(stat.read_text().split()[1]) / 1e9
    return found


def waited_since(before: dict[str, float], after: dict[str, float]) -> float:
    """The wait summed over the threads alive at the end, each from its figure at the start (0 for a thread
    started since). A thread that ended meanwhile is left out, so the sum never goes negative (SecantusDB
    starts a thread a connection; the workers' request threads live as long as their process)."""
    return round(sum(now - before.get(thread, 0.0) for thread, now in after.items()), 2)


def cpu_seconds(pids: list[int]) -> float:
    """CPU seconds used so far by `pids`, their ended threads included (/proc/<pid>/stat)."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total
