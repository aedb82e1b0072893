"""A deterministic synthetic knowledge base of fictional entities, for runs where retrieval matters.

A language model cannot answer "In what year was Talen Morvik born?" from memory: Talen Morvik does
not exist. The answer is only in the corpus, so a pipeline that retrieves the right passage beats
one that does not, even with tiny models. Every entity has a *sibling* with a similar name (same
surname, same stem) and different facts, so retrieval must be precise, not merely topical.

- four kinds of entity (person, organisation, city, river), four facts each;
- each entity's facts are spread over ``passages_per_entity`` passages of 40–80 words
  (``{id, title, text}``, title = the entity's name); surplus passages carry no fact at all;
- one question per fact (``{id, dataset: "synthkb", question, answers, gold}``) whose short answer
  (a name, a city, a year, a number) appears verbatim in its gold passage; facts are shuffled and
  cut into train and eval sets that share no fact and no id.

    >>> kb = make_synthkb(seed=0, num_entities=8, passages_per_entity=2, num_train=10, num_eval=5)
    >>> len(kb.passages), len(kb.train), len(kb.eval)
    (16, 10, 5)
    >>> q = kb.eval[0]
    >>> gold = next(p for p in kb.passages if p["id"] == q["gold"][0])
    >>> q["answers"][0] in gold["text"]
    True
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

DATASET = "synthkb"

# Small word lists: names are composed of syllables, so they look like names but mean nothing.
ONSETS = ["ka", "ve", "mo", "tha", "ze", "bri", "lo", "dra", "fe", "qua", "si", "te", "o", "u",
          "ni", "pe", "ra", "go", "ha", "ly", "sa", "vo", "i", "ba"]
MIDDLES = ["len", "ris", "var", "dun", "mel", "tor", "sha", "ven", "lor", "kai", "mir", "bel",
           "dor", "nes", "tal", "wyn"]
CODAS = ["", "", "a", "ik", "en", "os", "ar", "eth", "in", "um", "ra", "ov"]
OCCUPATIONS = ["glassblower", "cartographer", "astronomer", "beekeeper", "clockmaker",
               "shipwright", "herbalist", "bookbinder", "lamplighter", "stonemason", "weaver",
               "falconer", "cooper", "archivist"]
ORG_KINDS = ["Guild", "Institute", "Trading Company", "Observatory", "Conservatory", "Society"]
PROVINCE_SUFFIX = ["ia", "and", "mark", "ora", "esh"]
ADJECTIVES = ["quiet", "windy", "crooked", "golden", "misty", "narrow", "ancient", "busy", "green"]
THINGS = ["bridges", "markets", "orchards", "harbours", "towers", "gardens", "stairways", "archives"]

# One template per (kind, attribute): the sentence that states the fact, and the question.
FACTS = {
    "person": {
        "birth_year": ("{name} was born in the year {value}.", "In what year was {name} born?"),
        "home_city": ("{name} grew up in the city of {value}.", "In which city did {name} grow up?"),
        "occupation": ("By trade, {name} worked as a {value} for many years.",
                       "What was the occupation of {name}?"),
        "mentor": ("As a young apprentice, {name} was trained by {value}.", "Who trained {name}?"),
    },
    "organisation": {
        "founder": ("The {name} was founded by {value}.", "Who founded the {name}?"),
        "founded_year": ("The {name} opened its doors in {value}.",
                         "In what year did the {name} open its doors?"),
        "headquarters": ("The headquarters of the {name} stand in {value}.",
                         "In which city are the headquarters of the {name}?"),
        "members": ("Today the {name} counts {value} among its ranks.",
                    "How many members does the {name} have?"),
    },
    "city": {
        "province": ("{name} is a town in the province of {value}.",
                    "In which province is {name} located?"),
        "founded_year": ("Chronicles record that {name} was founded in {value}.",
                         "In what year was {name} founded?"),
        "river": ("The {value} flows through the centre of {name}.",
                  "Which river flows through {name}?"),
        "population": ("The last census counted {value} in {name}.",
                       "How many inhabitants did the last census count in {name}?"),
    },
    "river": {
        "length": ("The {name} is {value} long.", "How long is the {name}?"),
        "source": ("The {name} rises in the {value}.", "In which mountains does the {name} rise?"),
        "mouth": ("The {name} empties into the {value}.", "Into which sea does the {name} empty?"),
        "tributary": ("Its largest tributary, the {value}, joins the {name} near a mill.",
                      "What is the largest tributary of the {name}?"),
    },
}
INTROS = {
    "person": "{name} is a figure often mentioned in the regional chronicles.",
    "organisation": "The {name} is an old institution known throughout the region.",
    "city": "{name} is a settlement described in many travel journals.",
    "river": "The {name} is a river that appears on most regional maps.",
}
FILLERS = [  # {ref} is the name, with "the" for organisations and rivers
    "Travellers often mention {ref} when describing the {adj} {thing} of the region.",
    "Several letters in the provincial archive refer to {ref} in passing.",
    "Local storytellers still argue about the early history of {ref}.",
    "Visitors connect {ref} with {adj} {thing} and long winters.",
    "A small museum keeps drawings and notes connected with {ref}.",
    "Historians describe the records about {ref} as {adj} but reliable.",
]
KINDS = ["person", "organisation", "city", "river"]
MIN_WORDS, MAX_WORDS = 40, 80


@dataclass
class SynthKB:
    """The generated corpus, the two question sets, and the entities behind them."""

    passages: list[dict]
    train: list[dict]
    eval: list[dict]
    entities: list[dict] = field(default_factory=list)


class _Names:
    """Draws unique invented names from syllables."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.used: set[str] = set()
        self.extra = 0  # syllables added once shorter names run out

    def word(self, syllables: int = 2) -> str:
        """A fresh word of ``syllables`` syllables (more once 200 draws in a row collide)."""
        while True:
            for _ in range(200):
                n = syllables + self.extra
                parts = [self.rng.choice(ONSETS)] + [self.rng.choice(MIDDLES) for _ in range(n - 1)]
                w = ("".join(parts) + self.rng.choice(CODAS)).capitalize()
                if w not in self.used and len(w) >= 4:
                    self.used.add(w)
                    return w
            self.extra += 1

    def unique(self, make) -> str:
        while True:
            name = make()
            if name not in self.used:
                self.used.add(name)
                return name


