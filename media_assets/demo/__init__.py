"""Sample media and scripts with known answers, for the demo, the tests and the benchmarks."""
