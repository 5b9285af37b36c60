"""Evaluate household facts with durable_rules, guarding against its known traps.

- Host() starts timer threads that may run actions after a call returns: disabled.
- Facts with equal content are deduplicated: every fact carries an `id`, its position in the batch.
- Asserted facts accumulate: each batch of households gets its own `sid`, deleted right after.
- Each fired rule costs a Python action call (~30 µs): rules use `cap`, so one call receives
  every match of a batch.
- Duplicate detection compares a 32-bit FNV-1a hash of the `id` text only. The ids of a batch
  are 0, 1, 2 … whose hashes are distinct (tested), and the sid is chosen so that its state
  message ("sid-<sid>") does not share a hash with them either. Should a fact still be taken
  for a duplicate, durable raises MessageObservedException (or, had it dropped the fact
  silently, the `_seen` count would catch it) and the batch is evaluated again one household
  per state. delete_state on such a state aborts the process, so it is abandoned instead.
- A fact that matches no rule raises MessageNotHandledException: the `_seen` rule matches all,
  and its count proves every fact was evaluated.
- Action exceptions are swallowed into the state: our actions record errors and we re-raise.
- `$or` branches fire separately: hits are a set.

Every fact crosses the C boundary as JSON twice (asserted, then handed back to the `_seen`
action and to each rule it matches), so facts carry only what the rules read (compile.py), and
BATCH was chosen by measurement (bench/durable_batch.py).
"""

from __future__ import annotations

from durable import engine as durable_engine

from engine.rules.compile import SEEN_RULE, Compiled
from engine.rules.facts import Context, Household

BATCH = 200  # households per durable_rules state: 100-200 fastest, 1000 +25%, 5000 +80% (bench/durable_batch.py)
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
        self._level = "p"  # which ruleset the actions are answering for
        self._chunk: list[Household] = []
        self._owner: list[int] = []  # person fact id -> index of its household in the chunk
        self._met: list[set[str]] = []  # per household of the chunk: indicator fields some member met
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
                elif self._level == "p":
                    owner, met = self._owner, self._met
                    for fact in facts:
                        met[owner[fact["id"]]].add(rule)
                else:
                    chunk = self._chunk
                    self._hits.update((chunk[fact["id"]].household_id, rule) for fact in facts)
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
        sid = self._new_sid(max(len(chunk), sum(len(hh.persons) for hh in chunk)))
        person_facts: list[dict] = []
        self._owner = []
        for n, hh in enumerate(chunk):
            person_facts += c.person_facts(hh, ctx, sid, len(person_facts))
            self._owner += [n] * len(hh.persons)
        self._chunk, self._met, self._hits = chunk, [set() for _ in chunk], set()
        self._level = "p"
        self._assert(c.person_name, person_facts, sid)
        self._level = "h"
        self._assert(
            c.household_name, [c.household_fact(hh, ctx, self._met[n], sid, n) for n, hh in enumerate(chunk)], sid
        )
        return self._hits

    def _new_sid(self, ids: int) -> str:
        """A sid never used before (an abandoned state keeps its sid) whose state message id
        does not share a hash with the fact ids 0 … ids - 1."""
        seen = _id_hashes(ids)
        while True:
            self._batches += 1
            sid = f"b{self._batches}"
            if seen.get(fnv1a32(f"sid-{sid}"), ids) >= ids:
                return sid


def fnv1a32(text: str) -> int:
    """durable_rules' message hash (fnv1Hash32 in its state.c) of an ASCII text."""
    h = 0x811C9DC5
    for ch in text.encode():
        h = ((h ^ ch) * 0x01000193) & 0xFFFFFFFF
    return h


_ID_HASHES: dict[int, int] = {}  # hash of str(i) -> smallest such i, for the ids hashed so far
_HASHED = [0]  # ids 0 … _HASHED[0] - 1 are in _ID_HASHES


def _id_hashes(n: int) -> dict[int, int]:
    """Hashes of the fact ids 0 … n - 1: distinct below 797,186 (40189 and 797186 collide; tested)."""
    for i in range(_HASHED[0], n):
        _ID_HASHES.setdefault(fnv1a32(str(i)), i)
    _HASHED[0] = max(_HASHED[0], n)
    return _ID_HASHES


class FactsLost(RuntimeError):
    """durable_rules dropped a fact (hash collision in its duplicate check)."""


_CACHE: dict[str, DurableScreen] = {}


def durable_screen(compiled: Compiled) -> DurableScreen:
    """A host per ruleset hash and process (durable_rules cannot delete a ruleset)."""
    if compiled.household_name not in _CACHE:
        _CACHE[compiled.household_name] = DurableScreen(compiled)
    return _CACHE[compiled.household_name]
