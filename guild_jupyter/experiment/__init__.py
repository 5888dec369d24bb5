"""Experiment management: operations, the public Python API, comparison."""
