"""Screening the town with the rules: flags with their evidence, explanations, summaries."""
