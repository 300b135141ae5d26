"""MongoDB plumbing: the driver's async API (`pymongo.AsyncMongoClient`, Motor's successor)."""

from typing import Any

from pymongo import AsyncMongoClient


def make_mongo_client(uri: str, app_name: str) -> AsyncMongoClient[dict[str, Any]]:
    return AsyncMongoClient(uri, appname=app_name, serverSelectionTimeoutMS=5000, tz_aware=True)


async def mongo_ping(client: AsyncMongoClient[dict[str, Any]]) -> bool:
    try:
        await client.admin.command("ping")
    except Exception:
        return False
    return True