def _entities(rng: random.Random, num_entities: int) -> list[dict]:
    """Entities in sibling pairs that share a name stem but not their facts."""
    names = _Names(rng)
    counts = {k: num_entities // len(KINDS) + (i < num_entities % len(KINDS))
              for i, k in enumerate(KINDS)}
    # Names first, so facts can refer to other entities (a founder is a person of the KB).
    named: dict[str, list[str]] = {k: [] for k in KINDS}
    for kind in KINDS:
        while len(named[kind]) < counts[kind]:
            stem = names.word()
            if kind == "person":
                group = [names.unique(lambda: f"{names.word()} {stem}") for _ in range(2)]
            elif kind == "organisation":
                kinds = rng.sample(ORG_KINDS, 2)
                group = [names.unique(lambda k=k: f"{stem} {k}") for k in kinds]
            elif kind == "city":
                group = [stem, names.unique(lambda: stem + rng.choice(["ford", "holm", "by", "wick"]))]
            else:
                group = [names.unique(lambda: f"{stem} River"),
                         names.unique(lambda: f"Upper {stem} River")]
            named[kind] += group[: counts[kind] - len(named[kind])]

    def person() -> str:
        return rng.choice(named["person"]) if named["person"] else f"{names.word()} {names.word()}"

    def city() -> str:
        return rng.choice(named["city"]) if named["city"] else names.word(3)

    def river() -> str:
        return rng.choice(named["river"]) if named["river"] else f"{names.word()} River"

    entities = []
    for kind in KINDS:
        for name in named[kind]:
            if kind == "person":
                mentor = person() if len(named["person"]) > 1 else f"{names.word()} {names.word()}"
                while mentor == name:
                    mentor = person()
                facts = {"birth_year": str(rng.randint(1720, 1960)), "home_city": city(),
                         "occupation": rng.choice(OCCUPATIONS), "mentor": mentor}
            elif kind == "organisation":
                facts = {"founder": person(), "founded_year": str(rng.randint(1600, 1990)),
                         "headquarters": city(), "members": f"{rng.randint(12, 990)} members"}
            elif kind == "city":
                facts = {"province": names.word() + rng.choice(PROVINCE_SUFFIX),
                         "founded_year": str(rng.randint(820, 1580)), "river": river(),
                         "population": f"{rng.randint(2, 480) * 100 + rng.randint(1, 99)} inhabitants"}
            else:
                facts = {"length": f"{rng.randint(40, 2900)} kilometres",
                         "source": f"{names.word()} Mountains", "mouth": f"Sea of {names.word()}",
                         "tributary": names.unique(lambda: f"{names.word()} Brook")}
            entities.append({"kind": kind, "name": name, "facts": facts})
    return entities


