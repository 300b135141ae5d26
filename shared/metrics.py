"""Prometheus plumbing: an explicit registry per service and its ASGI exposition app."""

from prometheus_client import CollectorRegistry, make_asgi_app
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from starlette.types import ASGIApp


def make_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def metrics_app(registry: CollectorRegistry) -> ASGIApp:
    return make_asgi_app(registry=registry)
