"""Tessera's benchmarks: each module is a script printing one JSON document and measuring a
peer in the same run; ``python -m bench --json`` runs them all (``bench/__main__.py``).

The scripts import their helpers (``common``, ``live``) with ``bench/`` on ``sys.path``, so
``python bench/tiles.py`` keeps working; this file only makes ``bench`` a package for ``-m``.
"""
