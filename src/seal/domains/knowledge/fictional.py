"""An embedded, uncontaminated dataset: fictional passages with questions and gold answers.

Every passage describes an invented town, person or company (made-up names, places,
dates and quantities), so no model can know its facts before reading it: every point
of no-context accuracy gained after adaptation is knowledge incorporated.

Built to leave headroom for self-edits (simple template passages were measured at 0 %
base and 67 % passage-only with SmolLM2-135M): each passage is dense (seven facts, two
of them about a second invented entity), each fact has several phrasings, and each
question is worded unlike the sentence that states its answer (a different verb, the
other side of a relation), so that rote memorisation of the passage is not enough.

    python -m seal.domains.knowledge.fictional 3    # print three passages
"""

from __future__ import annotations

import random
import sys

from seal.domains.knowledge.passages import Passage, Question

_ONSETS = ["b", "br", "d", "dr", "f", "g", "gr", "k", "kr", "l", "m", "n", "p", "qu", "r", "s", "st", "t", "th", "v", "z", "sh", "h"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ei", "ou", "y"]
_CODAS = ["", "", "n", "r", "l", "s", "th", "m", "rk", "nd", "x"]

_PRODUCTS = ["copper lanterns", "glass beads", "wool carpets", "clay pipes", "salted fish", "silver bells",
             "river pearls", "cedar barrels", "tin whistles", "indigo dye", "paper kites", "stone mills"]
_CROPS = ["saffron", "barley", "flax", "plums", "hops", "lentils", "hazelnuts", "quinces"]
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"]
_FIELDS = ["astronomy", "botany", "metallurgy", "cartography", "acoustics", "glassmaking", "hydraulics", "optics"]
_DEVICES = ["a tide clock", "a folding telescope", "a wind-powered loom", "a brass compass", "a steam kettle",
            "a seed drill", "a water filter", "a printing frame"]
_PRIZES = ["Order of the Lantern", "Golden Compass Award", "Meridian Medal", "Harrowgate Prize"]
_GOODS = ["bicycles", "umbrellas", "typewriters", "sewing machines", "canned peaches", "pocket watches",
          "ceramic tiles", "fountain pens"]
_ANIMALS = ["a heron", "a fox", "an otter", "a lynx", "a stag", "a crane", "a badger", "a hare"]
_COLOURS = ["crimson", "teal", "amber", "violet", "ochre", "slate grey"]


def _word(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables - 1)) + \
        rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)


def _name(rng: random.Random, syllables: tuple[int, int] = (2, 3)) -> str:
    return _word(rng, rng.randint(*syllables)).capitalize()


def _person(rng: random.Random) -> str:
    return f"{_name(rng, (2, 2))} {_name(rng, (2, 3))}"


def _number(rng: random.Random, low: int, high: int, step: int) -> str:
    return f"{rng.randrange(low, high, step):,}"


def _pick(rng: random.Random, *phrasings: str) -> str:
    return rng.choice(phrasings)


def _town(rng: random.Random) -> Passage:
    town, region, river = _name(rng), _name(rng), _name(rng)
    founder, mayor = _person(rng), _person(rng)
    year = str(rng.randint(1120, 1890))
    population = _number(rng, 2_000, 90_000, 100)
    product, crop, month = rng.choice(_PRODUCTS), rng.choice(_CROPS), rng.choice(_MONTHS)
    bridges = str(rng.randint(3, 19))
    facts = [
        (_pick(rng, f"{town} is a town in the province of {region}, on the banks of the {river} river.",
               f"Lying beside the {river} river, {town} belongs to the province of {region}."),
         [Question(f"Which province contains {town}?", region),
          Question(f"What river flows past {town}?", river)]),
        (_pick(rng, f"It was founded in {year} by the merchant {founder}.",
               f"The merchant {founder} established it in {year}."),
         [Question(f"In what year did {town} come into existence?", year),
          Question(f"Who started the settlement of {town}?", founder)]),
        (_pick(rng, f"Its {population} residents are known across {region} for making {product}.",
               f"About {population} people live there, and its workshops are famous for {product}."),
         [Question(f"What craft goods is {town} famous for?", product),
          Question(f"How many inhabitants does {town} have?", population)]),
        (_pick(rng, f"Every {month} the town holds a fair celebrating the {crop} harvest.",
               f"A harvest fair for {crop} takes place there each {month}."),
         [Question(f"Which crop is celebrated at the yearly fair in {town}?", crop),
          Question(f"During which month is the harvest fair of {town} held?", month)]),
        (_pick(rng, f"The current mayor, {mayor}, has overseen the construction of {bridges} bridges across the {river}.",
               f"{bridges} bridges over the {river} were built under {mayor}, who is now mayor."),
         [Question(f"Who governs {town} today?", mayor),
          Question(f"How many bridges were built under the present mayor of {town}?", bridges)]),
    ]
    return _assemble(rng, town, facts)


