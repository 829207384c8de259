"""An asyncio pipeline: a source, then stages joined by bounded queues.

Each stage takes one item and returns one item, a list of items (fan-out) or None
(nothing). CPU-heavy stages run in worker threads (``asyncio.to_thread``) so the event
loop never blocks; a stage given a coroutine function runs on the loop. Every stage is
sequential (one item at a time, in order), so stateful steps stay simple, while
different stages overlap in time.

Real-time mode (latency over completeness): when a queue is full, the oldest queued item
that may be dropped is removed and reported to ``on_drop(item, "late:<stage>")``; the
source is never held up. Offline mode: a full queue makes its producer wait, so every
item is processed. ``stats()`` gives per-stage timing and queue depth.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from stream.core.config import PipelineConfig

_END = object()


def _always(item: Any) -> bool:
    return True


@dataclass(frozen=True)
class Stage:
    """One step. fn(item) -> item | list of items | None. threaded: run fn in a worker
    thread (ignored for coroutine functions). droppable(item): whether an item waiting in
    front of this stage may be dropped in real-time mode."""

    name: str
    fn: Callable[[Any], Any]
    threaded: bool = True
    droppable: Callable[[Any], bool] = _always


@dataclass
class StageStats:
    """Timing (seconds per item) and input-queue depth of one stage."""

    items: int = 0
    dropped: int = 0
    busy_s: float = 0.0
    times: deque = field(default_factory=lambda: deque(maxlen=2000))
    depth_sum: int = 0
    depth_max: int = 0

    def summary(self) -> dict:
        """JSON-ready: items, dropped, ms per item (mean, median, p90), queue depth."""
        t = sorted(self.times)
        ms = [1000 * x for x in t]
        return {"items": self.items, "dropped": self.dropped,
                "ms_mean": round(1000 * self.busy_s / self.items, 2) if self.items else None,
                "ms_median": round(statistics.median(ms), 2) if ms else None,
                "ms_p90": round(ms[min(len(ms) - 1, int(0.9 * len(ms)))], 2) if ms else None,
                "queue_depth_mean": round(self.depth_sum / self.items, 3) if self.items else 0,
                "queue_depth_max": self.depth_max}


class DropQueue:
    """Bounded FIFO; ``put`` waits for room, or (realtime) drops the oldest droppable item.
    The end marker is held apart: ``get`` returns it once the items before it are gone."""

    def __init__(self, size: int, realtime: bool, droppable: Callable[[Any], bool],
                 on_drop: Callable[[Any], None]) -> None:
        self.size, self.realtime = size, realtime
        self.droppable, self.on_drop = droppable, on_drop
        self._items: deque = deque()
        self._ended = False
        self._changed = asyncio.Condition()

    def __len__(self) -> int:
        return len(self._items)

    async def put(self, item: Any) -> None:
        """Add ``item`` (waits for room, or drops the oldest droppable one in real time)."""
        async with self._changed:
            if item is _END:
                self._ended = True
            else:
                while len(self._items) >= self.size:
                    if self.realtime and self._drop_oldest():
                        break
                    await self._changed.wait()
                self._items.append(item)
            self._changed.notify_all()

    def _drop_oldest(self) -> bool:
        for i, queued in enumerate(self._items):
            if self.droppable(queued):
                del self._items[i]
                self.on_drop(queued)
                return True
        return False

    async def get(self) -> Any:
        """Oldest item (waits while empty); the end marker after the last item."""
        async with self._changed:
            while not self._items and not self._ended:
                await self._changed.wait()
            item = self._items.popleft() if self._items else _END
            self._changed.notify_all()
            return item


class Pipeline:
    """source -> stage 1 -> ... -> stage n; ``run`` until the source ends or ``stop``."""

    def __init__(self, stages: list[Stage], config: PipelineConfig | None = None,
                 on_drop: Callable[[Any, str], None] | None = None) -> None:
        if not stages:
            raise ValueError("a pipeline needs at least one stage")
        self.stages = stages
        self.config = config or PipelineConfig()
        self.on_drop = on_drop or (lambda item, reason: None)
        self.stage_stats = {s.name: StageStats() for s in stages}
        self.source_items = 0
        self._stopping = False
        self._queues: list[DropQueue] = []

    def stop(self) -> None:
        """End the source now; items already in the pipeline are still processed."""
        self._stopping = True

    def _dropper(self, stage: Stage) -> Callable[[Any], None]:
        def dropped(item: Any) -> None:
            self.stage_stats[stage.name].dropped += 1
            self.on_drop(item, f"late:{stage.name}")
        return dropped

    async def run(self, source: AsyncIterator) -> None:
        """Feed every source item through the stages; returns when all are done. An
        exception in any stage cancels the others and is raised here."""
        self._queues = [DropQueue(self.config.queue_size, self.config.realtime, s.droppable,
                                  self._dropper(s)) for s in self.stages]
        tasks = [asyncio.ensure_future(self._feed(source))]
        tasks += [asyncio.ensure_future(self._work(i)) for i in range(len(self.stages))]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t

    async def _feed(self, source: AsyncIterator) -> None:
        items = source.__aiter__()
        try:
            while not self._stopping:  # checked before each read: a read item is never lost
                try:
                    item = await items.__anext__()
                except StopAsyncIteration:
                    break
                self.source_items += 1
                await self._queues[0].put(item)
        finally:
            if hasattr(items, "aclose"):
                await items.aclose()
            await self._queues[0].put(_END)

    async def _work(self, i: int) -> None:
        stage, queue = self.stages[i], self._queues[i]
        out = self._queues[i + 1] if i + 1 < len(self._queues) else None
        stats = self.stage_stats[stage.name]
        is_coro = asyncio.iscoroutinefunction(stage.fn)
        while True:
            depth = len(queue)
            item = await queue.get()
            if item is _END:
                if out is not None:
                    await out.put(_END)
                return
            stats.depth_sum += depth
            stats.depth_max = max(stats.depth_max, depth)
            t0 = time.perf_counter()
            if is_coro:
                result = await stage.fn(item)
            elif stage.threaded:
                result = await asyncio.to_thread(stage.fn, item)
            else:
                result = stage.fn(item)
            dt = time.perf_counter() - t0
            stats.items += 1
            stats.busy_s += dt
            stats.times.append(dt)
            if out is None or result is None:
                continue
            for r in result if isinstance(result, list) else [result]:
                await out.put(r)

    def stats(self) -> dict:
        """Per-stage stats (see ``StageStats.summary``) and the source item count."""
        return {"source_items": self.source_items,
                "stages": {name: s.summary() for name, s in self.stage_stats.items()}}
