"""Example code for sample workflows and tests (the ``python`` agent may call it)."""
