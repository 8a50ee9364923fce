"""Loads the suite's two pytest plugins: the behaviour machinery and the report recorder."""
pytest_plugins = ["conformance.plugin", "reports.stats", "reports.plugin"]
