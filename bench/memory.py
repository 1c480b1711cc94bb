"""Worker memory (`make bench-memory`, and part of `make bench`): RSS of each gunicorn worker after start
and after 1,000 ... 5,000 mixed requests, against issue 13's targets, plus each heavy package's import cost.

gunicorn runs with the shipped gunicorn.conf.py (DEBUG off) on a fresh SQLite database, Claude being
tests/fakes/fake_claude.py, and only the runtime requirements importable, as on a production host
(bench/memory_packages.py; --all-installed: the dev venv as it is, ~10 MiB more a worker). The mix is the
widget's and staff's: conversations started, pairs logged with and without an Idempotency-Key, the widget
config, transcripts, chat turns (JSON and streamed), the review queue, lists, search, analytics, status
changes, /health. Between checkpoints the load stops, so every worker's RSS is read at rest. RSS counts
pages shared with the master (issue 13's figure); PSS splits them among the processes sharing them, so it
shows what preloading saves.

What a worker holds (measured with this bench and /proc/<pid>/smaps, sys._debugmallocstats(),
malloc_info() and sqlite3_status64() read inside the workers; --set / --leave-out to compare):
- the app and its URLconf ~56 MiB, loaded by the master (preload_app);
- the anthropic SDK ~50 MiB, imported by the master too when Claude is configured (GUNICORN_PRELOAD_SDK):
  ~32 MiB of Python objects (3,264 modules: 1,935 of them anthropic.types.beta, pulled in by the package's
  own __init__ through types.shared, so no narrower import of the official package avoids them; ~1,500
  pydantic model classes, ~900 TypedDicts, 5,300 FieldInfo), ~12 MiB of malloc'd dicts and type objects,
  pydantic_core's library. Its pydantic schemas are already deferred (the SDK's DEFER_PYDANTIC_BUILD).
  preloaded, after 5,000 requests: max RSS 144.2 MiB, PSS ~72; imported by each worker: 151.0, PSS ~113;
- then ~30-35 MiB of growth over the first ~1,000 requests a worker, mostly levelled off by then: SQLite
  (one connection a thread: schema, page cache, prepared statements: 16 MiB with Python's 128 statements a
  connection, 5-6 MiB with 16), the code pages of pydantic_core and libcrypto once used (~7 MiB, shared
  file pages), pymalloc arenas kept by a few live objects after the 16 threads' peak (~10 MiB free inside
  them) and glibc's free lists (~4 MiB; malloc_trim returns < 1 MiB), and ~5 MiB of objects made on first use.
Compared (5,000 requests, 5 workers; 166.0 MiB before issue 13's second round, 149.8 with --all-installed):
8 threads instead of 16 ~5 MiB less; one malloc arena instead of two
~2 MiB less (noise); PYTHONMALLOC=malloc ~6 MiB more; -OO would save ~3 MiB of the SDK's docstrings.

    python bench/memory.py                           # prints; --output docs/benchmarks.md writes its section
    python bench/memory.py --requests 2000 --checkpoint-every 500 --no-imports
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness
from bench.memory_imports import app_cost, import_costs, table
from bench.memory_load import Checkpoint, MixedLoad, worker_memory
from bench.memory_packages import runtime_only
from tests.fakes.fake_claude import FakeClaude, Reply

SECTION = "## Worker memory"
#: Issue 13's targets, MiB per worker.
AFTER_START_MIB = 120.0
AFTER_LOAD_MIB = 130.0


def run_server(args: argparse.Namespace) -> list[Checkpoint]:
    """gunicorn on a fresh SQLite database; memory read after start and at every checkpoint."""
    with tempfile.TemporaryDirectory(prefix="rezvo-memory-") as tmp:
        workdir = Path(tmp)
        env = harness.leg_environment(workdir, redis_url=harness.redis_url_if_up())
        env.pop("ROOT_URLCONF")  # the app's own URLconf: the bench's ceiling view is not part of a worker
        env.update(dict(setting.split("=", 1) for setting in args.set))
        print("Migrating a fresh SQLite database...", flush=True)
        harness.prepare_database(env)
        token = MixedLoad.staff_token(env)
        if not args.all_installed:  # the server only: migrating and the token above may use the dev tools
            env = runtime_only(env, workdir)
        reply = Reply(text="You can change a booking from the Bookings page.", chunk_delay=0.002)
        with FakeClaude(port=args.port + 1 if args.port else 0, default=reply) as fake:
            env.update(ANTHROPIC_API_KEY="bench-fake-key-not-a-secret", ANTHROPIC_BASE_URL=fake.base_url)
            print("Starting gunicorn (gunicorn.conf.py, DEBUG off)...", flush=True)
            with harness.gunicorn(env, workdir, port=args.port) as server:
                time.sleep(2)  # every worker is up (the harness waits for them); let them settle
                checkpoints = [Checkpoint(0, worker_memory(server))]
                load = MixedLoad(server.url, token, clients=args.clients, seed=args.seed, leave_out=args.leave_out)
                done = 0
                while done < args.requests:
                    batch = min(args.checkpoint_every, args.requests - done)
                    load.run(batch)
                    done += batch
                    checkpoints.append(Checkpoint(done, worker_memory(server), dict(load.statuses)))
                return checkpoints


def memory_lines(checkpoints: list[Checkpoint], requests: int) -> tuple[list[str], bool]:
    """The per-worker table (RSS, and PSS in brackets), each checkpoint's max, and PASS/FAIL per target."""
    pids = sorted({pid for checkpoint in checkpoints for pid in checkpoint.workers})
    header = "| requests | " + " | ".join(f"worker {n + 1}" for n in range(len(pids))) + " | max RSS |"
    lines = [
        "RSS of each worker in MiB (PSS in brackets), at rest between batches of mixed requests:",
        "",
        header,
        "|---:|" + "---:|" * (len(pids) + 1),
    ]
    for checkpoint in checkpoints:
        cells = [f"{m.rss_mib:.1f} ({m.pss_mib:.1f})" if (m := checkpoint.workers.get(pid)) else "-" for pid in pids]
        lines.append(f"| {checkpoint.requests:,} | " + " | ".join(cells) + f" | {checkpoint.max_rss_mib:.1f} |")
    start, last = checkpoints[0], checkpoints[-1]
    thousand = next((c for c in checkpoints if c.requests >= 1000), last)
    passed_start = start.max_rss_mib < AFTER_START_MIB
    passed_load = last.max_rss_mib < AFTER_LOAD_MIB
    lines += [
        "",
        f"- after start: max {start.max_rss_mib:.1f} MiB (target < {AFTER_START_MIB:.0f}): "
        + ("PASS" if passed_start else "FAIL"),
        f"- after {thousand.requests:,} requests: max {thousand.max_rss_mib:.1f} MiB",
        f"- after {requests:,} requests: max {last.max_rss_mib:.1f} MiB (target < {AFTER_LOAD_MIB:.0f}): "
        + ("PASS" if passed_load else "FAIL"),
        f"- answers by status over the run: {', '.join(f'{k}: {v:,}' for k, v in sorted(last.statuses.items()))}",
    ]
    return lines, passed_start and passed_load


