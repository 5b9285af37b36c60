"""Evaluate household facts with durable_rules, guarding against its known traps.

- Host() starts timer threads that may run actions after a call returns: disabled.
- Facts with equal content are deduplicated: every fact carries its person or household id as `id`.
- Asserted facts accumulate: each household gets its own `sid`, deleted right after
  (so the 32-bit duplicate hash only ever compares the few facts of one household).
- A fact that matches no rule raises MessageNotHandledException: the `_seen` rule matches all,
  and its count proves every fact was evaluated.
- Action exceptions are swallowed into the state: our actions record errors and we re-raise.
- `$or` branches fire separately: hits are a set.
"""

from __future__ import annotations

from durable import engine as durable_engine

from engine.rules.compile import SEEN_RULE, Compiled
from engine.rules.facts import Context, Household


class _QuietHost(durable_engine.Host):
    def __init__(self, actions):
        self._actions_by_name = actions
        super().__init__()

    def _run(self):  # no timer threads
        pass

    def get_action(self, action_name):
        return self._actions_by_name[action_name]


class DurableScreen:
    """One durable_rules host holding the compiled rules; evaluate() is not thread-safe."""

    def __init__(self, compiled: Compiled):
        self.compiled = compiled
        self._person_hits: dict[str, set[str]] = {}
        self._hits: set[tuple[str, str]] = set()
        self._seen = 0
        self._errors: list[BaseException] = []
        actions = {}
        for ruleset, rules in compiled.definition.items():
            for rule in rules:
                actions[rule] = self._action(rule)
        self.host = _QuietHost(actions)
        self.host.set_rulesets(compiled.definition)

    def _action(self, rule: str):
        def act(c):
            try:
                fact = c.m
                if rule == SEEN_RULE:
                    self._seen += 1
                elif fact["t"] == "p":
                    self._person_hits.setdefault(fact["id"], set()).add(rule)
                else:
                    self._hits.add((fact["id"], rule))
            except BaseException as err:  # pragma: no cover - recorded and re-raised below
                self._errors.append(err)

        return act

    def evaluate(self, households: list[Household], ctx: Context) -> set[tuple[str, str]]:
        """Both levels for each household, in its own state; return {(household_id, flag_id)}."""
        self._hits, self._seen, self._errors = set(), 0, []
        c = self.compiled
        assert_fact, delete_state = self.host.assert_fact, self.host.delete_state
        posted = 0
        for hh in households:
            self._person_hits = {}
            for fact in c.person_facts(hh, ctx):
                assert_fact(c.person_name, fact)
                posted += 1
            delete_state(c.person_name, hh.household_id)
            assert_fact(c.household_name, c.household_fact(hh, ctx, self._person_hits))
            delete_state(c.household_name, hh.household_id)
            posted += 1
        if self._errors:
            raise RuntimeError(f"rule action failed: {self._errors[0]!r}")
        if self._seen != posted:
            raise RuntimeError(f"durable_rules saw {self._seen} of {posted} facts")
        return self._hits


_CACHE: dict[str, DurableScreen] = {}


def durable_screen(compiled: Compiled) -> DurableScreen:
    """A host per ruleset hash and process (durable_rules cannot delete a ruleset)."""
    if compiled.household_name not in _CACHE:
        _CACHE[compiled.household_name] = DurableScreen(compiled)
    return _CACHE[compiled.household_name]
