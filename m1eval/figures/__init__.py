"""Figures for a paper: the only matplotlib importers. ``plots`` draws them from the
analysis' curves, ``style`` gives every model one colour across figures."""
