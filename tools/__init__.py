"""User tools: the kill matrix, the benchmark, the seed sweep and the GPU acceptance run.

Each runs as `python -m tools.NAME`; none of them is a test of the suite (those are in tests/).
"""
