"""The Redis cache backend keeps one redis-py client per connection pool (campus_errand.cache)."""

import threading

import pytest
from django.conf import settings

from campus_errand.cache import RedisCache


def test_one_client_per_pool_for_every_call_and_thread():
    # Building a client does not connect: this runs without Redis.
    cache = RedisCache("redis://127.0.0.1:6390/0", {})
    first = cache._cache.get_client("a")
    seen = []
    thread = threading.Thread(target=lambda: seen.append(cache._cache.get_client("b", write=True)))
    thread.start()
    thread.join()
    assert seen == [first] and cache._cache.get_client("c") is first


@pytest.mark.skipif(not settings.REDIS_URL, reason="needs Redis: set REDIS_URL")
def test_the_shared_client_reads_and_writes():
    cache = RedisCache(settings.REDIS_URL, {"KEY_PREFIX": "test-cache-client"})
    cache.set("k", {"n": 1}, 30)
    assert cache.get("k") == {"n": 1}
    assert cache.add("n", 0, 30) and cache.incr("n") == 1
    assert cache.get_many(["k", "missing"]) == {"k": {"n": 1}}
    cache.delete_many(["k", "n"])
    assert cache.get("k") is None
