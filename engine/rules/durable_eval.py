"""Evaluate household facts with durable_rules, guarding against its known traps.

- Host() starts timer threads that may run actions after a call returns: disabled.
- Facts with equal content are deduplicated: every fact carries its person or household id as `id`.
- Asserted facts accumulate: each batch of households gets its own `sid`, deleted right after.
- Each fired rule costs a Python action call (~30 µs): rules use `cap`, so one call receives
  every match of a batch.
- Duplicate detection compares a 32-bit hash only, so two distinct facts of one batch can
  collide and one is silently dropped: the `_seen` count catches it, and the batch is then
  evaluated again one household per state.
- A fact that matches no rule raises MessageNotHandledException: the `_seen` rule matches all,
  and its count proves every fact was evaluated.
- Action exceptions are swallowed into the state: our actions record errors and we re-raise.
- `$or` branches fire separately: hits are a set.
"""

from __future__ import annotations

from durable import engine as durable_engine

from engine.rules.compile import SEEN_RULE, Compiled
from engine.rules.facts import Context, Household

BATCH = 200  # households per durable_rules state


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
                facts = c.m if isinstance(c.m, list) else [c.m]
                if rule == SEEN_RULE:
                    self._seen += len(facts)
                    return
                for fact in facts:
                    if fact["t"] == "p":
                        self._person_hits.setdefault(fact["id"], set()).add(rule)
                    else:
                        self._hits.add((fact["id"], rule))
            except BaseException as err:  # pragma: no cover - recorded and re-raised below
                self._errors.append(err)

        return act

    def evaluate(self, households: list[Household], ctx: Context) -> set[tuple[str, str]]:
        """Both levels for each household; return {(household_id, flag_id)}."""
        hits: set[tuple[str, str]] = set()
        for i in range(0, len(households), BATCH):
            chunk = households[i : i + BATCH]
            try:
                hits |= self._evaluate_batch(chunk, ctx, f"batch{i}")
            except FactsLost:
                for hh in chunk:  # one household per state: nothing left to collide with
                    hits |= self._evaluate_batch([hh], ctx, hh.household_id)
        return hits

    def _assert(self, ruleset: str, facts: list[dict], sid: str) -> None:
        self._seen, self._errors = 0, []
        if facts:
            try:
                self.host.assert_facts(ruleset, facts)
            except durable_engine.MessageObservedException as err:  # a fact judged a duplicate
                self.host.delete_state(ruleset, sid)
                raise FactsLost(str(err)) from err
            self.host.delete_state(ruleset, sid)
        if self._errors:
            raise RuntimeError(f"rule action failed: {self._errors[0]!r}")
        if self._seen != len(facts):
            raise FactsLost(f"durable_rules saw {self._seen} of {len(facts)} facts")

    def _evaluate_batch(self, chunk: list[Household], ctx: Context, sid: str) -> set[tuple[str, str]]:
        c = self.compiled
        self._person_hits, self._hits = {}, set()
        self._assert(c.person_name, [f for hh in chunk for f in c.person_facts(hh, ctx, sid)], sid)
        self._assert(c.household_name, [c.household_fact(hh, ctx, self._person_hits, sid) for hh in chunk], sid)
        return self._hits


class FactsLost(RuntimeError):
    """durable_rules dropped a fact (hash collision in its duplicate check)."""


_CACHE: dict[str, DurableScreen] = {}


def durable_screen(compiled: Compiled) -> DurableScreen:
    """A host per ruleset hash and process (durable_rules cannot delete a ruleset)."""
    if compiled.household_name not in _CACHE:
        _CACHE[compiled.household_name] = DurableScreen(compiled)
    return _CACHE[compiled.household_name]
