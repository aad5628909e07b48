"""The run folder: the append-only store (``store``: samples, batches, manifest, lock, torn-tail
repair), the loaded view analysis reads (``rundata``), and the host and version facts a
manifest records (``runinfo``). Nothing here knows about engines or figures."""
