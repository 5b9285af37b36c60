"""Triage (振り分け): the pathway each new case takes — an urgent conference, a conference, an
assessment by one agency, a check by the agency already serving the household, or watch only —
chosen by the declarative rules of configs/triage_rules.yaml, explained on the case, and paced so
that a first screening larger than the town's capacity is worked through by priority (backlog plan).
"""
