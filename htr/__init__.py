"""The library behind `run_trocr.py`, one subpackage per layer, each importing only the layers below it.

``core`` (errors, reading, images, text, metrics, the model folder's pipeline) → ``data`` → ``training`` and
``inference`` → ``evaluation``, ``pages`` and ``hub`` → ``demo`` and ``cli``; ``tests/test_structure.py`` holds it.
"""
