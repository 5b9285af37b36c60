"""The demo: a synthetic town, and a simulated span of days on a fake clock."""