def _passage_texts(rng: random.Random, entity: dict,
                   passages_per_entity: int) -> list[tuple[str, list[str]]]:
    """Split an entity's fact sentences over its passages: ``[(text, [fact keys]), ...]``."""
    name, kind = entity["name"], entity["kind"]
    ref = f"the {name}" if kind in ("organisation", "river") else name
    keys = list(entity["facts"])
    rng.shuffle(keys)
    out = []
    for j in range(passages_per_entity):
        mine = keys[j::passages_per_entity]
        sentences = [INTROS[kind].format(name=name)]
        sentences += [FACTS[kind][k][0].format(name=name, value=entity["facts"][k]) for k in mine]
        fillers = rng.sample(FILLERS, len(FILLERS))
        while len(" ".join(sentences).split()) < MIN_WORDS and fillers:
            filler = fillers.pop().format(ref=ref, adj=rng.choice(ADJECTIVES), thing=rng.choice(THINGS))
            if len((" ".join(sentences) + " " + filler).split()) > MAX_WORDS:
                break
            sentences.insert(1 + rng.randint(0, len(sentences) - 1), filler)
        out.append((" ".join(sentences), mine))
    return out


def make_synthkb(seed: int = 0, num_entities: int = 120, passages_per_entity: int = 2,
                 num_train: int = 200, num_eval: int = 50) -> SynthKB:
    """Generate the knowledge base; the same arguments always give the same output.

    ``num_entities`` is spread evenly over the four kinds; each entity has 4 facts, so at most
    ``4 * num_entities`` questions exist and ``num_train + num_eval`` must not exceed that.
    """
    if num_entities < 1 or passages_per_entity < 1 or num_train < 0 or num_eval < 0:
        raise ValueError("synthkb: num_entities and passages_per_entity must be >= 1, "
                         "num_train and num_eval >= 0")
    available = 4 * num_entities
    if num_train + num_eval > available:
        raise ValueError(f"synthkb: {num_entities} entities give {available} questions, but "
                         f"num_train + num_eval = {num_train + num_eval}; raise num_entities to at "
                         f"least {-(-(num_train + num_eval) // 4)} or ask for fewer questions")
    rng = random.Random(seed)
    entities = _entities(rng, num_entities)

    passages, facts = [], []  # facts: (entity, key, passage index)
    for ent in entities:
        for text, keys in _passage_texts(rng, ent, passages_per_entity):
            passages.append({"title": ent["name"], "text": text})
            facts += [(ent, k, len(passages) - 1) for k in keys]
    order = list(range(len(passages)))
    rng.shuffle(order)  # neighbours in the corpus are unrelated
    pid = {old: f"kb{new:05d}" for new, old in enumerate(order)}
    corpus = [{"id": pid[old], **passages[old]} for old in order]
    corpus.sort(key=lambda p: p["id"])

    rng.shuffle(facts)

    def question(ent: dict, key: str, index: int, split: str, i: int) -> dict:
        return {"id": f"{DATASET}-{split}-{i:05d}", "dataset": DATASET,
                "question": FACTS[ent["kind"]][key][1].format(name=ent["name"]),
                "answers": [ent["facts"][key]], "gold": [pid[index]]}

    train = [question(*f, "train", i) for i, f in enumerate(facts[:num_train])]
    evals = [question(*f, "eval", i) for i, f in enumerate(facts[num_train:num_train + num_eval])]
    log.info("synthkb seed=%d: %d entities, %d passages, %d train and %d eval questions",
             seed, len(entities), len(corpus), len(train), len(evals))
    return SynthKB(passages=corpus, train=train, eval=evals, entities=entities)


def write_synthkb(out_dir: str | Path, kb: SynthKB, corpus_format: str = "jsonl") -> dict[str, Path]:
    """Write ``corpus.jsonl``, ``train.jsonl`` and ``eval.jsonl`` to ``out_dir``; return their paths.

    ``corpus_format`` is ``jsonl`` (``{id, title, text}``) or ``flashrag`` (``{id, contents}`` with
    ``contents = '"title"\\ntext'``). The readers (:mod:`stages.lib.data.corpus`) read all three back unchanged.
    """
    if corpus_format not in ("jsonl", "flashrag"):
        raise ValueError(f"corpus_format must be 'jsonl' or 'flashrag', got {corpus_format!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    corpus = kb.passages if corpus_format == "jsonl" else [
        {"id": p["id"], "contents": f'"{p["title"]}"\n{p["text"]}'} for p in kb.passages]
    paths = {}
    for name, rows in (("corpus", corpus), ("train", kb.train), ("eval", kb.eval)):
        path = out / f"{name}.jsonl"
        with open(path, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        paths[name] = path
    return paths


__all__ = ["DATASET", "SynthKB", "make_synthkb", "write_synthkb"]
