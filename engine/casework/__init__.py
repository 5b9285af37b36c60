"""The case lifecycle after a conference: outcomes, hand-shake, actions, watch, sweep, audit, history, listings."""
