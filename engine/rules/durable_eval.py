"""Evaluate household facts with durable_rules, guarding against its known traps.

- Host() starts timer threads that may run actions after a call returns: disabled.
- Facts with equal content are deduplicated: every fact carries its household id as `id`.
- Asserted facts accumulate: each household gets its own `sid`, deleted right after.
  (One fact per sid also keeps the 32-bit duplicate hash from ever comparing two households.)
- A fact that matches no rule raises MessageNotHandledException: the `_seen` rule matches all,
  and its count proves every fact was evaluated.
- Action exceptions are swallowed into the state: our actions record errors and we re-raise.
- `$or` branches fire separately: hits are a set.
"""

from __future__ import annotations

from durable import engine as durable_engine

from engine.rules.compile import SEEN_RULE, Compiled


class _QuietHost(durable_engine.Host):
    def __init__(self, actions):
        self._actions_by_name = actions
        super().__init__()

    def _run(self):  # no timer threads
        pass

    def get_action(self, action_name):
        return self._actions_by_name[action_name]


class DurableScreen:
    """One durable_rules host holding the compiled flags; evaluate() is not thread-safe."""

    def __init__(self, compiled: Compiled):
        self.compiled = compiled
        self.name = compiled.name
        self._hits: set[tuple[str, str]] = set()
        self._seen = 0
        self._errors: list[BaseException] = []
        actions = {rule: self._action(rule) for rule in compiled.definition[self.name]}
        self.host = _QuietHost(actions)
        self.host.set_rulesets(compiled.definition)

    def _action(self, rule: str):
        def act(c):
            try:
                if rule == SEEN_RULE:
                    self._seen += 1
                else:
                    self._hits.add((c.m["id"], rule))
            except BaseException as err:  # pragma: no cover - recorded and re-raised below
                self._errors.append(err)

        return act

    def evaluate(self, facts) -> tuple[set[tuple[str, str]], int]:
        """Assert each fact in its own state; return {(household_id, flag_id)} and facts seen."""
        self._hits, self._seen, self._errors = set(), 0, []
        assert_fact, delete_state, name = self.host.assert_fact, self.host.delete_state, self.name
        posted = 0
        for fact in facts:
            assert_fact(name, fact)
            delete_state(name, fact["sid"])
            posted += 1
        if self._errors:
            raise RuntimeError(f"rule action failed: {self._errors[0]!r}")
        if self._seen != posted:
            raise RuntimeError(f"durable_rules saw {self._seen} of {posted} households")
        return self._hits, self._seen


_CACHE: dict[str, DurableScreen] = {}


def durable_screen(compiled: Compiled) -> DurableScreen:
    """A host per ruleset hash and process (durable_rules cannot delete a ruleset)."""
    if compiled.name not in _CACHE:
        _CACHE[compiled.name] = DurableScreen(compiled)
    return _CACHE[compiled.name]
