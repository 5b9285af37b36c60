"""Evaluate household facts with durable_rules, guarding against its known traps.

- Host() starts timer threads that may run actions after a call returns: disabled.
- Facts with equal content are deduplicated: every fact carries its person or household id as `id`.
- Asserted facts accumulate: each batch of households gets its own `sid`, deleted right after.
- Each fired rule costs a Python action call (~30 µs): rules use `cap`, so one call receives
  every match of a batch.
- Duplicate detection compares a 32-bit hash only, so two distinct facts of one batch can
  collide: durable raises MessageObservedException (or, had it dropped the fact silently, the
  `_seen` count would catch it), and the batch is evaluated again one household per state.
  delete_state on such a state aborts the process, so it is abandoned instead.
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
ABANDON_LIMIT = 100  # abandoned states before the host is rebuilt (≤1024 live states per ruleset)


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
        self._batches = 0
        self._errors: list[BaseException] = []
        self._build_host()

    def _build_host(self) -> None:
        actions = {rule: self._action(rule) for rules in self.compiled.definition.values() for rule in rules}
        self.host = _QuietHost(actions)
        self.host.set_rulesets(self.compiled.definition)
        self.abandoned = 0

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
        unique = list({hh.household_id: hh for hh in households}.values())
        hits: set[tuple[str, str]] = set()
        for i in range(0, len(unique), BATCH):
            chunk = unique[i : i + BATCH]
            try:
                hits |= self._evaluate_batch(chunk, ctx)
            except FactsLost:
                for hh in chunk:  # one household per state: nothing left to collide with
                    try:
                        hits |= self._evaluate_batch([hh], ctx)
                    except FactsLost as err:
                        raise RuntimeError(f"durable_rules lost a fact of household {hh.household_id}: {err}") from err
        return hits

    def _assert(self, ruleset: str, facts: list[dict], sid: str) -> None:
        self._seen, self._errors = 0, []
        if facts:
            try:
                self.host.assert_facts(ruleset, facts)
            except durable_engine.MessageObservedException as err:
                # A fact judged a duplicate. delete_state on this state aborts the process
                # (measured), so the state is abandoned; too many and the host is rebuilt.
                self.abandoned += 1
                if self.abandoned >= ABANDON_LIMIT:
                    self._build_host()
                raise FactsLost(str(err)) from err
            self.host.delete_state(ruleset, sid)
        if self._errors:
            raise RuntimeError(f"rule action failed: {self._errors[0]!r}")
        if self._seen != len(facts):
            raise FactsLost(f"durable_rules saw {self._seen} of {len(facts)} facts")

    def _evaluate_batch(self, chunk: list[Household], ctx: Context) -> set[tuple[str, str]]:
        c = self.compiled
        self._batches += 1
        sid = f"b{self._batches}"  # never reused: an abandoned state keeps its sid
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
