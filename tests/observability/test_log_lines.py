"""``LineWriter``: the event loop's lines go out together once per turn of the loop, in order;
other threads' lines at once, after what was gathered."""

from __future__ import annotations

import asyncio
import io
import logging
import threading

import orjson
import pytest
import structlog

from bridge.log_lines import LineWriter
from bridge.observability import configure_logging


class CountingStream(io.StringIO):
    """A text stream that counts its writes (one write = one system call on a real stream)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def test_lines_of_one_turn_are_written_together_when_the_loop_turns() -> None:
    stream = CountingStream()
    writer = LineWriter(stream)
    seen_in_the_turn: list[str] = []

    async def main() -> None:
        writer.info("one")
        writer.error("two")
        seen_in_the_turn.append(stream.getvalue())
        await asyncio.sleep(0)  # the loop turns: the scheduled flush runs
        writer.info("three")

    asyncio.run(main())
    assert seen_in_the_turn == [""]
    assert stream.getvalue() == "one\ntwo\nthree\n"
    assert stream.writes == 2  # "one two" together, then "three" in the next turn


def test_a_thread_writes_at_once_after_the_gathered_lines() -> None:
    stream = CountingStream()
    writer = LineWriter(stream)

    async def main() -> None:
        writer.info("from the loop")
        thread = threading.Thread(target=writer.info, args=("from a thread",))
        thread.start()
        thread.join()
        assert stream.getvalue() == "from the loop\nfrom a thread\n"

    asyncio.run(main())
    assert stream.getvalue() == "from the loop\nfrom a thread\n"


def test_without_a_loop_or_gathering_every_line_is_written_at_once() -> None:
    stream = CountingStream()
    LineWriter(stream).info("no loop")
    assert stream.getvalue() == "no loop\n"

    immediate = CountingStream()
    writer = LineWriter(immediate, gather=False)

    async def main() -> None:
        writer.info("a")
        writer.info("b")
        assert immediate.getvalue() == "a\nb\n"

    asyncio.run(main())
    assert immediate.writes == 2


def test_a_loop_that_stopped_before_its_flush_loses_nothing() -> None:
    stream = CountingStream()
    writer = LineWriter(stream)
    loop = asyncio.new_event_loop()

    def last_words() -> None:
        writer.info("gathered, never flushed by the loop")
        loop.stop()  # this turn is the last: the flush scheduled for the next never runs

    loop.call_soon(last_words)
    loop.run_forever()
    loop.close()
    assert stream.getvalue() == ""

    async def next_loop() -> None:
        writer.info("from the next loop")

    asyncio.run(next_loop())  # a new loop gets its own flush, which writes both
    assert stream.getvalue() == "gathered, never flushed by the loop\nfrom the next loop\n"
    writer.info("no loop now")
    writer.flush()  # nothing left gathered: nothing written twice
    assert stream.getvalue().count("from the next loop") == 1


class BrokenStream(CountingStream):
    def write(self, text: str) -> int:
        super().write(text)
        raise BrokenPipeError("the reader went away")


def test_a_broken_stream_loses_lines_not_the_process(capsys: pytest.CaptureFixture[str]) -> None:
    stream = BrokenStream()
    writer = LineWriter(stream)

    async def main() -> None:
        writer.info("one")
        await asyncio.sleep(0)
        writer.info("two")
        await asyncio.sleep(0)

    asyncio.run(main())
    writer.info("from no loop")
    assert stream.writes == 3  # every turn tried again: nothing piled up
    assert capsys.readouterr().err.count("log line(s) lost: BrokenPipeError") == 3


def test_configured_for_production_the_loop_lines_wait_for_the_turn_in_order() -> None:
    stream = CountingStream()
    configure_logging(level="info", fmt="json", stream=stream, production=True)
    log = structlog.get_logger("test")

    async def main() -> None:
        log.info("first")
        logging.getLogger("uvicorn.error").warning("second")
        log.info("third")
        assert stream.getvalue() == ""
        await asyncio.sleep(0)

    asyncio.run(main())
    events = [orjson.loads(line)["event"] for line in stream.getvalue().splitlines()]
    assert events == ["first", "second", "third"]
    assert stream.writes == 1
