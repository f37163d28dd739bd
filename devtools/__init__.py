"""Development helpers that are not part of the shipped packages (tests, benchmarks, samples).

Importable from the repository root: ``tests/conftest.py``, ``benchmarks/*.py`` and
``resources/samples/make_samples.py`` put the root on ``sys.path``.
"""
