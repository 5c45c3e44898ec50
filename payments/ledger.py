"""The ledger's two primitives: find an account, post a balanced transaction. Only payments.services
calls these; everything else moves money through a service.
"""

from collections import defaultdict
from collections.abc import Iterable

from django.db import transaction
from django.db.models import Sum

from payments.errors import InsufficientFunds, LedgerError
from payments.models import (
    NEVER_NEGATIVE,
    ORDER_KINDS,
    OWNED_KINDS,
    SYSTEM_KINDS,
    Account,
    Entry,
    LedgerTransaction,
)


def account_for_owner(kind: str, owner) -> Account:
    """`owner` is a user or a user id (an id is safer after a row lock: see payments.services)."""
    assert kind in OWNED_KINDS, kind
    owner_id = getattr(owner, "pk", owner)
    assert owner_id is not None, "an owned account needs its owner"
    account, _ = Account.objects.get_or_create(kind=kind, owner_id=owner_id, order=None)
    return account


def account_for_order(kind: str, order) -> Account:
    assert kind in ORDER_KINDS, kind
    account, _ = Account.objects.get_or_create(kind=kind, order=order, owner=None)
    return account


def account_system(kind: str) -> Account:
    assert kind in SYSTEM_KINDS, kind
    account, _ = Account.objects.get_or_create(kind=kind, owner=None, order=None)
    return account


def balance(account: Account | None) -> int:
    if account is None or account.pk is None:
        return 0
    return Entry.objects.filter(account=account).aggregate(s=Sum("amount_fen"))["s"] or 0


def balances(account_ids: Iterable[int]) -> dict[int, int]:
    rows = (
        Entry.objects.filter(account_id__in=list(account_ids))
        .values("account_id")
        .annotate(s=Sum("amount_fen"))
    )
    return {row["account_id"]: row["s"] for row in rows}


def lock(*accounts: Account) -> None:
    """Row-lock accounts (in primary-key order, so that two transactions never deadlock).

    Read balances in a statement *after* this one: under READ COMMITTED a statement that waited
    for the lock still sees its own (older) snapshot, so a balance read in the locking statement
    could miss the entries of the transaction it waited for."""
    ids = sorted({a.pk for a in accounts})
    list(Account.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk"))


def already_posted(reference: str) -> LedgerTransaction | None:
    return LedgerTransaction.objects.filter(reference=reference).first()


def post(
    *,
    kind: str,
    reference: str,
    lines: list[tuple[Account, int]],
    order=None,
    actor=None,
    memo: str = "",
) -> LedgerTransaction:
    """Record one balanced transaction. Raises InsufficientFunds if an account that may not go
    negative would; raises LedgerError for an unbalanced or one-sided transaction (a bug).

    Accounts losing money are locked first and their balances read under the lock, so two
    concurrent debits of one wallet are serialised and the second sees the first. Runs inside
    the caller's transaction (every money service is atomic); the unique `reference` makes a
    second posting of the same event fail the whole transaction.
    """
    if not transaction.get_connection().in_atomic_block:
        raise LedgerError("ledger.post() must run inside a transaction")
    totals: dict[int, int] = defaultdict(int)
    accounts: dict[int, Account] = {}
    for account, amount in lines:
        if not isinstance(amount, int):
            raise LedgerError(f"amounts are integer fen, got {amount!r}")
        totals[account.pk] += amount
        accounts[account.pk] = account
    moves = {pk: amount for pk, amount in totals.items() if amount != 0}
    if len(moves) < 2:
        raise LedgerError("a transaction moves money between at least two accounts")
    if sum(moves.values()) != 0:
        raise LedgerError(f"unbalanced transaction {reference}: {moves}")

    debited = [accounts[pk] for pk, amount in moves.items() if amount < 0]
    guarded = [a for a in debited if a.kind in NEVER_NEGATIVE]
    if guarded:
        lock(*guarded)
        current = balances(a.pk for a in guarded)
        for account in guarded:
            if current.get(account.pk, 0) + moves[account.pk] < 0:
                raise InsufficientFunds()
    txn = LedgerTransaction.objects.create(
        kind=kind, reference=reference, order=order, actor=actor, memo=memo[:255]
    )
    Entry.objects.bulk_create(
        [Entry(transaction=txn, account_id=pk, amount_fen=amount) for pk, amount in moves.items()]
    )
    return txn
