"""The impact of a change before it goes live: which households would gain or lose each flag under
candidate rules (rules_diff.py), which open and upcoming cases would get another lead, participants,
conference type or meeting under a candidate configuration (config_diff.py), and where a candidate
comes from: a folder, or a git revision of the folder (sources.py). Nothing here writes to the
workspace: the database is read, or copied into memory and the copy is thrown away."""
