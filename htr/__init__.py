"""Small library behind `run_trocr.py`: data pipeline, model set-up, metrics, cards, inference, reports."""
