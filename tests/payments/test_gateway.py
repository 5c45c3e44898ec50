"""Top-ups through the sandbox gateway: its signed asynchronous callback is verified, and forged,
stale, replayed and duplicate callbacks are refused and recorded; the wallet is credited once."""

import json
import time

import pytest
from django.test import Client, override_settings

from payments import selectors, services
from payments.gateways import get_gateway
from payments.gateways.sandbox import SIGNATURE_HEADER, SandboxGateway, sign
from payments.models import CallbackOutcome, GatewayCallback, TopUpStatus
from tests.payments.conftest import assert_ledger_sound, logged_in

CALLBACK = "/api/payments/sandbox/callback/"


@pytest.fixture
def topup(student):
    topup, intent = services.topup_create(user=student, amount_fen=5_000)
    assert intent.pay_url == f"/wallet/sandbox/{topup.intent_id}/"
    return topup


def deliver(body: bytes, headers: dict):
    """What the gateway does: POST the notification to our callback URL, no session, no CSRF."""
    client = Client(enforce_csrf_checks=True)
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    return client.post(CALLBACK, body, content_type="application/json", **extra)


def notice(topup, **kw):
    return SandboxGateway().notification(topup, **kw)


def outcomes() -> list[str]:
    return list(GatewayCallback.objects.order_by("pk").values_list("outcome", flat=True))


def test_creating_a_topup_moves_no_money(topup, student):
    assert topup.status == TopUpStatus.PENDING
    assert selectors.wallet_balance(student) == 0


def test_good_callback_credits_the_wallet(topup, student):
    response = deliver(*notice(topup, gateway_txn_id="sbx_good"))

    assert response.status_code == 200
    assert response.json() == {"code": "SUCCESS", "outcome": "accepted"}
    topup.refresh_from_db()
    assert topup.status == TopUpStatus.SUCCEEDED and topup.gateway_txn_id == "sbx_good"
    assert selectors.wallet_balance(student) == 5_000
    record = GatewayCallback.objects.get()
    assert record.accepted and record.outcome == CallbackOutcome.ACCEPTED
    assert record.topup == topup and record.intent_id == topup.intent_id
    assert_ledger_sound()


def test_forged_callback_is_refused_and_recorded(topup, student):
    body, headers = notice(topup, secret="not-the-secret")
    response = deliver(body, headers)

    assert response.status_code == 401
    assert response.json()["code"] == "FAIL"
    assert selectors.wallet_balance(student) == 0
    assert outcomes() == [CallbackOutcome.BAD_SIGNATURE]
    assert GatewayCallback.objects.get().body == body.decode()


def test_tampered_amount_breaks_the_signature(topup, student):
    body, headers = notice(topup)
    tampered = body.replace(b'"amount_fen":5000', b'"amount_fen":500000')
    assert deliver(tampered, headers).status_code == 401
    assert selectors.wallet_balance(student) == 0


def test_callback_without_a_signature_is_401(topup, student):
    body, _headers = notice(topup)
    assert deliver(body, {}).status_code == 401
    assert outcomes() == [CallbackOutcome.BAD_SIGNATURE]


def test_replayed_callback_credits_once(topup, student):
    body, headers = notice(topup, gateway_txn_id="sbx_1")
    assert deliver(body, headers).status_code == 200

    replay = deliver(body, headers)

    # Acknowledged (a genuine gateway retry must stop), but refused: no money moves.
    assert replay.status_code == 200
    assert replay.json() == {"code": "SUCCESS", "outcome": "replayed"}
    assert selectors.wallet_balance(student) == 5_000
    assert outcomes() == [CallbackOutcome.ACCEPTED, CallbackOutcome.REPLAYED]
    assert not GatewayCallback.objects.get(outcome=CallbackOutcome.REPLAYED).accepted


def test_re_signed_notice_for_a_processed_transaction_is_a_replay(topup, student):
    deliver(*notice(topup, gateway_txn_id="sbx_1"))
    later = int(time.time()) + 5
    assert deliver(*notice(topup, gateway_txn_id="sbx_1", timestamp=later)).status_code == 200
    assert selectors.wallet_balance(student) == 5_000
    assert outcomes()[-1] == CallbackOutcome.REPLAYED


def test_stale_callback_is_refused_as_a_replay(topup, student):
    old = int(time.time()) - 301
    response = deliver(*notice(topup, timestamp=old))
    assert response.status_code == 400
    assert selectors.wallet_balance(student) == 0
    assert outcomes() == [CallbackOutcome.STALE]


def test_callback_from_the_future_is_refused(topup, student):
    assert deliver(*notice(topup, timestamp=int(time.time()) + 3600)).status_code == 400
    assert outcomes() == [CallbackOutcome.STALE]


