"""A synthetic town for demos, tests and benchmarks: みどり市.

`generate_town` writes the three extracts a municipality would hand over —
households.csv, persons.csv and records.csv — for a plausible Japanese town: household
composition, ages, names with kana, nationality, and the silo records of
engine/support/vocabulary.py at realistic base rates. On top of that it PLANTS the twelve patterns
of shared/domain.md ("Patterns") so that each fires at a realistic rate, and reports how many
households it planted per pattern.

Determinism: everything is drawn from random.Random streams derived from `seed` (one per
chunk of 25,000 households); no clock, no set order. The same arguments give byte-identical
files. Speed: ~3 s per 100,000 households, ~32 s per million, ~100 MB (2-vCPU machine).

`planted[p]` counts the households into which pattern p was deliberately put (a planted
8050 household also counts as a planted ひきこもり). Patterns also occur naturally, so the
number of households that match p is higher; parent_disability_child is never planted.

Modelling choices worth knowing
- Every working-age adult (20-64) who is not a planted ひきこもり has an earned_income
  record: a positive amount for ~90% of men and ~75% of women, otherwise an amount of 0
  (a 住民税 declaration of no income: 専業主婦, unemployed, sick). So "no earned_income
  record" is rare outside the planted patterns, as the ひきこもり rate requires.
- Consultation topics ごみ, セルフネグレクト and DV, and dv_support_measure, occur only where
  planted; the other topics follow each person's situation.

The package, in the order a household is made: picker (weighted choice), names and population
(the tables), calendar (ages and school years in ordinals), chunk (the state of one random
stream), compose (members, names, addresses), planting (the patterns), person_records and
household_records (the silos' records), household (one household end to end), bad_rows, and
write (`generate_town`, the CSV files).
"""

from engine.demo.town.population import PATTERNS
from engine.demo.town.write import GenerateResult, generate_town

__all__ = ["PATTERNS", "GenerateResult", "generate_town"]
