"""This app's endpoints under /api/v1/ (included from config/urls.py)."""

urlpatterns: list = []
