"""Hostile text is shown, never run; only the runs found are served; nothing is written; a broken run is a message.

Each rendered page is parsed (html.parser) and checked structurally: the only script is the
package's view.js, no element has an event-handler attribute, no link or source uses a
``javascript:`` URL, no element came from data (<img>, <svg> from a payload), and the
payload is on the page as text. With Jinja's autoescape switched off these fail.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from helpers.view_runs import PAYLOADS, make_hostile_run, make_known_run
from starlette.testclient import TestClient

from m1eval.rundir.synthetic import make_synthetic_run
from m1eval.view.catalog import Catalog
from m1eval.view.export import ExportError, export_site
from m1eval.view.pages import CSP, Site
from m1eval.view.server import create_app

ALLOWED_TAGS = {
    "html",
    "head",
    "meta",
    "title",
    "link",
    "script",
    "body",
    "nav",
    "a",
    "main",
    "footer",
    "h1",
    "h2",
    "h3",
    "p",
    "span",
    "code",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "div",
    "input",
    "button",
    "pre",
    "mark",
    "details",
    "summary",
    "section",
    "svg",
    "line",
    "text",
    "polygon",
    "polyline",
    "circle",
    "rect",
}


class PageShape(HTMLParser):
    """The elements and attributes of a page, and its text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.script_text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):  # noqa: ANN001 - HTMLParser's signature
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):  # noqa: ANN001
        self._in_script = False

    def handle_data(self, data):  # noqa: ANN001
        (self.script_text if self._in_script else self.text).append(data)


def assert_safe(html: str, *, expect_text: tuple[str, ...] = ()) -> PageShape:
    shape = PageShape()
    shape.feed(html)
    for tag, attrs in shape.tags:
        assert tag in ALLOWED_TAGS, f"element <{tag}> on the page: {attrs}"
        handlers = [name for name in attrs if name.startswith("on")]
        assert not handlers, f"<{tag}> has event handler attribute(s) {handlers}"
        for name in ("href", "src", "action", "formaction", "xlink:href"):
            value = (attrs.get(name) or "").strip().lower()
            assert not value.startswith(("javascript:", "data:", "vbscript:")), f"<{tag} {name}={value!r}>"
        if tag == "script":
            assert attrs.get("src", "").endswith("static/view.js"), f"a script that is not view.js: {attrs}"
        assert "style" not in attrs, f"<{tag}> has an inline style"
    assert not "".join(shape.script_text).strip(), "inline script content"
    text = "".join(shape.text)
    for needle in expect_text:
        assert needle in text, f"{needle!r} is not shown as text"
    return shape


@pytest.fixture
def hostile(tmp_path):
    root = tmp_path / "runs"
    make_hostile_run(root)
    make_known_run(root)
    make_hostile_run(root, model="<img src=x onerror=window.__xss=10>")  # a pair for the comparison
    make_synthetic_run(root, task="evil", model="plain", n_problems=3, n_samples=4)  # shares no problem: a message
    return root


def all_pages(site: Site) -> dict[str, bytes]:
    """Every page; a comparison of runs without shared problems is the one page allowed to be a message."""
    out = {}
    for path in site.paths():
        page = site.render(path)
        assert page is not None, path
        assert page.status == 200 or (page.status == 503 and b"share no problem" in page.body), (path, page.body[:300])
        out[path] = page.body
    return out


def test_every_page_shows_payloads_as_text(hostile):
    site = Site(Catalog([hostile]))
    try:
        pages = all_pages(site)
        evil = [p for p in pages if "evil--" in p and p.endswith(".html")]
        assert any("/p/" in p for p in evil) and any(p.startswith("compare/") for p in evil)
        for path, body in pages.items():
            if path.endswith(".html") or path == "index.html":
                assert_safe(body.decode())
        runs = pages["index.html"].decode()
        assert_safe(
            runs,
            expect_text=("<script>m</script><script>window.__xss=9</script>", 'r"><img src=x onerror=window.__xss=8>'),
        )
        key = next(k for k in site.catalog.slots if k.startswith("evil--script"))
        problem = pages[f"runs/{key}/p/0.html"].decode()
        assert_safe(problem, expect_text=(*PAYLOADS[:6], "<script>x</script>", "window.__xss=6"))
        assert "{{ 7*7 }}" in problem and "49" not in problem.split("{{ 7*7 }}")[0][-5:]
        # the long parts are left out and loaded on demand: their text arrives as JSON, read as text by view.js
        assert problem.count('data-src="0/s1.json"') == 2 and "window.__xss=7" not in problem.split("sample 1")[1][:200]
        text = site.render(f"runs/{key}/p/0/s1.json")
        parts = json.loads(text.body)["parts"]
        assert text.content_type == "application/json" and parts[1]["mark"] == "<script>x</script>"
        assert "\x1b" not in problem or "\\x1b" not in problem  # control characters pass through as text only
    finally:
        site.close()