def test_duplicate_payment_for_a_paid_intent_is_refused(topup, student):
    deliver(*notice(topup, gateway_txn_id="sbx_first"))

    response = deliver(*notice(topup, gateway_txn_id="sbx_second"))

    assert response.status_code == 409
    assert selectors.wallet_balance(student) == 5_000
    assert outcomes() == [CallbackOutcome.ACCEPTED, CallbackOutcome.DUPLICATE]


def test_amount_mismatch_is_refused(topup, student):
    response = deliver(*notice(topup, amount_fen=1))
    assert response.status_code == 400
    assert selectors.wallet_balance(student) == 0
    assert outcomes() == [CallbackOutcome.AMOUNT_MISMATCH]


def test_unknown_intent_is_refused(topup, student):
    body = json.dumps(
        {
            "intent_id": "ti_nope",
            "gateway_txn_id": "sbx_x",
            "amount_fen": 5000,
            "result": "SUCCESS",
            "timestamp": int(time.time()),
        }
    ).encode()
    response = deliver(body, {SIGNATURE_HEADER: sign(body)})
    assert response.status_code == 404
    assert outcomes() == [CallbackOutcome.UNKNOWN_INTENT]


@pytest.mark.parametrize("body", [b"not json", b"{}", b'{"intent_id": "x"}', b"[1, 2]"])
def test_malformed_but_signed_callback_is_refused(body, topup):
    response = deliver(body, {SIGNATURE_HEADER: sign(body)})
    assert response.status_code == 400
    assert outcomes() == [CallbackOutcome.MALFORMED]


def test_failed_payment_is_recorded_and_credits_nothing(topup, student):
    assert deliver(*notice(topup, succeeded=False, gateway_txn_id="sbx_f")).status_code == 200
    topup.refresh_from_db()
    assert topup.status == TopUpStatus.FAILED
    assert selectors.wallet_balance(student) == 0
    # The payer tries again on the gateway's page and this time it goes through.
    assert deliver(*notice(topup, gateway_txn_id="sbx_ok")).status_code == 200
    assert selectors.wallet_balance(student) == 5_000


def test_callback_endpoint_refuses_other_methods(topup):
    client = Client()
    assert client.get(CALLBACK).status_code == 405
    assert client.put(CALLBACK, b"{}", content_type="application/json").status_code == 405


def test_unknown_or_disabled_gateway_is_404(topup):
    body, headers = notice(topup)
    client = Client()
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    for name in ("nope", "wechat", "alipay"):  # seams exist but are not enabled
        response = client.post(
            f"/api/payments/{name}/callback/", body, content_type="application/json", **extra
        )
        assert response.status_code == 404
    assert not GatewayCallback.objects.exists()


@override_settings(PAYMENT_SANDBOX_SECRET="rotated-secret")
def test_the_secret_comes_from_settings(topup, student):
    assert deliver(*notice(topup, secret="dev-only-sandbox-secret")).status_code == 401
    assert deliver(*notice(topup)).status_code == 200


def test_sandbox_cashier_confirm_sends_the_signed_callback(topup, student):
    client = logged_in(student)
    page = client.get(f"/wallet/sandbox/{topup.intent_id}/")
    assert page.status_code == 200 and "¥50.00" in page.content.decode()

    response = client.post(f"/wallet/sandbox/{topup.intent_id}/", {"result": "success"})

    assert response.status_code == 302 and response["Location"] == "/wallet/"
    assert selectors.wallet_balance(student) == 5_000
    record = GatewayCallback.objects.get()
    assert record.accepted and record.signature  # it went through signature verification
    again = client.post(f"/wallet/sandbox/{topup.intent_id}/", {"result": "success"})
    assert again.status_code == 302
    assert selectors.wallet_balance(student) == 5_000


def test_sandbox_cashier_of_someone_else_is_404(topup, other_student):
    client = logged_in(other_student)
    assert client.get(f"/wallet/sandbox/{topup.intent_id}/").status_code == 404
    assert client.post(f"/wallet/sandbox/{topup.intent_id}/").status_code == 404


def test_real_gateway_seams_are_documented_and_not_implemented():
    from payments.gateways.alipay import AlipayGateway
    from payments.gateways.wechat import WeChatPayGateway

    for gateway in (WeChatPayGateway(), AlipayGateway()):
        doc = __import__(type(gateway).__module__, fromlist=["_"]).__doc__
        assert "parse_callback" in doc and "acknowledge" in doc and "payout" in doc
        with pytest.raises(NotImplementedError):
            gateway.create_intent(None)
        with pytest.raises(NotImplementedError):
            gateway.parse_callback(body=b"", headers={})
        with pytest.raises(NotImplementedError):
            gateway.payout(None)


def test_get_gateway_only_serves_enabled_gateways(settings):
    from payments.errors import UnknownGateway

    assert get_gateway("sandbox").name == "sandbox"
    settings.PAYMENT_GATEWAYS = []
    with pytest.raises(UnknownGateway):
        get_gateway("sandbox")
