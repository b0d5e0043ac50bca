"""``Realtime.relay``: how a text stream becomes room events (pure, an in-memory emitter)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from core.realtime import Realtime

ACCOUNT = "a" * 24


class Recorder:
    """Stands in for the Socket.IO server's ``emit``; ``fail_on`` makes one emit raise."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.sent: list[tuple[str, Any, str, str]] = []
        self.fail_on = fail_on

    async def emit(self, event: str, data: Any, *, to: str, namespace: str) -> None:
        if self.fail_on is not None and len(self.sent) == self.fail_on:
            self.fail_on = None
            raise ConnectionError("redis went away")
        self.sent.append((event, data, to, namespace))


async def chunks(*parts: str) -> AsyncIterator[str]:
    for part in parts:
        yield part


async def test_chunks_pass_through_and_events_coalesce_in_order() -> None:
    recorder = Recorder()
    realtime = Realtime(recorder)
    parts = ["Hel", "lo", ", ", "wor", "ld", "!"]
    seen = [chunk async for chunk in realtime.relay(
        "studio", ("user", "uid-1"), "run.delta", chunks(*parts), key={"run_id": "r1"},
        flush_chars=5, flush_seconds=3600)]
    assert seen == parts
    assert [(e, to, ns) for e, _, to, ns in recorder.sent] == [
        ("run.delta", "user:uid-1", "/studio")] * len(recorder.sent)
    payloads = [data for _, data, _, _ in recorder.sent]
    assert [p["seq"] for p in payloads] == list(range(len(payloads)))
    assert all(p["run_id"] == "r1" for p in payloads)
    assert "".join(p["text"] for p in payloads) == "Hello, world!"
    # a flush at 5 buffered characters, the remainder when the stream ends
    assert [p["text"] for p in payloads] == ["Hello", ", wor", "ld!"]


async def test_a_failed_emit_does_not_stop_the_stream() -> None:
    recorder = Recorder(fail_on=0)
    realtime = Realtime(recorder)
    seen = [chunk async for chunk in realtime.relay(
        "studio", ("account", ACCOUNT), "answer.delta", chunks("abc", "def"), flush_chars=1)]
    assert seen == ["abc", "def"]
    assert [(data["seq"], data["text"], to) for _, data, to, _ in recorder.sent] == [
        (1, "def", f"account:{ACCOUNT}")]


@pytest.mark.parametrize("room,event", [
    (("account", "bad id!"), "x"), (("tenant", "t1"), "x"), (("user", ""), "x"),
    (("group", "g1"), "join"),
])
async def test_bad_rooms_and_kernel_event_names_are_refused_before_reading(
    room: Any, event: str,
) -> None:
    consumed: list[str] = []

    async def source() -> AsyncIterator[str]:
        consumed.append("read")
        yield "x"

    with pytest.raises(ValueError):
        async for _ in Realtime(Recorder()).relay("studio", room, event, source()):
            pass
    assert consumed == []
