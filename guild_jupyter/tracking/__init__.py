"""Recording inside a run: ``log()``, output capture and output-scalar parsing."""
