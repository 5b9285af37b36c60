"""The national figures a municipality reports (engine report): figures.py, model.py, build.py, render.py. docs/report.md."""
