"""The rule language coordinators write: the model, loading and checking rule files, compiling them for durable_rules, the SQL pre-selection, and step-by-step traces for evidence."""
