"""The shared start-up sequence: steps in order, retried when they reach out, views waited for, background
tasks cancelled, and everything stopped in reverse order."""

import asyncio
import logging

import pytest

from shared.catalogue_view import CatalogueView, in_force
from shared.contracts import DatasetCatalogued, DatasetRecord, DatasetStatus, utc_now
from shared.service import Startup

LOGGER = logging.getLogger("test.startup")


class FakeView:
    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name = log, name
        self.ready = asyncio.Event()

    async def start(self) -> None:
        self.log.append(f"start {self.name}")
        asyncio.get_running_loop().call_later(0.01, self.ready.set)

    async def stop(self) -> None:
        self.log.append(f"stop {self.name}")


class Flaky:
    """A step that fails `failures` times before it succeeds."""

    def __init__(self, log: list[str], failures: int) -> None:
        self.log, self.failures = log, failures

    async def __call__(self) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("not yet")
        self.log.append("connected")


async def test_steps_start_in_order_and_stop_in_reverse_order() -> None:
    log: list[str] = []
    view = FakeView(log, "view")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    startup = (
        Startup(5, LOGGER)
        .step(lambda: log.append("sync step"))
        .retry("connect", Flaky(log, failures=2), stop=lambda: log.append("disconnect"))
        .view("read the view", view, wait=True)
        .step(lambda: log.append(f"ready: {view.ready.is_set()}"))
        .task("ticker", tick)
    )
    assert not await startup.views_ready()
    async with startup.lifespan(object()):
        await asyncio.sleep(0.01)
        assert await startup.views_ready()
        assert ticks > 0
    assert log == ["sync step", "connected", "start view", "ready: True", "stop view", "disconnect"]
    stopped_at = ticks
    await asyncio.sleep(0.01)
    assert ticks == stopped_at  # the task was cancelled


async def test_a_step_still_failing_at_the_deadline_stops_the_start_up() -> None:
    log: list[str] = []
    startup = Startup(0.3, LOGGER).retry("connect", Flaky(log, failures=100)).step(lambda: log.append("never"))
    with pytest.raises(RuntimeError, match="connect: still failing"):
        async with startup.lifespan(object()):
            pass
    assert log == []


class StuckView(FakeView):
    """A view that starts but never catches up."""

    async def start(self) -> None:
        self.log.append(f"start {self.name}")


async def test_a_view_waited_for_within_a_time_limit_stops_the_start_up_when_it_has_not_caught_up() -> None:
    log: list[str] = []
    startup = (
        Startup(5, LOGGER)
        .view("read the view", StuckView(log, "view"), wait=True, within_s=0.05)
        .step(lambda: log.append("never"))
    )
    with pytest.raises(TimeoutError):
        async with startup.lifespan(object()):
            pass
    assert log == ["start view"]


async def test_caught_up_holds_the_start_up_until_every_view_started_before_it_has_caught_up() -> None:
    log: list[str] = []
    first, second = FakeView(log, "first"), FakeView(log, "second")
    startup = (
        Startup(5, LOGGER)
        .view("read the first", first)
        .view("read the second", second)
        .caught_up()
        .step(lambda: log.append(f"both ready: {first.ready.is_set() and second.ready.is_set()}"))
    )
    async with startup.lifespan(object()):
        pass
    assert log[:3] == ["start first", "start second", "both ready: True"]


async def test_what_is_only_stopped_takes_its_place_in_the_shutdown() -> None:
    log: list[str] = []

    async def drain() -> None:
        log.append("drain")

    startup = (
        Startup(5, LOGGER)
        .step(lambda: log.append("connect"), stop=lambda: log.append("disconnect"))
        .at_shutdown(lambda: log.append("close the client"))
        .view("read the view", FakeView(log, "view"), wait=True, within_s=5)
        .at_shutdown(drain)
    )
    async with startup.lifespan(object()):
        log.append("serving")
    assert log == ["connect", "start view", "serving", "drain", "stop view", "close the client", "disconnect"]


def entry(dataset_id: str, status: DatasetStatus, retired: bool = False) -> DatasetCatalogued:
    record = DatasetRecord(dataset_id=dataset_id, title=dataset_id, status=status, source="test")
    return DatasetCatalogued(
        event_id=dataset_id, occurred_at=utc_now(), dataset_id=dataset_id, retired=retired, dataset=record
    )


def test_the_catalogue_view_leaves_retired_datasets_out() -> None:
    view = CatalogueView("unused:9092", LOGGER)
    view.put("d-open", entry("d-open", DatasetStatus.OPEN))
    view.put("d-gone", entry("d-gone", DatasetStatus.NOT_OPEN, retired=True))
    assert view.status("d-open") is DatasetStatus.OPEN
    assert view.dataset("d-gone") is None
    assert view.status("d-unknown") is None
    assert list(view.datasets()) == ["d-open"]
    assert view.get("d-gone") is not None  # still on the topic, marked retired


def test_an_entry_is_in_force_until_its_dataset_is_retired_and_again_once_it_comes_back() -> None:
    view = CatalogueView("unused:9092", LOGGER)
    listed = entry("d-back", DatasetStatus.NOT_OPEN)
    view.put("d-back", listed)
    assert view.entry("d-back") == in_force(listed) == listed
    retired = entry("d-back", DatasetStatus.NOT_OPEN, retired=True)
    view.put("d-back", retired)
    assert (view.entry("d-back"), in_force(retired), in_force(None), view.entry("d-unknown")) == (None,) * 4
    assert (view.dataset("d-back"), view.datasets()) == (None, {})
    reopened = entry("d-back", DatasetStatus.OPEN)
    view.put("d-back", reopened)
    assert view.entry("d-back") == reopened
    assert view.datasets() == {"d-back": reopened.dataset}
