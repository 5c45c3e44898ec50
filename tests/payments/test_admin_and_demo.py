"""Admin for every payments model (the ledger read-only), the deploy check, the demo money."""

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.urls import reverse

from accounts.models import User
from dispatch.demo import DEMO_WALLET_FEN, demo_seed
from orders.status import Status
from payments import selectors, services
from payments.checks import sandbox_secret_check
from payments.models import (
    Account,
    CampusMoneySettings,
    Dispute,
    Entry,
    GatewayCallback,
    IdempotencyKey,
    LedgerTransaction,
    TopUp,
    Withdrawal,
)
from tests import factories
from tests.payments.conftest import logged_in, move

MODELS = [
    Account,
    LedgerTransaction,
    Entry,
    TopUp,
    GatewayCallback,
    Withdrawal,
    Dispute,
    CampusMoneySettings,
    IdempotencyKey,
]
LEDGER = [Account, LedgerTransaction, Entry, TopUp, GatewayCallback, IdempotencyKey]


@pytest.fixture
def busy_ledger(student, campus, rider_male, api):
    order = factories.make_order(customer=student, campus=campus)
    move(order, Status.PICKED_UP, rider=rider_male)
    services.dispute_open(order=order, customer=student, reason="late")
    topup, _ = services.topup_create(user=student, amount_fen=1000)
    services.sandbox_pay(topup=topup, payer=student)
    factories.fund_earnings(rider_male, 500)
    services.withdrawal_request(rider=rider_male, amount_fen=200)
    api(student).post(
        "/api/wallet/topups/", {"amount_fen": 100}, format="json", HTTP_IDEMPOTENCY_KEY="k"
    )
    CampusMoneySettings.objects.create(campus=campus)


@pytest.fixture
def superuser(operator):
    operator.is_superuser = True
    operator.save()
    return operator


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_payments_model_has_an_admin_list_and_page(model, busy_ledger, superuser):
    client = logged_in(superuser)
    meta = model._meta
    assert client.get(reverse(f"admin:payments_{meta.model_name}_changelist")).status_code == 200
    obj = model.objects.first()
    url = reverse(f"admin:payments_{meta.model_name}_change", args=[obj.pk])
    assert client.get(url).status_code == 200


@pytest.mark.parametrize("model", LEDGER, ids=lambda m: m.__name__)
def test_ledger_tables_are_read_only_in_admin(model, busy_ledger, superuser):
    client = logged_in(superuser)
    name = model._meta.model_name
    obj = model.objects.first()
    count = model.objects.count()
    assert client.get(reverse(f"admin:payments_{name}_add")).status_code == 403
    assert client.get(reverse(f"admin:payments_{name}_delete", args=[obj.pk])).status_code == 403
    client.post(reverse(f"admin:payments_{name}_change", args=[obj.pk]), {})
    assert model.objects.count() == count


def test_ledger_list_shows_that_the_ledger_sums_to_zero(busy_ledger, superuser):
    html = logged_in(superuser).get(reverse("admin:payments_ledgertransaction_changelist"))
    assert "¥0.00" in html.content.decode()
    assert sum(selectors.ledger_totals().values()) == 0


def test_demo_seed_gives_students_200_yuan_once(campus):
    demo_seed(campus=campus)
    demo_seed(campus=campus)
    for username in ("student", "student2"):
        assert selectors.wallet_balance(User.objects.get(username=username)) == DEMO_WALLET_FEN
    assert selectors.wallet_balance(User.objects.get(username="rider_m")) == 0
    assert selectors.ledger_totals()["promotions_expense"] == -2 * DEMO_WALLET_FEN


def test_deploy_check_warns_about_the_dev_sandbox_secret():
    assert [w.id for w in sandbox_secret_check(None)] == ["payments.W001"]
    with override_settings(PAYMENT_SANDBOX_SECRET="a-real-secret"):
        assert sandbox_secret_check(None) == []
    with override_settings(PAYMENT_GATEWAYS=[]):
        assert sandbox_secret_check(None) == []


def test_migrations_are_complete(db):
    call_command("makemigrations", "payments", "--check", "--dry-run", verbosity=0)
