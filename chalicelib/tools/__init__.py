"""Operator commands run by hand (``python -m chalicelib.tools.<name>``), never by a request."""
