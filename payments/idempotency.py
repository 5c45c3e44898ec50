"""`Idempotency-Key` for money endpoints.

A client that is unsure whether its request went through (a timeout, a dropped connection)
sends it again with the same key. The first response for (user, key) is stored together with a
hash of the request; a retry with the same request gets that response again, status and body,
with `Idempotent-Replayed: true`, and moves no money. The same key with a different request is
refused with 422.

The key row is inserted in the same database transaction as the money movement: a concurrent
retry blocks on the unique index until the first request commits, then replays its response.
If the first request fails with a server error, nothing is stored and a retry runs afresh.
Validation errors (400) and permission errors happen before the key is looked at, so a client
may fix its payload and retry with the same key.
"""

import hashlib
import json

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from rest_framework import status
from rest_framework.response import Response

from payments.models import IdempotencyKey

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


def request_fingerprint(request) -> str:
    data = request.data
    if hasattr(data, "lists"):  # a QueryDict from a form post
        data = {key: values for key, values in data.lists()}
    canonical = json.dumps(
        {"method": request.method, "path": request.path, "data": data},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotent(view, request, handler) -> Response:
    """Run `handler()` (which returns a DRF Response) at most once per (user, Idempotency-Key)."""
    key = request.headers.get(HEADER, "").strip()
    if not key:
        return handler()
    if len(key) > MAX_KEY_LENGTH:
        return Response(
            {
                "detail": _("The Idempotency-Key header is longer than %(max)d characters.")
                % {"max": MAX_KEY_LENGTH},
                "code": "invalid_idempotency_key",
            },
            status=status.HTTP_400_BAD_REQUEST,
        )
    fingerprint = request_fingerprint(request)
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = IdempotencyKey.objects.create(
                    user=request.user, key=key, request_hash=fingerprint
                )
        except IntegrityError:
            record = IdempotencyKey.objects.get(user=request.user, key=key)
            if record.request_hash != fingerprint:
                return Response(
                    {
                        "detail": _(
                            "This Idempotency-Key was already used for a different request. "
                            "Use a new key for a new request."
                        ),
                        "code": "idempotency_key_reused",
                    },
                    status=status.HTTP_422_UNPROCESSABLE_ENTITY,
                )
            replay = Response(record.response_body, status=record.response_status)
            replay["Idempotent-Replayed"] = "true"
            return replay
        try:
            with transaction.atomic():
                response = handler()
        except Exception as exc:  # domain errors become their 4xx response, stored like any other
            response = view.handle_exception(exc)  # re-raises what it cannot handle (a 500)
        if response.status_code >= 500:
            transaction.set_rollback(True)
            return response
        record.response_status = response.status_code
        record.response_body = response.data
        record.save(update_fields=["response_status", "response_body"])
        return response
