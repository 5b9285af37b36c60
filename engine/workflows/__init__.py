"""The scheduled jobs: the nightly cycle and the dispatch as plain functions (cycle.py), thin Prefect flows over them, their schedules, and `engine serve`."""
