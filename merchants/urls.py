from django.urls import path

from merchants import views

app_name = "merchants"

urlpatterns = [
    # students
    path("takeout/", views.browse, name="browse"),
    path("takeout/coupons/", views.coupons, name="coupons"),
    path("takeout/meals/", views.meals, name="meals"),
    path("takeout/meals/<int:pk>/join/", views.meal_join, name="meal_join"),
    path("takeout/meals/joins/<int:pk>/leave/", views.meal_leave, name="meal_leave"),
    path("takeout/notices/read/", views.notices_read, name="notices_read"),
    path("takeout/orders/<str:number>/", views.takeout_order, name="takeout_order"),
    path("takeout/orders/<str:number>/track/", views.track, name="track"),
    path("takeout/groups/<str:token>/", views.group, name="group"),
    path("takeout/items/<int:pk>/photo/<str:size>/", views.item_photo, name="item_photo"),
    path("takeout/<slug:slug>/", views.menu, name="menu"),
    path("takeout/<slug:slug>/cart/", views.cart_add, name="cart_add"),
    path("takeout/<slug:slug>/cart/<int:pk>/", views.cart_line, name="cart_line"),
    path("takeout/<slug:slug>/checkout/", views.checkout, name="checkout"),
    path("takeout/<slug:slug>/group/", views.group_open, name="group_open"),
    # the merchant portal
    path("merchant/", views.portal_home, name="portal"),
    path("merchant/settlement/", views.settlement_all, name="settlement_all"),
    path("merchant/<slug:slug>/", views.inbox, name="inbox"),
    path("merchant/<slug:slug>/inbox/", views.inbox_fragment, name="inbox_fragment"),
    path(
        "merchant/<slug:slug>/tickets/<str:number>/print/",
        views.ticket_print,
        name="ticket_print",
    ),
    path(
        "merchant/<slug:slug>/tickets/<str:number>/<str:action>/",
        views.ticket_step,
        name="ticket_step",
    ),
    path("merchant/<slug:slug>/menu/", views.menu_admin, name="menu_admin"),
    path("merchant/<slug:slug>/menu/items/new/", views.item_edit, name="item_new"),
    path("merchant/<slug:slug>/menu/items/<int:pk>/", views.item_edit, name="item_edit"),
    path(
        "merchant/<slug:slug>/menu/items/<int:pk>/options/",
        views.item_options,
        name="item_options",
    ),
    path(
        "merchant/<slug:slug>/menu/items/<int:pk>/<str:action>/",
        views.item_quick,
        name="item_quick",
    ),
    path("merchant/<slug:slug>/settings/", views.settings_page, name="settings"),
    path("merchant/<slug:slug>/sales/", views.sales, name="sales"),
    path("merchant/<slug:slug>/sales.csv", views.sales_csv, name="sales_csv"),
    path("merchant/<slug:slug>/settlement/", views.settlement, name="settlement"),
]
