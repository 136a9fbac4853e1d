"""Benchmarks of trainer_core and the dashboard against their references (``make bench``)."""
