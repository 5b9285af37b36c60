"""The benchmarks (run as scripts: `python bench/screen.py`) and the crash-trial harness (run as a
module from the repository root: `python -m bench.crashtrials`, imported by tests/reliability/test_crash.py)."""
