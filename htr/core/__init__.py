"""What every layer shares: errors, how a line image and a label are read, metrics, and the two files every model folder carries (``reading.py``, ``pipeline.py``)."""
