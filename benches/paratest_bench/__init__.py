"""Benchmarks of cargo-paratest (`scripts/bench`, `python3 -m paratest_bench` from benches/).

One module per benchmark family; `measure` holds the shared repetition
(interleaved, rotated runs; medians, ratios of medians, paired ratios) and
`reports` reads every report through the binary under test.
"""
