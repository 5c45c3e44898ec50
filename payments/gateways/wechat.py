"""WeChat Pay (微信支付) API v3 adapter: the seam, documented, not implemented.

What an implementation must do (see pay.weixin.qq.com, API v3 docs):

- Settings: WECHATPAY_MCHID, WECHATPAY_APPID, WECHATPAY_API_V3_KEY (32 bytes, decrypts
  notifications), the merchant private key and its certificate serial number (signs requests),
  and the WeChat Pay platform public key / certificates (verifies callbacks). Read them from the
  environment in settings.py, never from files in the repository.
- `create_intent(topup)`: POST /v3/pay/transactions/h5 (mobile browser) or /jsapi (inside WeChat)
  with out_trade_no = topup.intent_id, amount.total = topup.amount_fen (fen, as here), a
  description, and notify_url = https://<host>/api/payments/wechat/callback/. Sign the request
  (WECHATPAY2-SHA256-RSA2048). Return the h5_url (or the JSAPI parameters in `params`).
- `parse_callback(body, headers)`: verify Wechatpay-Signature (RSA-SHA256 over
  "<Wechatpay-Timestamp>\\n<Wechatpay-Nonce>\\n<body>\\n" with the platform key named by
  Wechatpay-Serial); refuse a timestamp more than PAYMENT_CALLBACK_TOLERANCE_SECONDS away
  (CallbackRefused("stale")); decrypt resource.ciphertext with AES-256-GCM under the API v3 key;
  map out_trade_no -> intent_id, transaction_id -> gateway_txn_id, amount.total -> amount_fen,
  trade_state == "SUCCESS" -> succeeded. Bad signature: CallbackRefused("bad_signature").
- `acknowledge(result)`: HTTP 200 with {"code": "SUCCESS"} for accepted and replayed notices
  (WeChat retries for up to 24 h otherwise); 4xx/5xx with {"code": "FAIL", "message": ...}.
- `payout(withdrawal)`: a transfer to the rider's WeChat balance (商家转账到零钱,
  POST /v3/transfer/batches) with out_batch_no derived from the withdrawal id, so that a retry
  cannot pay twice; return the batch id.
"""

from payments.gateways.base import PaymentGateway


class WeChatPayGateway(PaymentGateway):
    name = "wechat"
    label = "微信支付 WeChat Pay"

    def create_intent(self, topup):
        raise NotImplementedError("WeChat Pay: see the module docstring for what to implement")

    def parse_callback(self, *, body, headers):
        raise NotImplementedError("WeChat Pay: verify Wechatpay-Signature, decrypt the resource")

    def acknowledge(self, result):
        raise NotImplementedError("WeChat Pay: 200 {'code': 'SUCCESS'} or 4xx {'code': 'FAIL'}")

    def payout(self, withdrawal):
        raise NotImplementedError("WeChat Pay: transfer to the rider's balance (转账到零钱)")
