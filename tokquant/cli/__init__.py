"""The ``tokquant`` command line: thin wrappers over the library (see app.py)."""
