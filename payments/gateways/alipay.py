"""Alipay (支付宝) adapter: the seam, documented, not implemented.

What an implementation must do (see opendocs.alipay.com):

- Settings: ALIPAY_APP_ID, the app private key (signs requests, RSA2), the Alipay public key
  (verifies notifications), the gateway URL (sandbox or production), all from the environment.
- `create_intent(topup)`: alipay.trade.wap.pay (mobile web) with out_trade_no = topup.intent_id,
  total_amount = topup.amount_fen / 100 formatted with exactly two decimals (Alipay speaks yuan:
  convert at this edge only, never with floats: f"{fen // 100}.{fen % 100:02d}"), subject,
  notify_url = https://<host>/api/payments/alipay/callback/ and return_url = the wallet page.
  Return the signed redirect URL as pay_url.
- `parse_callback(body, headers)`: the notify is a form POST. Verify `sign` (RSA2, SHA256withRSA)
  over the other parameters sorted by name, excluding sign and sign_type; check app_id is ours;
  refuse a notify_time older than the tolerance (CallbackRefused("stale")); map out_trade_no ->
  intent_id, trade_no -> gateway_txn_id, total_amount -> amount_fen (parse the decimal string
  into fen exactly), trade_status in {TRADE_SUCCESS, TRADE_FINISHED} -> succeeded.
- `acknowledge(result)`: the plain-text body "success" (HTTP 200) once processed or replayed, so
  that Alipay stops its retries (it retries 8 times over 25 hours); "fail" otherwise.
- `payout(withdrawal)`: alipay.fund.trans.uni.transfer to the rider's Alipay account with
  out_biz_no derived from the withdrawal id (idempotent at Alipay); return order_id.
"""

from payments.gateways.base import PaymentGateway


class AlipayGateway(PaymentGateway):
    name = "alipay"
    label = "支付宝 Alipay"

    def create_intent(self, topup):
        raise NotImplementedError("Alipay: alipay.trade.wap.pay, see the module docstring")

    def parse_callback(self, *, body, headers):
        raise NotImplementedError("Alipay: verify the RSA2 sign over the sorted notify params")

    def acknowledge(self, result):
        raise NotImplementedError("Alipay: answer the plain text 'success' or 'fail'")

    def payout(self, withdrawal):
        raise NotImplementedError("Alipay: alipay.fund.trans.uni.transfer")
