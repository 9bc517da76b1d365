"""The example's own views: a login that sets Django's session, and the chat page."""

from __future__ import annotations

from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

PAGE = (settings.BASE_DIR / "page.html").read_text()


@csrf_exempt
def login(request: HttpRequest) -> HttpResponse:
    user = request.GET.get("user", "")
    if not user:
        return HttpResponseBadRequest("user missing")
    request.session["user"] = user
    return HttpResponse(f"logged in as {user}")


def index(request: HttpRequest) -> HttpResponse:
    return HttpResponse(PAGE)


def centrifuge_js(request: HttpRequest) -> FileResponse:
    return FileResponse(settings.CENTRIFUGE_JS.open("rb"), content_type="text/javascript")


urlpatterns = [
    path("login", login),
    path("", index),
    path("centrifuge.js", centrifuge_js),
]
