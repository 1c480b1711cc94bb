"""Schemathesis against /api/schema/ on a production-configured gunicorn, as staff and as the widget.

    python bench/fuzz.py --max-examples 25 --seed 20260220        # CI size (make fuzz)
    python bench/fuzz.py --max-examples 150 --min-requests 1000   # the long run (make bench)

Passes when schemathesis finds no failure of the checks below in either persona and the server's
own JSON request log shows no 5xx. The request count is read from that log (every request the
fuzzer made, including the ones it shrank), so `--min-requests` checks what really hit the API.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness

# What "holds under hostile input" means here: no 5xx, every status and body as documented, bad
# input refused. Not negative_data_rejection: text fields deliberately accept a JSON number
# (a site's numeric user id) and store it as text, which that check counts as a violation.
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "missing_required_header",
        "unsupported_method",
        "ignored_auth",
    ]
)


def seed_data() -> dict[str, Any]:
    """A staff token, the widget's conversation and some conversations with messages for staff to page through."""
    from support import services
    from support.models import Status

    token = harness.staff_token()
    ids = []
    for i in range(6):
        conversation, _ = services.conversation_create(source="web", page_url=f"https://example.com/{i}")
        services.message_log(
            conversation=conversation,
            turns=[
                services.Turn(role="user", content=f"question {i}", input_tokens=10),
                services.Turn(role="assistant", content=f"answer {i}", output_tokens=20),
            ],
            is_escalation=i % 2 == 0,
        )
        if i == 5:
            services.conversation_update(conversation=conversation, actor=None, changes={"status": Status.OPEN})
        ids.append(str(conversation.pk))
    widget, widget_token = services.conversation_create(source="web")
    return {"staff_token": token, "ids": ids, "widget_id": str(widget.pk), "widget_token": widget_token}


def warm_schema(url: str, requests: int = 8) -> None:
    """Generate the schema in the workers first: a cold worker takes over schemathesis's fixed 10-second
    schema-loading timeout on a loaded machine (measured: ~10 s), and the first persona failed on that.
    One request at a time: drf-spectacular's extension loading is not thread-safe (concurrent first
    requests in one worker raised AttributeError in plumbing._load_class)."""
    import urllib.request

    for _ in range(requests):
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/api/schema/", timeout=120) as response:
            response.read()


def run_persona(
    persona: str, server: harness.Server, data: dict[str, Any], args: argparse.Namespace, workdir: Path
) -> int:
    env = dict(
        os.environ,
        SCHEMATHESIS_HOOKS="bench.fuzz_hooks",
        PYTHONPATH=str(harness.ROOT),
        FUZZ_PERSONA=persona,
        FUZZ_CONVERSATION_IDS=",".join(data["ids"]),
        FUZZ_WIDGET_CONVERSATION_ID=data["widget_id"],
        FUZZ_WIDGET_TOKEN=data["widget_token"],
    )
    header = f"Authorization: Token {data['staff_token']}" if persona == "staff" else "Accept: application/json"
    command = [
        str(harness.BIN / "schemathesis"),
        "run",
        f"{server.url}/api/schema/",
        "--checks",
        CHECKS,
        "--max-examples",
        str(args.max_examples),
        "--seed",
        str(args.seed),
        "--header",
        header,
        "--workers",
        "2",
        "--phases",
        "examples,coverage,fuzzing",
        "--request-timeout",
        "30",
        "--no-shrink" if args.no_shrink else "--continue-on-failure",
        "--report",
        "junit",
        "--report-junit-path",
        str(workdir / f"schemathesis-{persona}.xml"),
    ]
    print(f"\n--- schemathesis as {persona} ---", flush=True)
    return subprocess.run(command, cwd=harness.ROOT, env=env, timeout=args.timeout).returncode


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-examples", type=int, default=25, help="per operation and persona")
    parser.add_argument("--seed", type=int, default=20260220)
    parser.add_argument("--min-requests", type=int, default=0, help="fail if fewer requests reached the API")
    parser.add_argument("--no-shrink", action="store_true", help="faster; failures are reported unshrunk")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds per persona")
    parser.add_argument("--json", type=Path, help="write the figures here")
    return parser.parse_args(argv)


def _fuzz_server(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Both personas against gunicorn on a fresh seeded database: API statuses per persona, exit codes, the log."""
    env = harness.leg_environment(workdir, mongodb_uri=os.environ.get("MONGODB_URI", ""))
    env.pop("ROOT_URLCONF")  # the production URLconf: nothing bench-only is fuzzed
    harness.prepare_database(env)
    os.environ.update(env)
    import django

    django.setup()
    data = seed_data()
    statuses: collections.Counter[int] = collections.Counter()
    per_persona: dict[str, dict[int, int]] = {}
    results = {}
    with harness.gunicorn(env, workdir) as server:
        warm_schema(server.url)
        for persona in ("staff", "widget"):
            before = len(server.log_lines())
            results[persona] = run_persona(persona, server, data, args, workdir)
            lines = server.log_lines()[before:]
            api = [line for line in lines if line["path"].startswith("/api/support/")]
            statuses.update(line["status"] for line in api)
            per_persona[persona] = dict(sorted(collections.Counter(line["status"] for line in api).items()))
            print(f"{persona}: {len(api)} requests to /api/support/, schemathesis exit {results[persona]}")
        log_text = server.log_text()
    return {"statuses": statuses, "per_persona": per_persona, "results": results, "log_text": log_text}


def _failures(figures: dict[str, Any], min_requests: int) -> list[str]:
    server_errors = figures["server_errors"]
    tracebacks = figures["tracebacks_in_server_log"]
    total = figures["requests"]
    return [
        reason
        for reason, bad in (
            ("schemathesis reported failures", any(figures["schemathesis_exit"].values())),
            (f"{server_errors} responses were 5xx", server_errors),
            (f"{tracebacks} tracebacks in the server log", tracebacks),
            (f"only {total} requests (< {min_requests})", total < min_requests),
            *(
                (f"no 2xx as {persona}: its credentials never worked", not any(200 <= c < 300 for c in codes))
                for persona, codes in figures["statuses_by_persona"].items()
            ),
        )
        if bad
    ]


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rezvo-fuzz-") as tmp:
        run = _fuzz_server(args, Path(tmp))
    statuses, results = run["statuses"], run["results"]
    figures = {
        "requests": sum(statuses.values()),
        "server_errors": sum(n for status, n in statuses.items() if status >= 500),
        "tracebacks_in_server_log": run["log_text"].count("Traceback (most recent call last)"),
        "statuses": dict(sorted(statuses.items())),
        "statuses_by_persona": run["per_persona"],
        "schemathesis_exit": results,
        "max_examples": args.max_examples,
        "seed": args.seed,
        "seconds": round(time.monotonic() - started, 1),
        "database": "mongodb" if os.environ.get("MONGODB_URI") else "sqlite",
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    failed = _failures(figures, args.min_requests)
    for reason in failed:
        print(f"FUZZ FAILED: {reason}", file=sys.stderr)
    # A closing line CI can read: the personas' runs, each failed if anything above failed for it.
    bad = sum(1 for code in results.values() if code) or (1 if failed else 0)
    print(f"fuzz: {len(results) - bad} passed, {bad} failed")
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
