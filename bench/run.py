"""Benchmarks entry point: ``make bench`` runs ``python bench/run.py``.

Starts the embedded stack (SecantusDB + Firebase Auth emulator) in a temporary
directory, runs the tenancy overhead / isolation benchmark and prints the
figures (see bench/README.md). Not a test: nothing asserts, targets are
reported as met or missed.

    python bench/run.py                      # 10, 50, 100, 200 accounts, one run
    python bench/run.py --runs 3             # three runs, medians over runs
    python bench/run.py --max-accounts 50    # a quicker run
    python bench/run.py --json out.json      # raw samples and summaries
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

OVERHEAD_TARGET_MS = 3.0
RATIO_TARGET = 1.5
DEFAULT_STEPS = (10, 50, 100, 200)


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-accounts", type=int, default=200,
                        help="largest account count measured (default 200)")
    parser.add_argument("--steps", default=",".join(map(str, DEFAULT_STEPS)),
                        help="account counts to measure, comma-separated (capped by "
                             "--max-accounts, which is always measured)")
    parser.add_argument("--docs-per-account", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=100,
                        help="requests per endpoint per round (default 100)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--runs", type=int, default=1,
                        help="independent runs (fresh database each); medians over runs")
    parser.add_argument("--with-plugins", action="store_true",
                        help="also load the installed synergyhub.plugins entry points")
    parser.add_argument("--json", type=Path, help="write raw samples and summaries here")
    parser.add_argument("--data-dir", type=Path,
                        help="embedded stack data dir (default: a fresh temporary one)")
    return parser.parse_args()


def main() -> int:
    if "--serve" in sys.argv[1:]:
        from common import serve

        serve(sys.argv[1:])
        return 0

    args = _parse()
    steps = sorted({s for s in map(int, args.steps.split(",")) if s <= args.max_accounts}
                   | {args.max_accounts})
    from common import embedded_stack, load_average
    from tenancy_overhead import Options, Run, StepResult, summarize, to_json

    options = Options(steps=steps, docs_per_account=args.docs_per_account,
                      samples=args.samples, rounds=args.rounds, warmup=args.warmup,
                      with_plugins=args.with_plugins)
    print(f"bench: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
          f"{platform.machine()}, python {platform.python_version()}, "
          f"load {load_average()}")
    print(f"bench: steps {steps} accounts x {args.docs_per_account} documents, "
          f"{args.runs} run(s) x {args.rounds} rounds x {args.samples} samples per endpoint")
    started = time.perf_counter()
    runs: list[list[StepResult]] = []
    with tempfile.TemporaryDirectory(prefix="synergyhub-bench-") as tmp:
        data_dir = args.data_dir or Path(tmp) / "stack"
        work_dir = Path(tmp)
        with embedded_stack(data_dir, say=lambda m: print(f"bench: {m}")) as stack:
            for n in range(args.runs):
                print(f"bench: run {n + 1}/{args.runs}")
                runs.append(Run(stack, work_dir, options).execute())
    summary = summarize(runs)
    elapsed = time.perf_counter() - started

    print(f"\nbench: done in {elapsed:.0f} s, load {load_average()}; medians over "
          f"{args.runs} run(s)")
    header = ("accounts", "documents", "api p50", "api p90", "bare p50", "bare p90",
              "overhead", "paired", "in-app", "api ratio", "bare ratio", "users.find/req",
              "IXSCAN")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for s in summary["steps"]:
        print(f"| {s['accounts']} | {s['documents']} | {s['api_p50_median']} | "
              f"{s['api_p90_median']} | {s['bare_p50_median']} | {s['bare_p90_median']} | "
              f"{s['overhead_median']} | {s['overhead_paired_median']} | "
              f"{s['app_overhead_median']} | {s['api_ratio_vs_first_median']} | "
              f"{s['bare_ratio_vs_first_median']} | {s['users_find_per_request_median']} "
              f"(max {s['users_finds_per_request_max']}) | {s['ixscan_all_runs']} |")
    if summary["steps"]:
        first, last = summary["steps"][0], summary["steps"][-1]
        overhead = first["overhead_median"]
        ratio = last["api_ratio_vs_first_median"]
        users = max(s["users_finds_per_request_max"] for s in summary["steps"])
        verdict = "met" if overhead <= OVERHEAD_TARGET_MS else "MISSED"
        print(f"\n(a) overhead at {first['accounts']} accounts: {overhead} ms "
              f"(target <= {OVERHEAD_TARGET_MS}): {verdict};"
              f" users.find per request max {users} (target <= 1): "
              f"{'met' if users <= 1 else 'MISSED'}")
        print(f"(b) p50 ratio {last['accounts']}/{first['accounts']} accounts: {ratio} "
              f"(target <= {RATIO_TARGET}): {'met' if ratio <= RATIO_TARGET else 'MISSED'}")
        print(f"plan at {last['accounts']} accounts: {last['plan']}")
        print(f"inside the overhead at {first['accounts']} accounts: users.find round trip "
              f"p50 {first['users_find_ms_median']} ms; documents.find p50 api "
              f"{first['api_documents_find_ms_median']} / bare "
              f"{first['bare_documents_find_ms_median']} ms")
    if args.json:
        args.json.write_text(json.dumps(to_json(runs), indent=1, default=str))
        print(f"bench: raw figures in {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