def test_control_characters_survive_as_text(hostile):
    site = Site(Catalog([hostile]))
    try:
        key = next(k for k in site.catalog.slots if k.startswith("evil--script"))
        body = site.render(f"runs/{key}/p/1.html").body.decode("utf-8")
        assert "ctrl\x00\x01\x1b[31m\x7f\u2028\u2029end" in body  # escaped HTML text: shown, not interpreted
        json.loads(site.render(f"runs/{key}/p/1/s1.json").body)  # still valid JSON
        no_answer = site.render(f"runs/{key}/p/1/s3.json")  # a sample without an answer: nothing marked
        assert no_answer.status == 200 and all(not p["mark"] for p in json.loads(no_answer.body)["parts"])
    finally:
        site.close()


def test_export_pages_carry_the_policy_and_inline_texts(hostile, tmp_path):
    site = Site(Catalog([hostile]), inline_texts=True)
    try:
        count = export_site(site, tmp_path / "out")
        key = next(k for k in site.catalog.slots if k.startswith("evil--script"))
        assert site.render(f"runs/{key}/p/0/s1.json") is None  # no text endpoints in an export
        html_files = list((tmp_path / "out").rglob("*.html"))
        assert count == len(html_files) + 3 and (tmp_path / "out/static/view.js").exists()
        for path in html_files:
            shape = assert_safe(path.read_text(encoding="utf-8"))
            metas = [a for t, a in shape.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
            assert [m["content"] for m in metas] == [CSP], path
        problem = (tmp_path / "out" / "runs" / key / "p" / "0.html").read_text(encoding="utf-8")
        assert "data-src" not in problem and "window.__xss=7" in problem  # inline, collapsed, as text
        with pytest.raises(ExportError, match="inside run folder"):
            export_site(site, next(iter(site.catalog.slots.values())).path / "export")
    finally:
        site.close()


def _raw_get(app, raw_path: bytes) -> int:
    """A request with this exact path (no client-side normalisation of '..' or escapes)."""
    status = {}

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            status["code"] = message["status"]

    from urllib.parse import unquote_to_bytes

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": unquote_to_bytes(raw_path).decode("utf-8", "replace"),
        "raw_path": raw_path,
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "root_path": "",
    }
    asyncio.run(app(scope, receive, send))
    return status["code"]


def test_only_the_runs_pages_are_served(hostile):
    site = Site(Catalog([hostile]))
    app = create_app(site)
    key = next(iter(site.catalog.slots))
    try:
        with TestClient(app) as client:
            ok = client.get("/")
            assert ok.status_code == 200 and ok.headers["content-security-policy"].startswith("default-src 'none'")
            assert "frame-ancestors 'none'" in ok.headers["content-security-policy"]
            assert ok.headers["x-content-type-options"] == "nosniff"
            assert client.get(f"/runs/{key}/index.html").status_code == 200
            assert client.get("/static/view.js").headers["content-type"].startswith("text/javascript")
            for path in (
                "/runs/nope/index.html",
                f"/runs/{key}/p/999.html",
                f"/runs/{key}/manifest.json",
                f"/runs/{key}/samples.jsonl",
                f"/runs/{key}/p/0/s99.json",
                "/static/pages.py",
                "/compare/a/b/index.html",
                "/favicon.ico",
                "/index.htm",
                f"/runs/{key}/p/-1.html",
            ):
                assert client.get(path).status_code == 404, path
            assert client.post("/").status_code == 405 and client.delete(f"/runs/{key}/index.html").status_code == 405
        for raw in (
            b"/../../../../etc/passwd",
            b"/static/../pages.py",
            b"/static/..%2fpages.py",
            b"/%2e%2e/%2e%2e/etc/passwd",
            b"/runs/" + key.encode() + b"/../../index.html",
            b"/static/view.js/../../../../m1eval/view/pages.py",
            b"/static/%2e%2e/templates/base.html",
            b"/runs/..%2f..%2f/index.html",
            b"//etc/passwd",
            b"/runs/" + key.encode() + b"/p/0.html/..",
        ):
            assert _raw_get(app, raw) == 404, raw
    finally:
        site.close()


