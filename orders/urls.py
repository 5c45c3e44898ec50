from django.urls import path

from orders import views

app_name = "orders"
urlpatterns = [
    path("", views.order_list, name="list"),
    path("new/", views.order_new, name="new"),
    path("<str:number>/", views.order_detail, name="detail"),
    path("<str:number>/cancel/", views.order_cancel, name="cancel"),
    path("<str:number>/photo/", views.order_photo, name="photo"),
    path("<str:number>/photo/thumb/", views.order_photo_thumb, name="photo-thumb"),
    path("<str:number>/receipt/", views.order_receipt, name="receipt"),
    path("<str:number>/cost/", views.order_record_cost, name="record-cost"),
    path("<str:number>/check-in/", views.order_check_in, name="check-in"),
    path("<str:number>/deliver/", views.order_deliver, name="deliver"),
    path("<str:number>/rate/", views.order_rate, name="rate"),
    path("<str:number>/rate-customer/", views.order_rate_customer, name="rate-customer"),
    path("<str:number>/complaint/", views.order_complaint, name="complaint"),
    path("<str:number>/qr.svg", views.order_qr, name="qr"),
]
