"""Analytics core: pure NumPy/SciPy firing conformance, OEE, digitalisation metrics."""
