"""Who may see what: consent, the DV lock, members only, personal data in free text. Written once."""
