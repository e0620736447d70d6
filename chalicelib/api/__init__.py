"""REST API blueprints. ``boundary`` is the one place that turns domain errors into HTTP."""
