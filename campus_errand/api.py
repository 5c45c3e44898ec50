"""API-wide pieces: the exception handler that turns domain errors into clear 4xx answers."""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from orders.errors import OrderError


def exception_handler(exc, context):
    if isinstance(exc, OrderError):
        return Response({"detail": str(exc.message), "code": exc.code}, status=exc.http_status)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if response.status_code == status.HTTP_400_BAD_REQUEST and isinstance(response.data, list):
        response.data = {"detail": response.data}
    return response


class AutoSchema(SpectacularAutoSchema):
    """Names nested `InputSerializer`/`OutputSerializer` classes after their view.

    The house style nests them in each API view, so their bare names collide in the schema;
    `OrderListCreateApi.InputSerializer` becomes the component `OrderListCreateInput`.
    """

    def _get_serializer_name(self, serializer, direction, bypass_extensions=False):
        name = super()._get_serializer_name(serializer, direction, bypass_extensions)
        cls = serializer if isinstance(serializer, type) else serializer.__class__
        outer, _, inner = cls.__qualname__.rpartition(".")
        if outer and inner in ("InputSerializer", "OutputSerializer"):
            return outer.split(".")[-1].removesuffix("Api") + name
        return name
