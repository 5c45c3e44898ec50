from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import views

app_name = "accounts"
urlpatterns = [
    path("login/", auth_views.LoginView.as_view(template_name="accounts/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("signup/", views.signup, name="signup"),
    path("addresses/", views.address_list, name="addresses"),
    path("addresses/<int:pk>/", views.address_edit, name="address-edit"),
    path("addresses/<int:pk>/delete/", views.address_delete, name="address-delete"),
]
