from django.urls import path

from . import views

urlpatterns = [
    path("whoami", views.WhoAmIView.as_view(), name="whoami"),
    path("trades", views.TradesView.as_view(), name="trades"),
    path("exposure", views.ExposureView.as_view(), name="exposure"),
    path("exposure/check", views.ExposureCheckView.as_view(), name="exposure-check"),
    path("marks", views.MarksView.as_view(), name="marks"),
    path("obligations", views.ObligationListView.as_view(), name="obligations"),
]
