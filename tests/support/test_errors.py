"""An engine refusal crosses a process boundary whole: a worker's located problems reach the parent
with the same message (Exception's own pickling passed the message where a subclass takes its problems)."""

from __future__ import annotations

import pickle

from engine.config.load import ConfigInvalid
from engine.intake.importer import ImportRefused
from engine.rules.problems import RuleProblem, RulesInvalid


def test_a_refusal_survives_pickling_with_its_message_and_problems():
    problem = RuleProblem(file="configs/triage_rules.yaml", line=25, field="triage_rules", message="at least one rule")
    for err in (ConfigInvalid([problem]), RulesInvalid([problem]), ImportRefused("import refused", [problem])):
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err) and str(back) == str(err) and str(back).startswith(("configs/", "import"))
        assert [str(p) for p in back.problems] == [str(problem)]
        assert back.exit_code == err.exit_code
