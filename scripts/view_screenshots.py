"""Screenshots of every ``m1eval view`` page for docs/view/ (Debian's chromium through Playwright).

Pages: the runs page, a run page, a problem page (its clusters, then a sample opened) from the
committed SmolLM2 example run, and the comparison of a synthetic pair of runs with one of its
problems side by side.

    python scripts/view_screenshots.py            # writes docs/view/*.png
"""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "results" / "math500" / "smollm2-135m"
OUT = REPO / "docs" / "view"


def serve(paths: list[Path]):  # noqa: ANN201 - (url, stop)
    import uvicorn

    from m1eval.view.assemble import problem_rows
    from m1eval.view.catalog import Catalog
    from m1eval.view.pages import Site
    from m1eval.view.server import create_app

    site = Site(Catalog(paths, prepare=problem_rows), sources=", ".join(str(p.name) for p in paths))
    site.forms.warm()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(site), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)
        site.close()

    return f"http://127.0.0.1:{sock.getsockname()[1]}", site, stop


def main() -> None:
    from playwright.sync_api import sync_playwright

    from m1eval.rundir.synthetic import make_synthetic_run

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        pair = Path(tmp) / "synthetic"
        make_synthetic_run(pair, task="aime25", model="model-a", n_problems=30, n_samples=16, accuracy=0.35, seed=1)
        make_synthetic_run(pair, task="aime25", model="model-b", n_problems=30, n_samples=16, accuracy=0.5, seed=2)
        url, site, stop = serve([EXAMPLE, pair])
        smol = next(k for k in site.catalog.slots if k.startswith("math500"))
        a, b = site.catalog.pairs()[0]
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 1280, "height": 860})
                shots = []

                def shot(name: str) -> None:
                    page.screenshot(path=str(OUT / f"{name}.png"))
                    shots.append(name)

                page.goto(url + "/")
                shot("runs")
                page.goto(f"{url}/runs/{smol}/index.html")
                shot("run")
                page.click("button[data-flag=selection]")
                page.locator("table.problems th", has_text="maj@16 %").click()
                page.locator("table.problems").scroll_into_view_if_needed()
                shot("run-selection-failures")
                page.goto(f"{url}/runs/{smol}/p/10.html")
                shot("problem")
                page.locator("#s1").scroll_into_view_if_needed()
                shot("problem-sample")
                page.goto(f"{url}/compare/{a}/{b}/index.html")
                shot("compare")
                page.goto(f"{url}/compare/{a}/{b}/p/3.html")
                shot("compare-problem")
                browser.close()
        finally:
            stop()
    print("wrote " + ", ".join(f"docs/view/{s}.png" for s in shots))


if __name__ == "__main__":
    main()
