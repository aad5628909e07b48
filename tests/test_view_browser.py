"""``m1eval view`` in a real browser: Debian's chromium driven by Playwright (no browser download).

The server runs in a thread on a free loopback port, over a hostile run (every shown string
an injection that sets ``window.__xss``), its twin for the comparison, and runs with known
clusters. Each step asserts what is on screen; every page must leave ``window.__xss``
unset and the console free of errors (a blocked inline script is a CSP console error).
The export is opened from disk (file://) and must sort and filter the same way.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from helpers.view_runs import make_hostile_run, make_known_run

from m1eval.view.catalog import Catalog
from m1eval.view.export import export_site
from m1eval.view.pages import Site
from m1eval.view.server import create_app

CHROMIUM = Path("/usr/bin/chromium")
playwright_api = pytest.importorskip("playwright.sync_api", reason="the dev extra installs playwright")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's chromium is not installed (scripts/install.sh installs it where apt-get can run)",
    ),
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    make_hostile_run(root)
    make_hostile_run(root, model="twin")
    make_known_run(root, "known-a")
    make_known_run(root, "known-b", flip=True)
    return root


@pytest.fixture(scope="module")
def server(runs):
    import uvicorn

    site = Site(Catalog([runs]))
    site.forms.warm()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(create_app(site), log_level="warning", lifespan="off")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "the viewer did not start"
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", site
    srv.should_exit = True
    thread.join(timeout=10)
    site.close()
    sock.close()


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield b
        b.close()


class Watched:
    """A page whose console errors and uncaught exceptions are collected."""

    def __init__(self, browser) -> None:  # noqa: ANN001
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.errors: list[str] = []
        self.page.on(
            "console", lambda m: self.errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None
        )
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))

    def clean(self) -> None:
        """No console error, no uncaught exception, no injected script ran."""
        assert self.page.evaluate("window.__xss") is None, "an injected script ran"
        assert self.errors == [], self.errors

    def visible_rows(self, table: str) -> list:
        return self.page.locator(f"{table} tbody tr:not([hidden])").all()


def test_walk_through_the_viewer(server, browser):
    base, _site = server
    w = Watched(browser)
    page = w.page
    page.goto(base + "/")
    assert page.locator("h1").inner_text() == "Runs"
    assert page.locator("h2", has_text="known").count() == 1 and page.locator("h2", has_text="evil").count() == 1
    model = page.locator("table.runs td", has_text="<script>m</script><script>window.__xss=9</script>")
    assert model.count() == 1 and model.inner_text() == "<script>m</script><script>window.__xss=9</script>"
    w.clean()

    # one run: sort, filter, quick filters
    page.locator("a", has_text="r1").first.click()
    assert "known-a/r1" in page.locator("h1").inner_text()
    assert page.locator("svg.chart polyline").count() == 2  # pass@k and maj@k
    th = page.locator("table.problems th", has_text="pass@1 %")
    th.click()
    first = [r.locator("td").nth(1).inner_text() for r in w.visible_rows("table.problems")]
    assert first[0] == "q2" and first[-1] == "q1"  # ascending pass@1: 0, 0.25, 0.5, 1
    th.click()
    assert w.visible_rows("table.problems")[0].locator("td").nth(1).inner_text() == "q1"
    page.fill("#filter", "q3")
    assert [r.locator("td").nth(1).inner_text() for r in w.visible_rows("table.problems")] == ["q3"]
    assert page.locator("#shown").inner_text() == "1 of 4 shown"
    page.fill("#filter", "")
    page.click("button[data-flag=selection]")
    assert sorted(r.locator("td").nth(1).inner_text() for r in w.visible_rows("table.problems")) == ["q0", "q3"]
    page.click("button[data-flag=selection]")
    page.click("button[data-flag=never]")
    assert [r.locator("td").nth(1).inner_text() for r in w.visible_rows("table.problems")] == ["q2"]
    page.click("button[data-flag=never]")
    page.click("button[data-flag=always]")
    assert [r.locator("td").nth(1).inner_text() for r in w.visible_rows("table.problems")] == ["q1"]
    w.clean()

    # one problem: clusters with the vote winner and the gold marked
    page.click("button[data-flag=always]")
    page.locator("table.problems a", has_text="q0").click()
    winner = page.locator("table.clusters tr.winner")
    assert winner.locator("code.answer").inner_text() == "7" and "vote winner" in winner.inner_text()
    gold = page.locator("table.clusters tr.gold")
    assert gold.locator("code.answer").inner_text() == "5" and "gold" in gold.inner_text()
    assert page.locator("section.sample").count() == 4
    assert page.locator("#s0 mark").inner_text() == "5"
    assert "m1eval check 5" in page.locator("#s0 pre.cmd").inner_text()
    w.clean()


def test_hostile_problem_expand_and_compare(server, browser):
    base, site = server
    w = Watched(browser)
    page = w.page
    key = next(k for k in site.catalog.slots if k.startswith("evil--script"))
    page.goto(f"{base}/runs/{key}/index.html")
    w.clean()
    page.locator("table.problems tbody a").first.click()
    assert "window.__xss=1" in page.locator("pre.question").inner_text()  # the payload, as text
    details = page.locator("#s1 details[data-src]")
    assert details.count() == 2  # the thinking and the answer part, both long, both loaded on demand
    answer_part = details.nth(1)
    assert answer_part.locator("pre.full").inner_text() == ""
    answer_part.locator("summary").click()
    page.locator("#s1 details[data-loaded=yes]").first.wait_for()  # (the page's CSP forbids evaluated strings)
    assert answer_part.locator("pre.full mark").inner_text() == "<script>x</script>"
    assert "onerror=window.__xss=7" in answer_part.locator("pre.full").inner_text()
    details.nth(0).locator("summary").click()
    page.locator("#s1 details[data-loaded=yes]").nth(1).wait_for()
    assert "window.__xss=6" in details.nth(0).locator("pre.full").inner_text()
    assert page.locator("img").count() == 0 and page.locator("section.sample script").count() == 0
    w.clean()

    page.goto(base + "/")
    page.locator("a.pair", has_text="known-a/r1 vs known-b/r1").click()
    assert page.locator("table.paired tbody tr").count() == 3  # pass@1, pass@4, maj@4 as report gives them
    assert page.locator("table.paired tbody tr").first.locator("td").first.inner_text() == "pass@1"
    page.click("button[data-flag=a-only]")
    assert [r.locator("td").first.inner_text() for r in w.visible_rows("table.pairs")] == ["q1"]
    page.click("button[data-flag=a-only]")
    page.click("button[data-flag=b-only]")
    assert [r.locator("td").first.inner_text() for r in w.visible_rows("table.pairs")] == ["q0"]
    page.locator("table.pairs a", has_text="q0").click()
    assert page.locator("table.clusters").count() == 2  # both runs' clusters side by side
    w.clean()

    page.goto(base + "/")
    page.locator("a.pair").first.click()  # the hostile pair
    w.clean()


def test_export_opens_from_disk(runs, browser, tmp_path):
    site = Site(Catalog([runs]), inline_texts=True)
    try:
        export_site(site, tmp_path / "site")
    finally:
        site.close()
    w = Watched(browser)
    page = w.page
    page.goto((tmp_path / "site" / "index.html").as_uri())
    page.locator("a", has_text="r1").first.click()
    page.locator("table.problems th", has_text="pass@1 %").click()
    assert w.visible_rows("table.problems")[0].locator("td").nth(1).inner_text() == "q2"  # view.js runs from disk
    page.click("button[data-flag=never]")
    assert page.locator("#shown").inner_text() == "1 of 4 shown"
    w.clean()
    key = next(k for k in site.catalog.slots if k.startswith("evil--script"))
    page.goto((tmp_path / "site" / "runs" / key / "p" / "0.html").as_uri())
    part = page.locator("#s1 details").nth(1)
    part.locator("summary").click()
    assert part.locator("pre.full mark").inner_text() == "<script>x</script>"  # inline in an export
    w.clean()
    shutil.rmtree(tmp_path / "site")
