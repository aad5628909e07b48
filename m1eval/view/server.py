"""The viewer as an ASGI app (Starlette): every GET goes to ``Site.render``; anything else is a 404.

Starlette is a small ASGI toolkit (routing, responses, a test client) with no template or
ORM layer of its own, so the one rendering path stays ``pages.Site`` and the server adds
only what serving needs: the security headers, GET/HEAD only, and 404 for every path the
site does not know (``..``, encoded or not, never reaches the file system: pages are
looked up by name, and static files come from the package, not from a folder).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from m1eval.view.pages import CSP_HEADER, HTML, Site

HEADERS = {
    "Content-Security-Policy": CSP_HEADER,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",  # a run folder can change while it is open
    "Cross-Origin-Opener-Policy": "same-origin",
}
NOT_FOUND = (
    b"<!doctype html><title>404</title><p>Not found: this viewer serves only the pages of the runs it found.</p>"
)


def create_app(site: Site) -> Starlette:
    async def page(request: Request) -> Response:
        path = request.path_params.get("path", "")
        result = await run_in_threadpool(site.render, path)  # a re-read of a large run must not stall other pages
        if result is None:
            return Response(NOT_FOUND, status_code=404, media_type=HTML, headers=HEADERS)
        return Response(result.body, status_code=result.status, media_type=result.content_type, headers=HEADERS)

    async def refuse(request: Request) -> Response:
        return Response(b"read-only viewer", status_code=405, headers={**HEADERS, "Allow": "GET, HEAD"})

    routes = [
        Route("/", page, methods=["GET", "HEAD"]),
        Route("/{path:path}", page, methods=["GET", "HEAD"]),
        Route("/{path:path}", refuse, methods=["POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
    ]
    return Starlette(routes=routes)
