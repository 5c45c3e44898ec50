"""The double-entry ledger: balanced transactions, derived balances, append-only rows."""

import pytest
from django.db import IntegrityError, transaction

from payments import ledger, selectors, services
from payments.errors import InsufficientFunds, LedgerError
from payments.models import Account, AccountKind, Entry, LedgerTransaction, TransactionKind
from tests import factories
from tests.payments.conftest import assert_ledger_sound


def test_grant_is_one_balanced_transaction_and_the_balance_is_derived(student):
    txn = services.wallet_grant(user=student, amount_fen=1_250, reference="welcome")

    entries = {e.account.kind: e.amount_fen for e in txn.entries.select_related("account")}
    assert entries == {AccountKind.PROMOTIONS_EXPENSE: -1_250, AccountKind.WALLET: 1_250}
    assert selectors.wallet_balance(student) == 1_250
    assert_ledger_sound()


def test_grant_with_the_same_reference_credits_once(student):
    first = services.wallet_grant(user=student, amount_fen=500, reference="once")
    again = services.wallet_grant(user=student, amount_fen=500, reference="once")
    assert again.pk == first.pk
    assert selectors.wallet_balance(student) == 500


def test_unbalanced_transaction_is_refused(student):
    wallet = ledger.account_for_owner(AccountKind.WALLET, student)
    promo = ledger.account_system(AccountKind.PROMOTIONS_EXPENSE)
    with pytest.raises(LedgerError), transaction.atomic():
        ledger.post(kind=TransactionKind.GRANT, reference="x", lines=[(wallet, 100), (promo, -99)])
    with pytest.raises(LedgerError), transaction.atomic():
        ledger.post(kind=TransactionKind.GRANT, reference="y", lines=[(wallet, 0), (promo, 0)])
    with pytest.raises(LedgerError), transaction.atomic():
        ledger.post(kind=TransactionKind.GRANT, reference="z", lines=[(wallet, 1.5), (promo, -1.5)])
    assert not LedgerTransaction.objects.exists()


def test_a_wallet_never_goes_negative(student, other_student):
    factories.fund_wallet(student, 300)
    mine = ledger.account_for_owner(AccountKind.WALLET, student)
    theirs = ledger.account_for_owner(AccountKind.WALLET, other_student)
    with pytest.raises(InsufficientFunds), transaction.atomic():
        ledger.post(
            kind=TransactionKind.GRANT, reference="too-much", lines=[(mine, -301), (theirs, 301)]
        )
    with transaction.atomic():
        ledger.post(
            kind=TransactionKind.GRANT, reference="all-of-it", lines=[(mine, -300), (theirs, 300)]
        )
    assert (selectors.wallet_balance(student), selectors.wallet_balance(other_student)) == (0, 300)


def test_the_same_reference_cannot_be_posted_twice(student):
    services.wallet_grant(user=student, amount_fen=100, reference="r")
    wallet = ledger.account_for_owner(AccountKind.WALLET, student)
    promo = ledger.account_system(AccountKind.PROMOTIONS_EXPENSE)
    with pytest.raises(IntegrityError), transaction.atomic():
        ledger.post(
            kind=TransactionKind.GRANT, reference="grant:r", lines=[(promo, -1), (wallet, 1)]
        )


@pytest.mark.django_db(transaction=True)
def test_post_outside_a_transaction_is_refused(student):
    wallet = ledger.account_for_owner(AccountKind.WALLET, student)
    promo = ledger.account_system(AccountKind.PROMOTIONS_EXPENSE)
    with pytest.raises(LedgerError):
        ledger.post(kind=TransactionKind.GRANT, reference="r", lines=[(promo, -1), (wallet, 1)])


def test_entries_and_transactions_are_append_only(student):
    txn = services.wallet_grant(user=student, amount_fen=100, reference="r")
    entry = txn.entries.first()
    for obj in (txn, entry):
        with pytest.raises(TypeError):
            obj.save()
        with pytest.raises(TypeError):
            obj.delete()
    with pytest.raises(TypeError):
        Entry.objects.update(amount_fen=1)
    with pytest.raises(TypeError):
        Entry.objects.all().delete()
    with pytest.raises(TypeError):
        LedgerTransaction.objects.filter(pk=txn.pk).update(memo="edited")
    with pytest.raises(TypeError):
        LedgerTransaction.objects.all().delete()


def test_account_holder_must_match_its_kind(student, order):
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.create(kind=AccountKind.WALLET)  # a wallet needs an owner
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.create(kind=AccountKind.ESCROW, owner=student)  # escrow is per order
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.create(kind=AccountKind.PLATFORM_REVENUE, order=order)
    ledger.account_system(AccountKind.PLATFORM_REVENUE)
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.create(kind=AccountKind.PLATFORM_REVENUE)  # one per platform


def test_merchant_payable_account_is_ready_for_merchants(student):
    account = ledger.account_for_owner(AccountKind.MERCHANT_PAYABLE, student)
    assert ledger.account_for_owner(AccountKind.MERCHANT_PAYABLE, student) == account
    assert ledger.balance(account) == 0


def test_entry_amount_cannot_be_zero(student):
    txn = services.wallet_grant(user=student, amount_fen=100, reference="r")
    with pytest.raises(IntegrityError), transaction.atomic():
        Entry.objects.create(transaction=txn, account=txn.entries.first().account, amount_fen=0)


def test_yuan_formats_fen_exactly():
    assert services.yuan(0) == "¥0.00"
    assert services.yuan(5) == "¥0.05"
    assert services.yuan(123_456) == "¥1234.56"
    assert services.yuan(-300) == "-¥3.00"
