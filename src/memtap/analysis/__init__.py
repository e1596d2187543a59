"""Analyses of traces: statistics, per-instruction counts, symbols, coverage, profiles, the cache simulator."""
