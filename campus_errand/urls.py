from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts.api import ObtainTokenApi
from orders import views as order_views

api_patterns = [
    path("auth/token/", ObtainTokenApi.as_view(), name="token"),
    path("", include("orders.api_urls")),
    path("", include("campus.api_urls")),
    path("", include("tracking.api_urls")),
    path("", include("riders.api_urls")),
    path("", include("dispatch.api_urls")),
    path("", include("merchants.api_urls")),
    path("", include("payments.api_urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
]

urlpatterns = [
    path("", order_views.home, name="home"),
    path("accounts/", include("accounts.urls")),
    path("orders/", include("orders.urls")),
    path("rider/", include("riders.urls")),
    path("dispatch/", include("dispatch.urls")),
    path("", include("payments.urls")),
    path("", include("merchants.urls")),
    path("privacy/", order_views.privacy, name="privacy"),
    path("", include("tracking.urls")),  # /ops/ (operators), the order page's chat and proof
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/", include((api_patterns, "api"))),
    path("admin/", admin.site.urls),
]
