"""The embedded stack against real servers: SecantusDB, Firebase Auth emulator, fake-gcs.

No mocks: each test talks to the servers through the same client libraries the
platform uses (pymongo async, firebase_admin, google-cloud-storage).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from core.kernel.devstack import EmbeddedStack, free_port, run_embedded_stack

REPO_ROOT = Path(__file__).resolve().parents[2]
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _alive(pid: int) -> bool:
    """Running (a zombie or a vanished pid counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_gone(pids: list[int], timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(_alive(p) for p in pids):
            return []
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


def _post_json(url: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with _NO_PROXY.open(req, timeout=10) as resp:
        result: dict[str, Any] = json.loads(resp.read())
        return result


def _sign_up(stack: EmbeddedStack, email: str, password: str) -> dict[str, Any]:
    return _post_json(
        f"http://{stack.firebase_auth_host}/identitytoolkit.googleapis.com/v1/accounts:signUp?key=any",
        {"email": email, "password": password, "returnSecureToken": True},
    )


def _sign_in(stack: EmbeddedStack, email: str, password: str) -> dict[str, Any]:
    return _post_json(
        f"http://{stack.firebase_auth_host}/identitytoolkit.googleapis.com/v1/"
        "accounts:signInWithPassword?key=any",
        {"email": email, "password": password, "returnSecureToken": True},
    )


def _storage_client(stack: EmbeddedStack, monkeypatch: pytest.MonkeyPatch) -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", stack.gcs_endpoint)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    anonymous = AnonymousCredentials()  # type: ignore[no-untyped-call]
    return storage.Client(project=stack.project_id, credentials=anonymous)


class _Run:
    """One stack on one data_dir that a test may stop early (the restart test)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.messages: list[str] = []
        self._exit = ExitStack()
        self.stack = self._exit.enter_context(
            run_embedded_stack(data_dir, log=self.messages.append)
        )

    def stop(self) -> None:
        self._exit.close()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Run]:
    current = _Run(tmp_path_factory.mktemp("devstack"))
    try:
        yield current
    finally:
        current.stop()


@pytest.fixture
def stack(run: _Run) -> EmbeddedStack:
    return run.stack


def test_env_names_every_server(stack: EmbeddedStack) -> None:
    env = stack.env()
    assert env["MONGODB_URI"] == stack.mongo_uri
    assert env["MONGODB_URI"].startswith("mongodb://127.0.0.1:")
    assert env["FIREBASE_AUTH_EMULATOR_HOST"] == stack.firebase_auth_host
    assert env["STORAGE_EMULATOR_HOST"] == stack.gcs_endpoint
    assert env["STORAGE_EMULATOR_HOST"].startswith("http://127.0.0.1:")
    assert env["FIREBASE_PROJECT_ID"] == env["GOOGLE_CLOUD_PROJECT"] == "demo-synergyhub"
    assert set(stack.startup_seconds) == {"mongo", "auth", "gcs"}
    print("startup seconds:", dict(stack.startup_seconds))


def test_logs_go_to_files(run: _Run) -> None:
    for name in ("mongo", "auth", "gcs"):
        assert (run.data_dir / "logs" / f"{name}.log").stat().st_size > 0
    assert any("auth ready" in m for m in run.messages)


def test_mongo_insert_find_and_transaction(stack: EmbeddedStack) -> None:
    from pymongo import AsyncMongoClient

    async def scenario() -> None:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            stack.mongo_uri, serverSelectionTimeoutMS=5000
        )
        try:
            coll = client.devstack_test.items
            await coll.insert_one({"_id": "plain", "n": 1})
            async with client.start_session() as session:
                async with await session.start_transaction():
                    await coll.insert_one({"_id": "in-txn", "n": 2}, session=session)
            docs = await coll.find({}, {"_id": 1}).sort("_id", 1).to_list()
            assert [d["_id"] for d in docs] == ["in-txn", "plain"]
        finally:
            await client.close()

    asyncio.run(scenario())


def test_auth_signup_signin_and_admin_verify(
    stack: EmbeddedStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    import firebase_admin
    from firebase_admin import auth

    email = f"{uuid.uuid4().hex[:8]}@example.test"
    created = _sign_up(stack, email, "s3cret-pass")
    signed_in = _sign_in(stack, email, "s3cret-pass")
    assert signed_in["localId"] == created["localId"]

    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", stack.firebase_auth_host)
    app = firebase_admin.initialize_app(
        options={"projectId": stack.project_id}, name=f"devstack-{uuid.uuid4().hex}"
    )
    try:
        claims = auth.verify_id_token(signed_in["idToken"], app=app, check_revoked=True)
        assert claims["uid"] == created["localId"]
        assert claims["email"] == email
        assert auth.get_user(created["localId"], app=app).email == email
    finally:
        firebase_admin.delete_app(app)


def test_gcs_bucket_object_and_signed_upload(
    stack: EmbeddedStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from google.oauth2 import service_account

    client = _storage_client(stack, monkeypatch)
    bucket = client.create_bucket(f"devstack-{uuid.uuid4().hex[:12]}")
    bucket.blob("docs/a.txt").upload_from_string(b"hello", content_type="text/plain")
    assert bucket.blob("docs/a.txt").download_as_bytes() == b"hello"

    # A v4 signed PUT URL points at STORAGE_EMULATOR_HOST: -public-host routes it.
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    signer = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
        {
            "type": "service_account",
            "client_email": "devstack@demo-synergyhub.iam.gserviceaccount.com",
            "private_key": pem,
            "token_uri": "http://127.0.0.1:9/token",
            "project_id": stack.project_id,
        }
    )
    url = bucket.blob("uploads/b.bin").generate_signed_url(
        version="v4",
        expiration=dt.timedelta(minutes=5),
        method="PUT",
        content_type="application/octet-stream",
        credentials=signer,
    )
    assert url.startswith(stack.gcs_endpoint + "/")
    put = urllib.request.Request(
        url, data=b"\x00\x01", method="PUT", headers={"Content-Type": "application/octet-stream"}
    )
    with _NO_PROXY.open(put, timeout=10) as resp:
        assert resp.status == 200
    assert bucket.blob("uploads/b.bin").download_as_bytes() == b"\x00\x01"


def test_starting_does_not_touch_our_environment(stack: EmbeddedStack) -> None:
    assert os.environ.get("FIREBASE_AUTH_EMULATOR_HOST") != stack.firebase_auth_host
    assert os.environ.get("STORAGE_EMULATOR_HOST") != stack.gcs_endpoint


def test_restart_keeps_everything_and_leaves_no_orphans(
    run: _Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs last in this module: it stops the shared stack."""
    from pymongo import MongoClient

    first = run.stack
    with MongoClient[dict[str, Any]](first.mongo_uri, serverSelectionTimeoutMS=5000) as client:
        client.devstack_test.restart.insert_one({"_id": "survivor"})
    email = f"{uuid.uuid4().hex[:8]}@example.test"
    uid = _sign_up(first, email, "s3cret-pass")["localId"]
    bucket_name = f"restart-{uuid.uuid4().hex[:12]}"
    _storage_client(first, monkeypatch).create_bucket(bucket_name).blob("k").upload_from_string(
        b"kept"
    )

    pids = list(first.pids.values())
    assert all(_alive(p) for p in pids)
    run.stop()
    assert _wait_gone(pids, timeout=1.0) == []
    assert not list((run.data_dir / "run").glob("*.pid"))

    second_run = _Run(run.data_dir)
    try:
        second = second_run.stack
        with MongoClient[dict[str, Any]](second.mongo_uri, serverSelectionTimeoutMS=5000) as client:
            assert client.devstack_test.restart.find_one({"_id": "survivor"}) is not None
            assert client.devstack_test.items.count_documents({}) == 2
        try:
            signed_in = _sign_in(second, email, "s3cret-pass")
        except urllib.error.HTTPError as exc:
            logs = run.data_dir / "logs"
            tails = {p.name: p.read_text(errors="replace")[-3000:] for p in logs.glob("auth.log*")}
            exported = list((run.data_dir / "firebase").rglob("accounts.json"))
            pytest.fail(f"sign-in after restart failed ({exc}); exports: {exported}; "
                        f"auth logs: {tails}")
        assert signed_in["localId"] == uid
        client_gcs = _storage_client(second, monkeypatch)
        assert client_gcs.bucket(bucket_name).blob("k").download_as_bytes() == b"kept"
        pids = list(second.pids.values())
    finally:
        second_run.stop()
    assert _wait_gone(pids, timeout=1.0) == []


_HOLDER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from core.kernel.devstack import run_embedded_stack

    with run_embedded_stack(Path(sys.argv[1]), with_auth=False) as stack:
        print(json.dumps(dict(stack.pids)), flush=True)
        while True:
            time.sleep(0.1)
    """
)


def _holder(data_dir: Path) -> tuple[subprocess.Popen[str], dict[str, int]]:
    """A separate process that holds a (mongo + gcs) stack until it is signalled."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(data_dir)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=10)
        pytest.fail(f"holder failed: {proc.stderr.read() if proc.stderr else ''}")
    return proc, json.loads(line)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_parent_death_stops_children(tmp_path: Path, sig: signal.Signals) -> None:
    proc, pids = _holder(tmp_path)
    assert set(pids) == {"mongo", "gcs"}
    assert all(_alive(p) for p in pids.values())
    proc.send_signal(sig)
    proc.wait(timeout=15)
    # SIGKILL gives the parent no chance: PR_SET_PDEATHSIG makes the kernel signal the
    # children (SIGTERM; SIGKILL for SecantusDB, whose SIGTERM handler once deadlocked
    # here with nobody left to escalate). Allow a slow exit on a busy machine.
    left = _wait_gone(list(pids.values()), timeout=30.0)
    if left:
        names = {pid: name for name, pid in pids.items()}
        tails = {names[pid]: (tmp_path / "logs" / f"{names[pid]}.log").read_text(
            errors="replace")[-2000:] for pid in left}
        states = {names[pid]: Path(f"/proc/{pid}/status").read_text()[:400] for pid in left
                  if Path(f"/proc/{pid}/status").exists()}
        pytest.fail(f"still running 30 s after the parent died: {tails} {states}")
    # A new run on the same data_dir starts cleanly (pidfiles, WiredTiger.lock).
    with run_embedded_stack(tmp_path, with_auth=False) as stack:
        from pymongo import MongoClient

        uri = stack.mongo_uri
        with MongoClient[dict[str, Any]](uri, serverSelectionTimeoutMS=5000) as client:
            client.t.c.insert_one({"ok": True})


def test_second_run_on_same_data_dir_replaces_the_first(tmp_path: Path) -> None:
    """`make run` twice: the newcomer stops the servers the pidfiles name (ours only)."""
    proc, old = _holder(tmp_path)
    try:
        with run_embedded_stack(tmp_path, with_auth=False) as stack:
            assert _wait_gone(list(old.values()), timeout=1.0) == []
            assert set(stack.pids.values()).isdisjoint(old.values())
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_pidfile_naming_someone_elses_process_is_left_alone(tmp_path: Path) -> None:
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "gcs.pid").write_text(json.dumps({"pid": stranger.pid}))
        with run_embedded_stack(tmp_path, with_mongo=False, with_auth=False) as stack:
            assert stack.gcs_endpoint and not stack.mongo_uri and not stack.firebase_auth_host
            assert set(stack.env()) == {
                "STORAGE_EMULATOR_HOST",
                "FIREBASE_PROJECT_ID",
                "GOOGLE_CLOUD_PROJECT",
            }
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_busy_port_fails_fast_with_a_clear_message(tmp_path: Path) -> None:
    import socket

    port = free_port()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        with pytest.raises(RuntimeError, match=f"port 127.0.0.1:{port} is already in use"):
            with run_embedded_stack(tmp_path, gcs_port=port, with_mongo=False, with_auth=False):
                pass


def test_startup_failure_reports_the_log_tail(tmp_path: Path) -> None:
    # A broken secantusd.toml: the daemon exits at once with a config error.
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "secantusd.toml").write_text("this is = = not toml")
    with pytest.raises(RuntimeError) as info:
        with run_embedded_stack(tmp_path, with_auth=False, with_gcs=False):
            pass
    message = str(info.value)
    assert "mongo exited during start-up" in message
    assert "secantusdb:" in message  # the daemon's own complaint, from the log tail
    assert not list((tmp_path / "run").glob("*.pid"))
