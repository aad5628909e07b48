"""``m1eval view PATH...``: the runs in a browser (served on 127.0.0.1), or ``--export DIR`` as static pages."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from m1eval.cli.common import LevelOption, RunsArgument, check_output_dir, error_line

err = Console(stderr=True)
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def host_notice(host: str) -> str | None:
    """The one line said when the viewer binds beyond this machine (None on loopback)."""
    if host in LOOPBACK:
        return None
    return f"serving on {host}: anyone who can reach this address can read these runs"


def view(
    run_dirs: RunsArgument,
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to serve on.")] = 8765,
    host: Annotated[
        str, typer.Option("--host", help="Address to bind; anything but 127.0.0.1 serves your runs to the network.")
    ] = "127.0.0.1",
    export: Annotated[
        Path | None,
        typer.Option(
            "--export", help="Write the pages into this folder instead of serving them (they open from disk)."
        ),
    ] = None,
    level: LevelOption = 0.95,
) -> None:
    """Browse runs: every run by task with pass@1 and maj@k, each run's problems (sortable, with quick filters
    for selection failures, never and always solved), each problem's answer clusters and samples, and two runs
    of a task side by side with the paired difference. Read-only: nothing is written into a run folder."""
    from m1eval.cli.progress import make_progress
    from m1eval.rundir.store import StoreError, find_runs
    from m1eval.view.assemble import problem_rows
    from m1eval.view.catalog import Catalog
    from m1eval.view.export import ExportError, export_site
    from m1eval.view.pages import Site

    check_output_dir(export, "--export")
    try:
        total = len({p.resolve() for p in find_runs(run_dirs)})
    except StoreError as exc:
        error_line(err, str(exc))
        raise typer.Exit(2) from None
    with make_progress("runs", transient=True) as progress:
        task = progress.add_task("reading runs", total=total)
        catalog = Catalog(run_dirs, level=level, on_loaded=lambda slot: progress.advance(task), prepare=problem_rows)
    for slot in catalog.slots.values():
        if slot.error:
            err.print(f"[yellow]warning:[/yellow] {slot.error}", markup=True, highlight=False)
    site = Site(catalog, inline_texts=export is not None, sources=", ".join(str(p) for p in run_dirs))
    if export is not None:
        paths = site.paths()
        try:
            with make_progress("pages") as progress:
                task = progress.add_task("writing pages", total=len(paths))
                count = export_site(site, export, on_page=lambda _p: progress.advance(task))
        except ExportError as exc:
            error_line(err, str(exc))
            raise typer.Exit(2) from None
        finally:
            site.close()
        err.print(f"wrote {count} pages to {export}; open {export / 'index.html'}", highlight=False)
        return

    import uvicorn

    from m1eval.view.server import create_app

    notice = host_notice(host)
    if notice:
        err.print(notice, style="yellow", markup=False, highlight=False)
    shown = f"[{host}]" if ":" in host else host
    err.print(f"{len(catalog.slots)} run(s); open http://{shown}:{port}/ (Ctrl-C stops)", highlight=False)
    site.forms.warm()  # the normalisation worker starts once, here, not on the first problem page
    try:
        uvicorn.run(create_app(site), host=host, port=port, log_level="warning")
    finally:
        site.close()


def register(app: typer.Typer) -> None:
    app.command("view")(view)