def _person_passage(rng: random.Random) -> Passage:
    person, town, teacher = _person(rng), _name(rng), _person(rng)
    born = rng.randint(1650, 1950)
    field, device, prize = rng.choice(_FIELDS), rng.choice(_DEVICES), rng.choice(_PRIZES)
    prize_year = str(born + rng.randint(25, 60))
    academy = f"the {_name(rng)} Academy"
    pupils = str(rng.randint(4, 40))
    surname = person.split()[1]
    facts = [
        (_pick(rng, f"{person} was a scholar of {field}, born in {born} in the village of {town}.",
               f"Born in {town} in {born}, {person} devoted a life to {field}."),
         [Question(f"What subject did {person} study?", field),
          Question(f"Where was {person} born?", town),
          Question(f"In which year was {person} born?", str(born))]),
        (_pick(rng, f"{surname} trained at {academy} under {teacher}.",
               f"At {academy}, {surname} was a student of {teacher}."),
         [Question(f"Who taught {person}?", teacher),
          Question(f"Which institution educated {person}?", academy.removeprefix("the "))]),
        (_pick(rng, f"{surname} is best remembered for inventing {device}.",
               f"The invention of {device} made {surname} famous."),
         [Question(f"What did {person} invent?", device.split(" ", 1)[1])]),
        (_pick(rng, f"In {prize_year} {surname} received the {prize}.",
               f"The {prize} was awarded to {surname} in {prize_year}."),
         [Question(f"Which honour did {person} win?", prize),
          Question(f"When was {person} given the {prize}?", prize_year)]),
        (_pick(rng, f"Over the years {surname} trained {pupils} apprentices.",
               f"{pupils} apprentices learned the trade from {surname}."),
         [Question(f"How many apprentices did {person} take on?", pupils)]),
    ]
    return _assemble(rng, person, facts)


def _company(rng: random.Random) -> Passage:
    company = f"{_name(rng)} {rng.choice(['Works', 'Company', 'Brothers', 'Manufactory'])}"
    founder, city, city2, ceo = _person(rng), _name(rng), _name(rng), _person(rng)
    year = rng.randint(1820, 1990)
    moved = str(year + rng.randint(5, 40))
    goods, animal, colour = rng.choice(_GOODS), rng.choice(_ANIMALS), rng.choice(_COLOURS)
    staff = _number(rng, 120, 9_000, 10)
    facts = [
        (_pick(rng, f"The {company} was started by {founder} in {city} in {year} to make {goods}.",
               f"In {year}, {founder} opened the {company} in {city}, producing {goods}."),
         [Question(f"What products does the {company} manufacture?", goods),
          Question(f"Who founded the {company}?", founder),
          Question(f"In which year did the {company} begin operating?", str(year))]),
        (_pick(rng, f"Its headquarters moved to {city2} in {moved}.",
               f"In {moved} the firm relocated its head office to {city2}."),
         [Question(f"Where is the {company} based today?", city2),
          Question(f"When did the {company} change its home city?", moved)]),
        (_pick(rng, f"The firm employs {staff} workers and is led by {ceo}.",
               f"{ceo} heads the company, which has {staff} employees."),
         [Question(f"Who runs the {company} now?", ceo),
          Question(f"How large is the workforce of the {company}?", staff)]),
        (_pick(rng, f"Its logo shows {animal} on a {colour} background.",
               f"A {colour} field with {animal} forms its emblem."),
         [Question(f"Which animal appears in the {company}'s emblem?", animal.split(" ", 1)[1]),
          Question(f"What colour is the background of the {company}'s logo?", colour)]),
    ]
    return _assemble(rng, company, facts)


def _assemble(rng: random.Random, title: str, facts: list[tuple[str, list[Question]]]) -> Passage:
    context = " ".join(sentence for sentence, _ in facts)
    questions = tuple(q for _, qs in facts for q in qs)
    return Passage(title=title, context=context, questions=questions)


_KINDS = [_town, _person_passage, _company]


def generate_passages(n: int, seed: int = 0) -> list[Passage]:
    """`n` fictional passages; the same seed always gives the same passages, and passage i
    does not depend on n (so a run on 10 passages is a prefix of a run on 100).

    >>> a, b = generate_passages(3, seed=7), generate_passages(5, seed=7)
    >>> a == b[:3] and a != generate_passages(3, seed=8)
    True
    >>> all(q.answer.lower() in p.context.lower() for p in a for q in p.questions)
    True
    """
    passages = []
    for i in range(n):
        rng = random.Random(f"seal-fictional-{seed}-{i}")
        passages.append(_KINDS[i % len(_KINDS)](rng))
    return passages


if __name__ == "__main__":
    for p in generate_passages(int(sys.argv[1]) if len(sys.argv) > 1 else 3):
        print(f"# {p.title}\n{p.context}")
        for q in p.questions:
            print(f"  Q: {q.question}  ->  {q.answer}")
        print()
