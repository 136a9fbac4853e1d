"""Sweeps: Optuna searches over run configs, every trial a real run (see ``driver.py``)."""
