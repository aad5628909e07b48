"""Throughput: timing an engine over batch sizes and generation lengths (``bench``) and the
profile file those timings are stored in and priced from (``profile``)."""
