"""Loads the suite's pytest plugins: the harness (conformance/harness) and the report recorder."""

from conformance.harness import PLUGINS

pytest_plugins = [*PLUGINS, "reports.stats", "reports.recorder"]
