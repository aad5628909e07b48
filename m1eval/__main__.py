"""``python -m m1eval`` runs the same CLI as the ``m1eval`` script."""

from m1eval.cli.app import main

if __name__ == "__main__":
    main()