def _snapshot(root: Path) -> dict[str, tuple]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_viewing_never_writes(hostile, tmp_path):
    before = _snapshot(hostile)
    site = Site(Catalog([hostile]))
    try:
        all_pages(site)
        with TestClient(create_app(site)) as client:
            for path in site.paths()[:20]:
                client.get("/" + path)
        export_site(Site(site.catalog, inline_texts=True), tmp_path / "exported")
    finally:
        site.close()
    assert _snapshot(hostile) == before


def test_a_run_that_breaks_while_open_is_a_message(tmp_path):
    path = make_synthetic_run(tmp_path, n_problems=4, n_samples=4)
    site = Site(Catalog([tmp_path]))
    key = next(iter(site.catalog.slots))
    try:
        with TestClient(create_app(site)) as client:
            assert client.get(f"/runs/{key}/index.html").status_code == 200
            (path / "grades.parquet").write_bytes(b"not a parquet file")
            broken = client.get(f"/runs/{key}/index.html")
            assert broken.status_code == 503 and "cannot be read now" in broken.text and "grades.parquet" in broken.text
            assert client.get(f"/runs/{key}/p/0.html").status_code == 503
            assert client.get(f"/runs/{key}/p/0/s0.json").json()["error"]
            runs = client.get("/")
            assert runs.status_code == 200 and "cannot be read now" in runs.text
            (path / "manifest.json").unlink()
            assert client.get(f"/runs/{key}/index.html").status_code == 503
        make_synthetic_run(tmp_path, n_problems=6, n_samples=4)  # the same folder written again, larger
        assert site.render(f"runs/{key}/index.html").status == 200 and site.render(f"runs/{key}/p/5.html").status == 200
    finally:
        site.close()


def test_the_checks_catch_escaping_switched_off(hostile):
    """The same pages rendered with Jinja's autoescape off must fail ``assert_safe``: the checks can fail."""
    site = Site(Catalog([hostile]))
    try:
        site.env.autoescape = False
        site.env.cache.clear()
        key = next(k for k in site.catalog.slots if k.startswith("evil--script"))
        for path in ("index.html", f"runs/{key}/index.html", f"runs/{key}/p/0.html"):
            with pytest.raises(AssertionError):
                assert_safe(site.render(path).body.decode())
    finally:
        site.close()


def test_a_problem_page_reads_only_its_own_samples(tmp_path):
    """Another problem's lines are garbled in place (same size, same mtime): this page still renders, that one says so."""
    import os

    path = make_synthetic_run(tmp_path, n_problems=3, n_samples=2)
    site = Site(Catalog([tmp_path]))
    key = next(iter(site.catalog.slots))
    try:
        frame = site.catalog.loaded(key).run.frame
        samples = path / "samples.jsonl"
        stat = samples.stat()
        data = bytearray(samples.read_bytes())
        for row in frame[frame["problem_id"] == "aime25-0002"].itertuples():
            data[row.line_offset : row.line_offset + row.line_bytes - 1] = b"x" * (row.line_bytes - 1)
        samples.write_bytes(bytes(data))
        os.utime(samples, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # the change the signature cannot see
        assert site.render(f"runs/{key}/p/0.html").status == 200
        broken = site.render(f"runs/{key}/p/2.html")
        assert broken.status == 503 and b"changed while open" in broken.body
        json_error = site.render(f"runs/{key}/p/2/s0.json")
        assert json_error.status == 503 and "changed while open" in json.loads(json_error.body)["error"]
        missing = site.render(f"runs/{key}/p/1/s0.json")
        assert missing.status == 200 and json.loads(missing.body)["parts"][-1]["mark"]
    finally:
        site.close()
