"""``m1eval view``: run folders in a browser, served on 127.0.0.1 or exported as static files.

The layers, each a module: ``catalog`` finds the runs and notices when a folder changes,
``assemble`` turns a loaded run into the numbers and rows the pages show (through the
report's own functions), ``texts`` reads the completions of one problem by byte offset,
``charts`` lays out the curves as SVG, ``pages`` renders every page through Jinja2 (the one
rendering path), ``server`` serves them (Starlette) and ``export`` writes them to disk.
Nothing here writes into a run folder.
"""
