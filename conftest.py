"""Loads the suite's pytest plugins: the behaviour machinery, isolation checks, GPU robustness,
and the report recorder."""
pytest_plugins = ["conformance.plugin", "conformance.isolation", "conformance.gpu", "reports.stats", "reports.plugin"]
