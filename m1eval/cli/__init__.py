"""The ``m1eval`` command line: ``app.py`` builds it, one module per verb (each exposes
``register(app)`` and stays thin), ``common.py`` holds the flags the verbs share, and
``progress.py`` the rich bars. The only package that imports typer or rich."""


def main() -> None:
    """The ``m1eval`` console script (imports the verbs only when run)."""
    from m1eval.cli.app import main as run_app

    run_app()
