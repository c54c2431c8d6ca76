"""The operations dashboard at /ops/: one page, read-only, staff only. The
page draws its charts from /ops/data.json and refreshes them, and its
tables from /ops/tables, every few seconds without a reload."""

from django.contrib.admin.views.decorators import staff_member_required
from django.http import JsonResponse
from django.shortcuts import render
from django.utils import timezone

from . import panels

REFRESH_SECONDS = 15


@staff_member_required
def dashboard(request):
    now = timezone.now()
    refresh = request.GET.get("refresh", "")
    seconds = max(2, min(int(refresh), 3600)) if refresh.isdigit() else REFRESH_SECONDS
    return render(
        request,
        "ops/dashboard.html",
        {**panels.tables(now), "charts": panels.charts(now), "refresh_seconds": seconds},
    )


@staff_member_required
def dashboard_data(request):
    return JsonResponse(panels.charts())


@staff_member_required
def dashboard_tables(request):
    return render(request, "ops/tables.html", panels.tables())
