from django.urls import path

from payments import views

app_name = "payments"
urlpatterns = [
    path("wallet/", views.wallet, name="wallet"),
    path("wallet/topups/", views.topup_create, name="topup"),
    path("wallet/sandbox/<str:intent_id>/", views.sandbox_cashier, name="sandbox_cashier"),
    path("wallet/receipts/<int:pk>/", views.receipt, name="receipt"),
    path("wallet/withdrawals/", views.withdrawals, name="withdrawals"),
    path("payments/orders/<str:number>/", views.order_money_fragment, name="order_money"),
    path("payments/orders/<str:number>/pay/", views.order_pay, name="order_pay"),
    path("payments/orders/<str:number>/cancel/", views.order_cancel, name="order_cancel"),
    path("payments/orders/<str:number>/confirm/", views.order_confirm, name="order_confirm"),
    path("payments/orders/<str:number>/dispute/", views.order_dispute, name="order_dispute"),
]
