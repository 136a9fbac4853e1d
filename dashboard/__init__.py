"""Streamlit dashboard for launching and monitoring fine-tuning runs (talks to ``trainer_core`` only)."""