def import_lines(progress: bool, *, all_installed: bool) -> list[str]:
    mib, ms, modules = app_cost(all_installed=all_installed)
    return [
        "Import cost of each heavy package, each in a fresh interpreter (`bench/memory_imports.py`). A worker's",
        f"own imports at start (WSGI app + URLconf): {mib:.1f} MiB RSS, {ms:.0f} ms, {modules:,} modules.",
        "",
        *table(import_costs(progress, all_installed=all_installed)),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--checkpoint-every", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (enough to busy every thread)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument(
        "--port", type=int, default=0, help="gunicorn's port (the fake Claude's is the next); 0: free ones"
    )
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="extra server env (compare)")
    parser.add_argument("--leave-out", action="append", default=[], metavar="ACTION", help="drop from the mix")
    parser.add_argument("--no-imports", action="store_true", help="skip the import-cost table")
    parser.add_argument("--all-installed", action="store_true", help="let the server import the dev tools too")
    parser.add_argument("--output", type=Path, help="write the result into this file's section")
    args = parser.parse_args()
    machine = harness.machine_description() + (
        "; the server with every installed package (--all-installed)"
        if args.all_installed
        else "; the server with the runtime requirements only, as a production host (bench/memory_packages.py)"
    )
    print(machine, flush=True)
    checkpoints = run_server(args)
    lines, passed = memory_lines(checkpoints, args.requests)
    print("\n".join(lines), flush=True)
    if not args.no_imports:
        imports = import_lines(progress=True, all_installed=args.all_installed)
        print("\n".join(imports), flush=True)
        lines += ["", *imports]
    if args.output:
        harness.report_section_write(
            args.output, title=SECTION, command="make bench-memory", lines=[machine, "", *lines], passed=passed
        )
    print(f"\nWorker memory: {'PASS' if passed else 'FAIL'}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
