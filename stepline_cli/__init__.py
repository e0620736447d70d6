"""``stepline``: the operator's command line for a Stepline API (``STEPLINE_URL``, ``STEPLINE_KEY``)."""
