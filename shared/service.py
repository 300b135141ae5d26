"""Running a service process: start-up retries and the HTTP server with graceful shutdown."""

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

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
