"""Every page of the viewer, rendered from one place for the server and the export.

``Site.render(path)`` maps a relative page path (``runs/<key>/p/3.html``) to a ``Page``,
or None when no such page exists: the server answers None with 404 and the export never
asks for it. Links are relative (``../../index.html``), so the same bytes work served
and opened from disk. Jinja2 escapes every value (``autoescape=True``); the pages carry
their Content-Security-Policy as a meta tag (the server also sends it as a header) and
have no inline script or style: view.js attaches every handler.

Served pages leave long completion texts out and view.js loads them when a sample is
opened (``runs/<key>/p/<i>/s<j>.json``); an export has no server to ask, so its pages
hold them inline, collapsed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources

import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined

from m1eval import __version__
from m1eval.analysis.intervals import ci_label
from m1eval.analysis.metrics import metric_info
from m1eval.view import assemble
from m1eval.view.catalog import Catalog, ViewError
from m1eval.view.charts import curve_chart
from m1eval.view.texts import TextsChanged, read_texts, split_completion

# The meta tag's policy (frame-ancestors is not allowed in a meta tag: the header adds it).
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'"
)
CSP_HEADER = CSP + "; frame-ancestors 'none'"
STATIC = ("view.js", "view.css", "favicon.svg")
HTML, JSON = "text/html; charset=utf-8", "application/json"
STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}

_RUN = re.compile(r"runs/([A-Za-z0-9._+-]+)/index\.html")
_PROBLEM = re.compile(r"runs/([A-Za-z0-9._+-]+)/p/(\d{1,7})\.html")
_TEXT = re.compile(r"runs/([A-Za-z0-9._+-]+)/p/(\d{1,7})/s(\d{1,7})\.json")
_PAIR = re.compile(r"compare/([A-Za-z0-9._+-]+)/([A-Za-z0-9._+-]+)/index\.html")
_PAIR_PROBLEM = re.compile(r"compare/([A-Za-z0-9._+-]+)/([A-Za-z0-9._+-]+)/p/(\d{1,7})\.html")


@dataclass(frozen=True)
class Page:
    status: int
    body: bytes
    content_type: str


def environment() -> Environment:
    """The template environment: package templates, every value escaped, undefined names an error."""
    env = Environment(
        loader=PackageLoader("m1eval.view", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["metric_label"] = lambda metric, k: metric_info(metric).label_at(k)
    return env


class Site:
    """The pages of a catalogue. ``inline_texts``: put long texts in the pages (the export)."""

    def __init__(self, catalog: Catalog, *, inline_texts: bool = False, sources: str = "") -> None:
        self.catalog = catalog
        self.inline_texts = inline_texts
        self.sources = sources
        self.env = environment()
        for name in self.env.list_templates(extensions=["html"]):  # compiled once now, not on a first page
            self.env.get_template(name)
        self.forms = assemble.NormalForms()

    def close(self) -> None:
        """Stop the normalisation worker."""
        self.forms.close()

    # ------------------------------------------------------------------ routing

    def render(self, path: str) -> Page | None:
        """The page at ``path`` (relative, no leading slash), or None: nothing else is ever served."""
        if path in ("", "index.html"):
            return self._html("runs.html", "", self._runs_context())
        if path.startswith("static/") and path[len("static/") :] in STATIC:
            name = path[len("static/") :]
            body = resources.files("m1eval.view").joinpath("static", name).read_bytes()
            return Page(200, body, STATIC_TYPES[name[name.rindex(".") :]])
        for pattern, handler in (
            (_RUN, self._run),
            (_PROBLEM, self._problem),
            (_PAIR, self._pair),
            (_PAIR_PROBLEM, self._pair_problem),
            (_TEXT, self._text),
        ):
            match = pattern.fullmatch(path)
            if match:
                try:
                    return handler(path, *match.groups())
                except KeyError:
                    return None
                except (ViewError, TextsChanged) as exc:
                    return self._error(path, str(exc), json_body=pattern is _TEXT)
        return None

    def paths(self) -> list[str]:
        """Every page an export writes (the text endpoints are for the server only)."""
        out = ["index.html", *(f"static/{name}" for name in STATIC)]
        for key, slot in self.catalog.slots.items():
            out.append(f"runs/{key}/index.html")
            if slot.loaded is not None:
                out += [f"runs/{key}/p/{i}.html" for i in range(len(slot.loaded.run.problems))]
        for a, b in self.catalog.pairs():
            out.append(f"compare/{a}/{b}/index.html")
            try:
                rows = assemble.pair_page(self.catalog.loaded(a), self.catalog.loaded(b)).rows
            except ViewError:
                continue
            out += [f"compare/{a}/{b}/p/{r.index_a}.html" for r in rows]
        return out

    # ------------------------------------------------------------------ helpers

    def _html(self, template: str, path: str, context: dict, status: int = 200) -> Page:
        root = "../" * path.count("/") or "./"
        html = self.env.get_template(template).render(root=root, csp=CSP, version=__version__, **context)
        return Page(status, html.encode("utf-8"), HTML)

    def _error(self, path: str, message: str, json_body: bool = False) -> Page:
        if json_body:
            return Page(503, json.dumps({"error": message}).encode("utf-8"), JSON)
        return self._html("error.html", path, {"message": message}, status=503)

    def _level(self) -> float:
        return self.catalog.level

    # ------------------------------------------------------------------ pages

    def _runs_context(self) -> dict:
        groups = [(task, [assemble.run_row(slot) for slot in slots]) for task, slots in self.catalog.by_task().items()]
        labels = {slot.key: slot.label for slots in self.catalog.by_task().values() for slot in slots}
        pairs: dict[str, list] = {}
        for a, b in self.catalog.pairs():
            task = self.catalog.slots[a].task
            pairs.setdefault(task, []).append((a, b, f"{labels[a]} vs {labels[b]}"))
        return {
            "groups": groups,
            "pairs": pairs,
            "count": len(self.catalog.slots),
            "sources": self.sources,
            "ci_label": ci_label(self._level()),
        }

    def _run(self, path: str, key: str) -> Page:
        slot = self.catalog.get(key)
        if slot is None:
            raise KeyError(key)
        loaded = self.catalog.loaded(key)
        rows = assemble.problem_rows(loaded)
        counts = {flag: sum(flag in r.flags for r in rows) for flag in ("selection", "never", "always")}
        return self._html(
            "run.html",
            path,
            {
                "row": assemble.run_row(slot),
                "task": loaded.run.task,
                "rows": rows,
                "counts": counts,
                "meta_columns": assemble.meta_columns(loaded.run),
                "chart": curve_chart(loaded.summary),
                "policy": assemble.extraction_policy(loaded.run),
            },
        )

    def _problem(self, path: str, key: str, index: str) -> Page:
        loaded = self.catalog.loaded(key)
        page = assemble.problem_page(loaded, int(index), self.forms)
        if page is None:
            raise KeyError(index)
        i, count = int(index), len(loaded.run.problems)
        meta = [(k, v) for k, v in page.problem.meta.items() if k in assemble.META_COLUMNS]
        return self._html(
            "problem.html",
            path,
            {
                "page": page,
                "label": loaded.run.label,
                "key": key,
                "inline": self.inline_texts,
                "meta": meta,
                "prev": i - 1 if i > 0 else None,
                "next": i + 1 if i + 1 < count else None,
            },
        )

    def _text(self, path: str, key: str, index: str, sample: str) -> Page | None:
        """One sample's parts as JSON, for view.js to put into the page as text (served only)."""
        if self.inline_texts:
            return None
        run = self.catalog.loaded(key).run
        problem = assemble.problem_at(run, int(index))
        if problem is None:
            return None
        rows = run.frame[(run.frame["problem_id"] == problem.id) & (run.frame["sample_index"] == int(sample))]
        if not len(rows):
            return None
        r = rows.iloc[0]
        text = read_texts(run.path, [(problem.id, int(r["sample_index"]), int(r["line_offset"]), int(r["line_bytes"]))])
        answer = None if pd.isna(r["answer"]) else str(r["answer"])
        parts = split_completion(text[int(r["sample_index"])], answer)
        return Page(200, json.dumps({"parts": [p.to_dict() for p in parts]}).encode("utf-8"), JSON)

    def _pair_slots(self, a: str, b: str):  # noqa: ANN202
        if (a, b) not in self.catalog.pairs():
            raise KeyError((a, b))
        return self.catalog.loaded(a), self.catalog.loaded(b)

    def _pair(self, path: str, a: str, b: str) -> Page:
        la, lb = self._pair_slots(a, b)
        page = assemble.pair_page(la, lb)
        counts = {flag: sum(flag in r.flags for r in page.rows) for flag in ("a-only", "b-only")}
        return self._html(
            "compare.html",
            path,
            {
                "a": self.catalog.slots[a],
                "b": self.catalog.slots[b],
                "page": page,
                "counts": counts,
                "task": la.run.task,
                "ci_label": ci_label(self._level()),
            },
        )

    def _pair_problem(self, path: str, a: str, b: str, index: str) -> Page:
        la, lb = self._pair_slots(a, b)
        problem = assemble.problem_at(la.run, int(index))
        if problem is None or problem.id not in set(lb.run.problem_ids) or problem.id not in set(la.run.problem_ids):
            raise KeyError(index)
        page_b = assemble.clusters_page(lb, problem.id, self.forms)
        sides = [
            (
                "A",
                self.catalog.slots[a],
                assemble.clusters_page(la, problem.id, self.forms),
                f"../../../../runs/{a}/p/{index}.html",
            ),
            ("B", self.catalog.slots[b], page_b, f"../../../../runs/{b}/p/{page_b.index}.html" if page_b else ""),
        ]
        return self._html("compare_problem.html", path, {"problem": problem, "sides": sides})
