"""``m1eval view --export DIR``: every page of the site written as a file that opens from disk."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from m1eval.view.pages import Site


class ExportError(Exception):
    """The export cannot be written where asked."""


def export_site(site: Site, out: Path, *, on_page: Callable[[str], None] | None = None) -> int:
    """Write ``site.paths()`` below ``out``; returns the number of pages. Error pages are written too."""
    out = Path(out)
    for slot in site.catalog.slots.values():
        if out.resolve().is_relative_to(slot.path.resolve()):
            raise ExportError(f"export folder {out}: inside run folder {slot.path}; the viewer never writes into a run")
    count = 0
    for path in site.paths():
        page = site.render(path)
        if page is None:
            continue
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(page.body)
        count += 1
        if on_page:
            on_page(path)
    return count
