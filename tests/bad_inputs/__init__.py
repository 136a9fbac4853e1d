"""Makers of damaged inputs for tests/test_bad_inputs.py: small files built in a test's tmp_path."""
