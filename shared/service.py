"""Running a service process: its start-up and shutdown sequence, start-up retries, and the HTTP server
with graceful shutdown."""

import asyncio
import contextlib
import inspect
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, Self

import uvicorn
from starlette.types import ASGIApp

from shared.edge import Edge
from shared.logging import configure_logging
from shared.settings import ServiceSettings


async def retry_until(
    what: str, action: Callable[[], Awaitable[object]], timeout_s: float, logger: logging.Logger
) -> None:
    """Retry a start-up step with backoff until it succeeds or `timeout_s` has passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    delay = 0.2
    while True:
        try:
            await action()
            return
        except Exception as error:
            if loop.time() + delay > deadline:
                raise RuntimeError(f"{what}: still failing after {timeout_s:.0f}s") from error
            logger.warning(
                "start-up step failed; retrying",
                extra={"step": what, "error": repr(error), "retry_in_s": delay},
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


Action = Callable[[], object]


class View(Protocol):
    """What start-up needs of a state view: start it, know when it has caught up, stop it."""

    ready: asyncio.Event

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True)
class _Step:
    start: Action | None
    stop: Action | None = None


async def _run(action: Action) -> None:
    result = action()
    if inspect.isawaitable(result):
        await result


class Startup:
    """A service's start-up, step after step, and its shutdown, the steps stopped in reverse order.

    Used as the app's lifespan: `service_app(SERVICE, startup.lifespan, …)`. A step that reaches
    another process (Kafka, MongoDB) is retried with backoff until `timeout_s`; a state view can be
    waited for until it has caught up; a background task is cancelled first at shutdown; what needs
    no start (a client opened when built, a signal to the running handlers) can still take its place
    in the shutdown.
    """

    def __init__(self, timeout_s: float, logger: logging.Logger) -> None:
        self._timeout_s = timeout_s
        self._logger = logger
        self._steps: list[_Step] = []
        self._views: list[View] = []

    def step(self, start: Action, stop: Action | None = None) -> Self:
        """Run `start` once (it may be sync or async); run `stop` at shutdown."""
        self._steps.append(_Step(start, stop))
        return self

    def retry(self, what: str, start: Callable[[], Awaitable[object]], stop: Action | None = None) -> Self:
        """Run `start` until it succeeds (see `retry_until`); run `stop` at shutdown."""
        return self.step(lambda: retry_until(what, start, self._timeout_s, self._logger), stop)

    def at_shutdown(self, stop: Action) -> Self:
        """Run `stop` at shutdown, in its place among the steps' stops (reverse order); nothing at start."""
        self._steps.append(_Step(None, stop))
        return self

    def view(self, what: str, view: View, *, wait: bool = False, within_s: float | None = None) -> Self:
        """Start a state view (retried), and with `wait` hold the start-up until it has caught up; with
        `within_s` as well, give up (`TimeoutError`) if it has not caught up by then."""
        self._views.append(view)

        async def start() -> None:
            await retry_until(what, view.start, self._timeout_s, self._logger)
            if wait:
                await asyncio.wait_for(view.ready.wait(), within_s)

        return self.step(start, view.stop)

    def caught_up(self) -> Self:
        """Hold the start-up until every state view started so far has caught up: they read at once."""
        views = list(self._views)
        return self.step(lambda: asyncio.gather(*(view.ready.wait() for view in views)))

    def task(self, name: str, run: Callable[[], Coroutine[Any, Any, None]]) -> Self:
        """Run `run` in the background from this step on; cancel it at shutdown."""
        tasks: list[asyncio.Task[None]] = []

        def start() -> None:
            tasks.append(asyncio.create_task(run(), name=name))

        async def stop() -> None:
            while tasks:
                task = tasks.pop()
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

        return self.step(start, stop)

    async def views_ready(self) -> bool:
        """A readiness check: every state view has caught up."""
        return all(view.ready.is_set() for view in self._views)

    @contextlib.asynccontextmanager
    async def lifespan(self, _: object) -> AsyncIterator[None]:
        for step in self._steps:
            if step.start is not None:
                await _run(step.start)
        yield
        for step in reversed(self._steps):
            if step.stop is not None:
                await _run(step.stop)


class _Server(uvicorn.Server):
    """Uvicorn re-raises the signal it stopped on, so the exit status would read "killed".
    A service that drained and shut down cleanly exits 0 instead."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def serve(app: ASGIApp, settings: ServiceSettings) -> None:
    """Serve until SIGTERM or SIGINT, then drain requests and run the app's shutdown."""
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        lifespan="on",
        # Compiled event loop and HTTP parser (h11 and asyncio's loop are pure Python): less CPU per request.
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=10,
        # Longer than the idle timeout of the load balancers and client pools in front, so that a
        # pooled connection is not closed by the server just as a client reuses it.
        timeout_keep_alive=75,
    )
    _Server(config).run()


def run_service(service: str, settings: ServiceSettings, create_app: Callable[[Any], ASGIApp]) -> None:
    """The body of every `python -m services.<name>`: logs, app behind its edge, serve."""
    configure_logging(service, settings.log_level, settings.instance)
    serve(Edge(create_app(settings), settings), settings)
