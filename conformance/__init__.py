"""Behaviour tests of torch-conformance, one module per documented area."""
