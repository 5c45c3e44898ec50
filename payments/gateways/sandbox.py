"""The sandbox gateway: behaves like the real ones, moves no real money.

- `create_intent` returns the URL of the sandbox cashier page (payments:sandbox_cashier), which
  stands in for the gateway's hosted page.
- When the payer confirms there, the "gateway" sends its callback: a JSON body signed with
  HMAC-SHA256 under PAYMENT_SANDBOX_SECRET, in the `X-Sandbox-Signature` header (hex). The body
  carries the intent, a gateway transaction id, the amount, the result and a Unix timestamp.
- `parse_callback` checks the signature (constant-time) and that the timestamp lies within
  PAYMENT_CALLBACK_TOLERANCE_SECONDS of now, like WeChat Pay's and Alipay's notify checks.
- Acknowledgements follow WeChat Pay v3: HTTP 200 `{"code": "SUCCESS"}` stops the retries,
  anything else is `{"code": "FAIL", "message": ...}` with a 4xx status.
"""

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping

from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from payments.gateways.base import (
    CallbackNotice,
    CallbackRefused,
    CallbackResult,
    PaymentGateway,
    PaymentIntent,
)

SIGNATURE_HEADER = "X-Sandbox-Signature"


def sign(body: bytes, secret: str | None = None) -> str:
    key = (secret if secret is not None else settings.PAYMENT_SANDBOX_SECRET).encode()
    return hmac.new(key, body, hashlib.sha256).hexdigest()


class SandboxGateway(PaymentGateway):
    name = "sandbox"
    label = _("Sandbox (test money)")

    def create_intent(self, topup) -> PaymentIntent:
        return PaymentIntent(
            intent_id=topup.intent_id,
            pay_url=reverse("payments:sandbox_cashier", args=[topup.intent_id]),
        )

    def notification(
        self,
        topup,
        *,
        succeeded: bool = True,
        gateway_txn_id: str | None = None,
        timestamp: int | None = None,
        amount_fen: int | None = None,
        secret: str | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """The callback the sandbox sends once the payer confirms: (body, headers)."""
        body = json.dumps(
            {
                "intent_id": topup.intent_id,
                "gateway_txn_id": gateway_txn_id or f"sbx_{secrets.token_hex(10)}",
                "amount_fen": topup.amount_fen if amount_fen is None else amount_fen,
                "result": "SUCCESS" if succeeded else "FAIL",
                "timestamp": int(time.time()) if timestamp is None else timestamp,
            },
            separators=(",", ":"),
        ).encode()
        return body, {SIGNATURE_HEADER: sign(body, secret), "Content-Type": "application/json"}

    def parse_callback(self, *, body: bytes, headers: Mapping[str, str]) -> CallbackNotice:
        signature = headers.get(SIGNATURE_HEADER, "") or ""
        if not signature or not hmac.compare_digest(signature, sign(body)):
            raise CallbackRefused("bad_signature")
        try:
            data = json.loads(body)
            notice = CallbackNotice(
                intent_id=str(data["intent_id"]),
                gateway_txn_id=str(data["gateway_txn_id"]),
                amount_fen=int(data["amount_fen"]),
                succeeded=data["result"] == "SUCCESS",
                timestamp=int(data["timestamp"]),
                signature=signature,
            )
        except (ValueError, KeyError, TypeError):
            raise CallbackRefused("malformed") from None
        if not notice.gateway_txn_id or not notice.intent_id:
            raise CallbackRefused("malformed")
        if abs(time.time() - notice.timestamp) > settings.PAYMENT_CALLBACK_TOLERANCE_SECONDS:
            raise CallbackRefused(
                "stale", intent_id=notice.intent_id, gateway_txn_id=notice.gateway_txn_id
            )
        return notice

    def acknowledge(self, result: CallbackResult) -> tuple[int, dict]:
        if 200 <= result.http_status < 300:
            return result.http_status, {"code": "SUCCESS", "outcome": result.outcome}
        return result.http_status, {"code": "FAIL", "message": result.outcome}

    def payout(self, withdrawal) -> str:
        return f"sbx_po_{secrets.token_hex(8)}"
