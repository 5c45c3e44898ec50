"""Rarely changed rows read on every request, remembered a few seconds in each process.

Operators change pricing rules, errand-kind settings, proof rules, buildings and paths a few
times a term; customers quote and order many times a second at a lunch peak, and each of those
requests read the same rows again. `remembered` keeps them in a per-process cache (Django's
local-memory backend, the "memo" alias) for settings.MEMO_SECONDS (default 5 s):

- saving or deleting one of the models named in `forget_on_change` forgets everything in the
  process that saved it (the admin's process, a shell), at once;
- every other process sees the change within MEMO_SECONDS.

Live figures that may lag a few seconds (the open-orders-to-riders ratio behind the peak
surcharge) use it too. Money, order status and anything a user just wrote are never memoised.
"""

from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.core.cache import caches
from django.db.models.signals import post_delete, post_save

T = TypeVar("T")
_MISSING = object()


def _memo():
    return caches["memo"]


def remembered(key: str, load: Callable[[], T]) -> T:
    """`load()`'s value, read at most once every MEMO_SECONDS per process (0: always read)."""
    seconds = settings.MEMO_SECONDS
    if seconds <= 0:
        return load()
    memo = _memo()
    value = memo.get(key, _MISSING)
    if value is _MISSING:
        value = load()
        memo.set(key, value, seconds)
    return value


def forget_all(**_kwargs) -> None:
    _memo().clear()


def forget_on_change(*models) -> None:
    """Forget everything when a row of these models is saved or deleted (in this process)."""
    for model in models:
        post_save.connect(forget_all, sender=model, dispatch_uid=f"memo-save-{model._meta.label}")
        post_delete.connect(
            forget_all, sender=model, dispatch_uid=f"memo-delete-{model._meta.label}"
        )
