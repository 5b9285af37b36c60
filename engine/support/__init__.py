"""What every step leans on: the clock, dates and business days, owner-only files, safe YAML, settings, errors, vocabulary."""
