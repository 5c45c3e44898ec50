"""Live rider positions in the cache (Redis in production): the hot path reads no database."""

from django.core.cache import cache

TTL_SECONDS = 60 * 60


def _key(rider_id: int) -> str:
    return f"live-pos:{rider_id}"


def position_get(rider_id: int) -> dict | None:
    return cache.get(_key(rider_id))


def position_set(rider_id: int, position: dict) -> None:
    cache.set(_key(rider_id), position, TTL_SECONDS)


def position_clear(rider_id: int) -> None:
    cache.delete(_key(rider_id))
