from django.urls import path

from payments import api

urlpatterns = [
    path("wallet/", api.WalletApi.as_view(), name="wallet"),
    path("wallet/topups/", api.TopUpCreateApi.as_view(), name="topup-create"),
    path("wallet/topups/<str:intent_id>/", api.TopUpDetailApi.as_view(), name="topup-detail"),
    path("wallet/withdrawals/", api.WithdrawalListCreateApi.as_view(), name="withdrawals"),
    path(
        "payments/<str:gateway>/callback/",
        api.GatewayCallbackApi.as_view(),
        name="payments-callback",
    ),
]
