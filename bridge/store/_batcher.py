"""Group commit on an event loop: concurrent calls of one process share one transaction.

``submit(item)`` queues an item and waits for its answer. One flush at a time takes everything
queued (up to ``max_batch``) and hands it to the batch function, which writes the items in one
transaction and returns one answer per item. There is no wait window: while a commit is in
flight, the next batch forms by itself. When the batch function raises anything but
``StoreUnavailable`` (the database failing: every item of the batch gets it), the batch goes
again item by item, so only the item at fault fails and its neighbours are answered as usual.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import structlog

from bridge.errors import StoreUnavailable

Item = TypeVar("Item")
T = TypeVar("T")

log = structlog.get_logger()


class Batcher(Generic[Item, T]):
    def __init__(
        self, batch: Callable[[list[Item]], Awaitable[list[T]]], *, max_batch: int = 1024
    ) -> None:
        self._batch = batch
        self._max_batch = max_batch
        self._queue: list[tuple[Item, asyncio.Future[T]]] = []
        self._flushing: asyncio.Task[None] | None = None
        self._closed = False
        self.commits = 0  # batches written; items / commits is the mean group size
        self.items = 0

    async def submit(self, item: Item) -> T:
        if self._closed:
            raise StoreUnavailable("the store is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush(), name="store-group-commit")
        return await future

    async def close(self) -> None:
        """Refuse new items; wait until the queued ones are written."""
        self._closed = True
        if self._flushing is not None:
            await asyncio.shield(self._flushing)

    async def _flush(self) -> None:
        while self._queue:
            taken, self._queue = (
                self._queue[: self._max_batch],
                self._queue[self._max_batch :],
            )
            items = [item for item, _ in taken]
            try:
                answers = await self._batch(items)
                if len(answers) != len(items):
                    raise RuntimeError("a batch operation lost results")
            except StoreUnavailable as exc:
                for _, future in taken:
                    _settle(future, error=exc)
                continue
            except Exception as exc:  # noqa: BLE001 - one item's fault: find it
                if len(taken) == 1:
                    _settle(taken[0][1], error=exc)
                    continue
                log.warning("store_batch_split", error=type(exc).__name__, ops=len(taken))
                await self._one_by_one(taken)
                continue
            self.commits += 1
            self.items += len(items)
            for (_, future), answer in zip(taken, answers, strict=True):
                _settle(future, answer=answer)

    async def _one_by_one(self, taken: list[tuple[Item, asyncio.Future[T]]]) -> None:
        for item, future in taken:
            try:
                [answer] = await self._batch([item])
            except Exception as exc:  # noqa: BLE001 - the caller gets it
                _settle(future, error=exc)
            else:
                _settle(future, answer=answer)


def _settle(
    future: asyncio.Future[T], *, answer: T | None = None, error: BaseException | None = None
) -> None:
    if future.done():  # the caller was cancelled; the write stands
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(answer)  # type: ignore[arg-type]
