"""Kernel overhead and isolation from other tenants' volume, on the embedded server.

One run:

1. a fresh database on the embedded SecantusDB; one Solution, the *home*
   account and a MEMBER of it (a real Firebase Auth emulator user and token);
   1,000 account-scope documents per account, inserted raw with the grant keys
   ``core.tenancy.rules`` gives them;
2. the app from ``create_app`` served by Hypercorn in a subprocess, plus the
   bare route (see ``common.py``); both answer the same JSON body (checked);
3. for each step of the account count (10, 50, 100, 200 by default): grow the
   database to that many accounts, check the list query's plan with
   ``explain()``, then time sequential requests after a warm-up, alternating
   ``GET /api/v1/accounts/{home}/documents?limit=50`` (authenticated) and the
   bare route in ABBA order, for several rounds.

Figures: p50/p90 of each, the overhead (p50 difference), the MongoDB commands
each authenticated request caused (``users.find`` is identity + principal), and
the ratio of the authenticated p50 at each step to that at the first step.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from common import (
    account_documents,
    create_indexes,
    load_average,
    p50,
    parse_db_header,
    percentile,
    seed_account,
    seed_solution,
    seed_user,
    sign_up,
    start_server,
)

TOKEN_REFRESH_SECONDS = 45 * 60  # emulator ID tokens live one hour


@dataclass
class Options:
    steps: list[int]
    docs_per_account: int = 1000
    samples: int = 100  # per endpoint per round
    rounds: int = 3
    warmup: int = 20  # per endpoint, before each step
    with_plugins: bool = False


@dataclass
class StepResult:
    accounts: int
    documents: int
    seed_seconds: float
    load_before: str
    load_after: str
    plan: str
    plan_uses_ixscan: bool
    plan_has_collscan: bool
    winning_plan: dict[str, Any] = field(default_factory=dict)
    api_ms: list[float] = field(default_factory=list)
    bare_ms: list[float] = field(default_factory=list)
    api_app_ms: list[float] = field(default_factory=list)
    bare_app_ms: list[float] = field(default_factory=list)
    round_overheads: list[float] = field(default_factory=list)
    paired_diffs: list[float] = field(default_factory=list)
    api_commands: dict[str, float] = field(default_factory=dict)
    users_finds_max: int = 0
    api_users_find_ms: list[float] = field(default_factory=list)
    api_docs_find_ms: list[float] = field(default_factory=list)
    bare_docs_find_ms: list[float] = field(default_factory=list)
    bare_commands: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "accounts": self.accounts,
            "documents": self.documents,
            "seed_seconds": round(self.seed_seconds, 1),
            "load": f"{self.load_before} -> {self.load_after}",
            "plan": self.plan,
            "ixscan": self.plan_uses_ixscan,
            "collscan": self.plan_has_collscan,
            "n": len(self.api_ms),
            "api_p50": round(p50(self.api_ms), 2),
            "api_p90": round(percentile(self.api_ms, 90), 2),
            "bare_p50": round(p50(self.bare_ms), 2),
            "bare_p90": round(percentile(self.bare_ms, 90), 2),
            "overhead_p50_diff": round(p50(self.api_ms) - p50(self.bare_ms), 2),
            "overhead_paired_median": round(p50(self.paired_diffs), 2),
            "overhead_by_round": [round(x, 2) for x in self.round_overheads],
            "app_overhead_p50_diff": round(p50(self.api_app_ms) - p50(self.bare_app_ms), 2),
            "api_commands_per_request": self.api_commands,
            "users_finds_per_request_max": self.users_finds_max,
            "bare_commands_per_request": self.bare_commands,
            "users_find_ms_p50": round(p50(self.api_users_find_ms), 2),
            "api_documents_find_ms_p50": round(p50(self.api_docs_find_ms), 2),
            "bare_documents_find_ms_p50": round(p50(self.bare_docs_find_ms), 2),
        }


def _plan_summary(plan: dict[str, Any]) -> str:
    stages = []
    node: dict[str, Any] | None = plan
    while node:
        name = node.get("stage", "?")
        if name == "IXSCAN":
            name += f"({node.get('indexName')})"
        stages.append(name)
        node = node.get("inputStage")
    return " <- ".join(stages)


def _explain(db: Any, keys: list[str]) -> tuple[str, bool, bool, dict[str, Any]]:
    explained = (
        db["documents"].find({"read_keys": {"$in": keys}}).sort([("_id", -1)]).limit(51).explain()
    )
    winning = explained["queryPlanner"]["winningPlan"]
    text = json.dumps(winning)
    stats = db.command(
        "explain",
        {"find": "documents", "filter": {"read_keys": {"$in": keys}}, "sort": {"_id": -1},
         "limit": 51},
        verbosity="executionStats",
    ).get("executionStats", {})
    examined = (f"keys examined {stats.get('totalKeysExamined', '?')}, "
                f"docs examined {stats.get('totalDocsExamined', '?')}")
    return (f"{_plan_summary(winning)}; {examined}", "IXSCAN" in text, "COLLSCAN" in text,
            winning)


def _first_difference(api: dict[str, Any], bare: dict[str, Any]) -> str:
    if api.get("next_cursor") != bare.get("next_cursor"):
        return f"next_cursor {api.get('next_cursor')!r} != {bare.get('next_cursor')!r}"
    a_items, b_items = api.get("items", []), bare.get("items", [])
    if len(a_items) != len(b_items):
        return f"{len(a_items)} items != {len(b_items)} items"
    for i, (x, y) in enumerate(zip(a_items, b_items, strict=True)):
        if x != y:
            keys = sorted(k for k in set(x) | set(y) if x.get(k) != y.get(k))
            return f"item {i}: " + ", ".join(f"{k}: {x.get(k)!r} != {y.get(k)!r}" for k in keys)
    return "?"


class Run:
    def __init__(self, stack: Any, work_dir: Path, options: Options, say: Any = print) -> None:
        from pymongo import MongoClient

        self.stack = stack
        self.work_dir = work_dir
        self.options = options
        self.say = say
        self.database = f"bench_{uuid.uuid4().hex[:8]}"
        self.client: Any = MongoClient(stack.mongo_uri, tz_aware=True)
        self.db = self.client[self.database]
        self.accounts: list[str] = []
        self.solution_id = ""
        self.home = ""
        self.keys: list[str] = []
        self.email = ""
        self.token = ""
        self.token_at = 0.0

    # -- setup -------------------------------------------------------------

    def _grow_to(self, accounts: int) -> float:
        started = time.perf_counter()
        while len(self.accounts) < accounts:
            index = len(self.accounts)
            account_id = seed_account(self.db, self.solution_id, index)
            owner = f"bench-owner-{index}-{uuid.uuid4().hex[:6]}"
            if index:  # every other account has an admin of its own (the home one has ours)
                from core.tenancy.models import Membership, MembershipKind, Role

                seed_user(self.db, owner, f"{owner}@example.test", [Membership(
                    kind=MembershipKind.ACCOUNT, role=Role.ACCOUNT_ADMIN,
                    solution_id=self.solution_id, account_id=account_id)])
            docs = account_documents(self.solution_id, account_id, owner,
                                     self.options.docs_per_account)
            self.db["documents"].insert_many(docs, ordered=False)
            self.accounts.append(account_id)
        return time.perf_counter() - started

    def setup(self) -> None:
        from core.tenancy.directory import principal_from
        from core.tenancy.models import Membership, MembershipKind, Role
        from core.tenancy.rules import principal_read_keys

        create_indexes(self.db)
        self.solution_id = seed_solution(self.db, f"bench-{self.database[-8:]}")
        self.email = f"bench-member-{uuid.uuid4().hex[:8]}@example.test"
        persona = asyncio.run(sign_up(self.stack.firebase_auth_host, self.email))
        self.token, self.token_at = persona.token, time.monotonic()
        self._grow_to(1)
        self.home = self.accounts[0]
        seed_user(self.db, persona.uid, self.email, [Membership(
            kind=MembershipKind.ACCOUNT, role=Role.MEMBER, solution_id=self.solution_id,
            account_id=self.home)])
        principal = principal_from(self.db["users"].find_one({"_id": persona.uid}))
        self.keys = principal_read_keys(principal, solution_id=self.solution_id,
                                        account_id=self.home)

    def _headers(self) -> dict[str, str]:
        if time.monotonic() - self.token_at > TOKEN_REFRESH_SECONDS:
            from core.testing.tenancy import sign_in

            self.token = asyncio.run(sign_in(self.stack.firebase_auth_host, self.email))
            self.token_at = time.monotonic()
        return {"Authorization": f"Bearer {self.token}"}

    # -- measuring ---------------------------------------------------------

    def _check_same_body(self, server: Any) -> None:
        api = server.client.get(f"/api/v1/accounts/{self.home}/documents",
                                params={"limit": 50}, headers=self._headers())
        bare = server.client.get(f"/_bench/bare/{self.home}/documents", params={"limit": 50})
        if api.status_code != 200 or bare.status_code != 200:
            raise RuntimeError(f"status api={api.status_code} {api.text[:300]} "
                               f"bare={bare.status_code} {bare.text[:300]}")
        if api.json() != bare.json():
            raise RuntimeError("the bare route's body differs from the endpoint's: "
                               + _first_difference(api.json(), bare.json()))
        if len(api.json()["items"]) != 50 or not api.json()["next_cursor"]:
            raise RuntimeError("expected a full page of 50 and a next cursor")

    def _measure(self, server: Any, result: StepResult) -> None:
        opts = self.options
        api_path = f"/api/v1/accounts/{self.home}/documents"
        bare_path = f"/_bench/bare/{self.home}/documents"
        params = {"limit": 50}
        client = server.client
        api_counts: Counter[str] = Counter()
        bare_counts: Counter[str] = Counter()
        users_max = 0

        def once(api: bool) -> tuple[float, float, Counter[str], Counter[str]]:
            headers = self._headers() if api else {}
            started = time.perf_counter()
            response = client.get(api_path if api else bare_path, params=params,
                                  headers=headers)
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                raise RuntimeError(f"{response.status_code}: {response.text[:300]}")
            return (elapsed, float(response.headers.get("X-Bench-App-Ms", "nan")),
                    parse_db_header(response.headers.get("X-Bench-Db", "")),
                    parse_db_header(response.headers.get("X-Bench-Db-Us", "")))

        for i in range(opts.warmup):
            once(i % 2 == 0)
            once(i % 2 == 1)
        total = 0
        for _ in range(opts.rounds):
            api_round: list[float] = []
            bare_round: list[float] = []
            for i in range(opts.samples):
                order = (True, False) if i % 2 == 0 else (False, True)
                pair: dict[bool, float] = {}
                for is_api in order:
                    ms, app_ms, counts, micros = once(is_api)
                    docs_ms = micros.get("documents.find", 0) / 1000
                    pair[is_api] = ms
                    if is_api:
                        result.api_ms.append(ms)
                        result.api_app_ms.append(app_ms)
                        api_round.append(ms)
                        api_counts.update(counts)
                        result.api_docs_find_ms.append(docs_ms)
                        if counts.get("users.find"):
                            result.api_users_find_ms.append(micros["users.find"] / 1000)
                        users_max = max(users_max, sum(
                            n for k, n in counts.items() if k.startswith("users.")))
                    else:
                        result.bare_ms.append(ms)
                        result.bare_app_ms.append(app_ms)
                        bare_round.append(ms)
                        bare_counts.update(counts)
                        result.bare_docs_find_ms.append(docs_ms)
                result.paired_diffs.append(pair[True] - pair[False])
                total += 1
            result.round_overheads.append(p50(api_round) - p50(bare_round))
        result.api_commands = {k: round(v / total, 3) for k, v in sorted(api_counts.items())}
        result.bare_commands = {k: round(v / total, 3) for k, v in sorted(bare_counts.items())}
        result.users_finds_max = users_max

    # -- the run -----------------------------------------------------------

    def execute(self) -> list[StepResult]:
        started = time.perf_counter()
        self.setup()
        server = start_server(self.stack, self.database, {self.home: self.keys}, self.work_dir,
                              with_plugins=self.options.with_plugins)
        results: list[StepResult] = []
        try:
            self._check_same_body(server)
            for accounts in self.options.steps:
                seed_seconds = self._grow_to(accounts)
                documents = self.db["documents"].estimated_document_count()
                plan, ixscan, collscan, winning = _explain(self.db, self.keys)
                result = StepResult(accounts, documents, seed_seconds, load_average(), "",
                                    plan, ixscan, collscan, winning_plan=winning)
                self.say(f"  {accounts} accounts / {documents} documents "
                         f"(seeded in {seed_seconds:.1f} s); plan {plan}; "
                         f"load {result.load_before}")
                self._check_same_body(server)
                self._measure(server, result)
                result.load_after = load_average()
                summary = result.summary()
                self.say(f"    api p50 {summary['api_p50']} p90 {summary['api_p90']} | "
                         f"bare p50 {summary['bare_p50']} p90 {summary['bare_p90']} | "
                         f"overhead {summary['overhead_p50_diff']} ms "
                         f"(paired {summary['overhead_paired_median']}, "
                         f"in-app {summary['app_overhead_p50_diff']}) | users.find "
                         f"{summary['users_find_ms_p50']} ms, documents.find api "
                         f"{summary['api_documents_find_ms_p50']} / bare "
                         f"{summary['bare_documents_find_ms_p50']} ms | "
                         f"commands/request {summary['api_commands_per_request']}")
                results.append(result)
        finally:
            server.stop()
            self.client.drop_database(self.database)
            self.client.close()
        self.say(f"  run took {time.perf_counter() - started:.0f} s")
        return results


def summarize(runs: list[list[StepResult]]) -> dict[str, Any]:
    """Medians over runs of the per-run figures, per account-count step."""
    steps: dict[int, list[StepResult]] = {}
    for run in runs:
        for step in run:
            steps.setdefault(step.accounts, []).append(step)
    first = min(steps) if steps else 0
    out: dict[str, Any] = {"steps": []}
    base_api = [p50(s.api_ms) for s in steps.get(first, [])]
    base_bare = [p50(s.bare_ms) for s in steps.get(first, [])]
    for accounts, items in sorted(steps.items()):
        api = [p50(s.api_ms) for s in items]
        bare = [p50(s.bare_ms) for s in items]
        api_ratios = [a / b for a, b in zip(api, base_api, strict=False)]
        bare_ratios = [a / b for a, b in zip(bare, base_bare, strict=False)]
        users = [s.api_commands.get("users.find", 0.0) for s in items]
        out["steps"].append({
            "accounts": accounts,
            "documents": items[0].documents,
            "runs": len(items),
            "api_p50_median": round(p50(api), 2),
            "api_p90_median": round(p50([percentile(s.api_ms, 90) for s in items]), 2),
            "bare_p50_median": round(p50(bare), 2),
            "bare_p90_median": round(p50([percentile(s.bare_ms, 90) for s in items]), 2),
            "overhead_median": round(p50([a - b for a, b in zip(api, bare, strict=True)]), 2),
            "overhead_paired_median": round(p50([p50(s.paired_diffs) for s in items]), 2),
            "app_overhead_median": round(
                p50([p50(s.api_app_ms) - p50(s.bare_app_ms) for s in items]), 2),
            "api_ratio_vs_first_median": round(p50(api_ratios), 3),
            "bare_ratio_vs_first_median": round(p50(bare_ratios), 3),
            "users_find_per_request_median": round(p50(users), 3),
            "users_finds_per_request_max": max(s.users_finds_max for s in items),
            "users_find_ms_median": round(p50([p50(s.api_users_find_ms) for s in items]), 2),
            "api_documents_find_ms_median": round(
                p50([p50(s.api_docs_find_ms) for s in items]), 2),
            "bare_documents_find_ms_median": round(
                p50([p50(s.bare_docs_find_ms) for s in items]), 2),
            "plan": items[-1].plan,
            "ixscan_all_runs": all(s.plan_uses_ixscan and not s.plan_has_collscan for s in items),
            "seed_seconds_median": round(p50([s.seed_seconds for s in items]), 1),
        })
    return out


def to_json(runs: list[list[StepResult]]) -> dict[str, Any]:
    return {
        "runs": [[{**s.summary(), "raw": asdict(s)} for s in run] for run in runs],
        "summary": summarize(runs),
    }
