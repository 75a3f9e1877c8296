"""Text generators of the synthetic corpus: templates filled from :mod:`.lexicon`.

Five generators, each a function ``(random.Random) -> str`` returning one normalised utterance
(upper case, letters and single spaces only, numbers spelled out):

=========== ======== ==========================================================================
generator   domain   what is said
=========== ======== ==========================================================================
search      source   voice-search queries: weather, recipes, products, facts, definitions
dictation   source   dictated messages, reminders and descriptive sentences
command     target   smart-home and phone commands: lights, timers, media, appliances, locks
digits      target   phone numbers, codes, PINs, amounts, dates, flight numbers
address     target   postal addresses with house numbers, streets, towns, states, zip codes
=========== ======== ==========================================================================

The source domain mixes search and dictation, the target domain commands, digits and addresses,
so the target says many words the source never says (the lexical gap of a domain shift).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable

from semiasr.data.synth import lexicon as L
from semiasr.data.synth.numbers import cardinal, digits, ordinal, year

__all__ = [
    "DOMAIN_GENERATORS",
    "GENERATORS",
    "generate_text",
    "normalize_text",
    "vocabulary",
]

Template = Callable[[random.Random], str]


def _pick(rng: random.Random, words: tuple[str, ...]) -> str:
    return words[rng.randrange(len(words))]


def _article(word: str) -> str:
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"


# ---------------------------------------------------------------------------------------- search
_SEARCH: tuple[Template, ...] = (
    lambda r: f"what is the weather in {_pick(r, L.CITIES)} {_pick(r, L.WHEN)}",
    lambda r: f"will it rain in {_pick(r, L.CITIES)} {_pick(r, L.WHEN)}",
    lambda r: f"easy {_pick(r, L.DISHES)} recipe",
    lambda r: f"how to make {_pick(r, L.DISHES)} with {_pick(r, L.INGREDIENTS)}",
    lambda r: f"what can i cook with {_pick(r, L.INGREDIENTS)} and {_pick(r, L.INGREDIENTS)}",
    lambda r: (
        f"best {_pick(r, L.PRODUCT_ADJ)} {_pick(r, L.PRODUCTS)} under "
        f"{cardinal(r.choice((50, 100, 200, 300, 500, 1000)))} dollars"
    ),
    lambda r: f"{_pick(r, L.PRODUCTS)} reviews",
    lambda r: f"compare {_pick(r, L.PRODUCTS)} prices",
    lambda r: f"how fast can {_article(_pick(r, L.ANIMALS))} run",
    lambda r: f"what does {_article(_pick(r, L.ANIMALS))} eat",
    lambda r: f"how long does {_article(_pick(r, L.ANIMALS))} live",
    lambda r: f"how to {_pick(r, L.HOWTO)}",
    lambda r: f"how do i {_pick(r, L.HOWTO)}",
    lambda r: f"what does {_pick(r, L.DEFINE_WORDS)} mean",
    lambda r: f"define {_pick(r, L.DEFINE_WORDS)}",
    lambda r: f"how do you say {_pick(r, L.NOUNS)} in {_pick(r, L.LANGUAGES)}",
    lambda r: f"translate {_pick(r, L.FEELINGS)} into {_pick(r, L.LANGUAGES)}",
    lambda r: f"latest news about {_pick(r, L.TOPICS)}",
    lambda r: f"interesting facts about {_pick(r, L.TOPICS)}",
    lambda r: f"symptoms of {_pick(r, L.ILLNESSES)}",
    lambda r: f"how many {_pick(r, L.UNITS)} are in {_article(_pick(r, L.UNITS_SINGULAR))}",
    lambda r: f"when does the {_pick(r, L.SPORTS)} season start",
    lambda r: f"{_pick(r, L.SPORTS)} results from last night",
    lambda r: f"good {_pick(r, L.FILM_GENRES)} movies from the {_pick(r, L.DECADES)}",
    lambda r: f"who invented the {_pick(r, L.INVENTIONS)}",
    lambda r: f"how tall is {_pick(r, L.LANDMARKS)}",
    lambda r: f"is the {_pick(r, L.BUSINESSES)} open {_pick(r, L.WHEN)}",
    lambda r: f"{_pick(r, L.BUSINESSES)} near me",
    lambda r: f"cheap flights from {_pick(r, L.CITIES)} to {_pick(r, L.CITIES)}",
    lambda r: f"things to do in {_pick(r, L.CITIES)} {_pick(r, L.WHEN)}",
    lambda r: f"how much does {_pick(r, L.PEOPLE_ROLES)} earn",
    lambda r: f"how to become {_pick(r, L.PEOPLE_ROLES)}",
    lambda r: f"what happened in {year(r.randrange(1900, 2021))}",
    lambda r: f"population of {_pick(r, L.CITIES)}",
    lambda r: f"time difference between {_pick(r, L.CITIES)} and {_pick(r, L.CITIES)}",
)

# ------------------------------------------------------------------------------------- dictation
_DICTATION: tuple[Template, ...] = (
    lambda r: f"tell {_pick(r, L.FIRST_NAMES)} that i will be late for the {_pick(r, L.EVENTS)}",
    lambda r: (
        f"send a message to {_pick(r, L.FIRST_NAMES)} saying the {_pick(r, L.EVENTS)} "
        f"has been moved to {_pick(r, L.WEEKDAYS)}"
    ),
    lambda r: (
        f"text {_pick(r, L.RELATIVES)} i am {_pick(r, L.FEELINGS)} about the {_pick(r, L.EVENTS)}"
    ),
    lambda r: f"remind me to {_pick(r, L.TODOS)} {_pick(r, L.TIME_PHRASES)}",
    lambda r: f"note to self {_pick(r, L.TODOS)} {_pick(r, L.TIME_PHRASES)}",
    lambda r: (
        f"dear {_pick(r, L.FIRST_NAMES)} thank you for the {_pick(r, L.ADJECTIVES)} "
        f"{_pick(r, L.NOUNS)}"
    ),
    lambda r: (
        f"{_pick(r, L.FIRST_NAMES)} {_pick(r, L.VERBS_PAST)} the {_pick(r, L.ADJECTIVES)} "
        f"{_pick(r, L.NOUNS)} {_pick(r, L.PREPOSITIONS)} the {_pick(r, L.PLACES)}"
    ),
    lambda r: (
        f"{_pick(r, L.PRONOUNS)} {_pick(r, L.ADVERBS)} {_pick(r, L.VERBS_PAST)} "
        f"{_pick(r, L.RELATIVES)}s {_pick(r, L.ADJECTIVES)} {_pick(r, L.NOUNS)}"
    ),
    lambda r: (
        f"the {_pick(r, L.ADJECTIVES)} {_pick(r, L.NOUNS)} is {_pick(r, L.PREPOSITIONS)} "
        f"the {_pick(r, L.NOUNS)} in the {_pick(r, L.PLACES)}"
    ),
    lambda r: (
        f"can you bring the {_pick(r, L.NOUNS)} to the {_pick(r, L.PLACES)} "
        f"{_pick(r, L.TIME_PHRASES)}"
    ),
    lambda r: (
        f"we {_pick(r, L.VERBS_PAST)} {_article(_pick(r, L.ADJECTIVES))} "
        f"{_pick(r, L.NOUNS)} at the {_pick(r, L.PLACES)} {_pick(r, L.ADVERBS)}"
    ),
    lambda r: (
        f"i am so {_pick(r, L.FEELINGS)} that {_pick(r, L.FIRST_NAMES)} "
        f"{_pick(r, L.VERBS_PAST)} the {_pick(r, L.NOUNS)}"
    ),
    lambda r: (
        f"please ask {_pick(r, L.RELATIVES)} to meet me at the {_pick(r, L.PLACES)} "
        f"{_pick(r, L.TIME_PHRASES)}"
    ),
    lambda r: (
        f"my {_pick(r, L.ADJECTIVES)} {_pick(r, L.NOUNS)} is still at the {_pick(r, L.PLACES)}"
    ),
    lambda r: (
        f"{_pick(r, L.FIRST_NAMES)} and {_pick(r, L.FIRST_NAMES)} are coming to the "
        f"{_pick(r, L.EVENTS)} {_pick(r, L.TIME_PHRASES)}"
    ),
)

# --------------------------------------------------------------------------------------- command
_ON_OFF = ("on", "off")
_COMMAND: tuple[Template, ...] = (
    lambda r: f"turn {_pick(r, _ON_OFF)} the {_pick(r, L.ROOMS)} {_pick(r, L.DEVICES)}",
    lambda r: f"switch {_pick(r, _ON_OFF)} the {_pick(r, L.DEVICES)} in the {_pick(r, L.ROOMS)}",
    lambda r: f"dim the {_pick(r, L.ROOMS)} lights to {cardinal(r.randrange(5, 100, 5))} percent",
    lambda r: f"set the {_pick(r, L.ROOMS)} lights to {_pick(r, L.COLOURS)}",
    lambda r: f"set the thermostat to {cardinal(r.randrange(15, 80))} degrees",
    lambda r: f"make the {_pick(r, L.ROOMS)} {r.choice(('warmer', 'cooler'))}",
    lambda r: f"set a timer for {cardinal(r.randrange(1, 90))} {_pick(r, L.TIMER_UNITS)}",
    lambda r: (
        f"set an alarm for {cardinal(r.randrange(1, 13))} "
        f"{r.choice(('fifteen', 'thirty', 'forty five'))} "
        f"{r.choice(('in the morning', 'tonight', 'tomorrow', 'on ' + _pick(r, L.WEEKDAYS)))}"
    ),
    lambda r: f"cancel the {r.choice(('timer', 'alarm', 'reminder'))}",
    lambda r: f"play some {_pick(r, L.MUSIC_GENRES)} in the {_pick(r, L.ROOMS)}",
    lambda r: f"play {_pick(r, L.MUSIC_GENRES)} radio",
    lambda r: _pick(r, L.MEDIA_ACTIONS),
    lambda r: f"{_pick(r, L.MEDIA_ACTIONS)} on the {_pick(r, L.ROOMS)} speaker",
    lambda r: f"set the volume to {cardinal(r.randrange(0, 11))}",
    lambda r: f"open the {_pick(r, L.APPS)}",
    lambda r: f"close the {_pick(r, L.APPS)}",
    lambda r: f"{r.choice(('lock', 'unlock'))} the {_pick(r, L.DOORS)}",
    lambda r: f"is the {_pick(r, L.DOORS)} locked",
    lambda r: f"{r.choice(('open', 'close'))} the {_pick(r, L.ROOMS)} {_pick(r, L.COVERINGS)}",
    lambda r: f"{r.choice(('start', 'stop', 'pause'))} the {_pick(r, L.APPLIANCES)}",
    lambda r: f"put the {_pick(r, L.APPLIANCES)} on {_pick(r, L.MODES)} mode",
    lambda r: f"add {_pick(r, L.SHOPPING_ITEMS)} to my shopping list",
    lambda r: f"call {_pick(r, L.CONTACTS)}",
    lambda r: f"call {_pick(r, L.CONTACTS)} on speaker",
    lambda r: f"video call {_pick(r, L.CONTACTS)}",
    lambda r: f"turn {_pick(r, _ON_OFF)} {_pick(r, L.TOGGLES)}",
    lambda r: f"start {_article(_pick(r, L.WORKOUTS))} workout",
    lambda r: f"show the {_pick(r, L.CAMERAS)} camera",
    lambda r: f"vacuum the {_pick(r, L.ROOMS)}",
    lambda r: f"{r.choice(('arm', 'disarm'))} the alarm system",
    lambda r: f"take a {r.choice(('photo', 'screenshot', 'selfie', 'video'))}",
    lambda r: f"what is the temperature in the {_pick(r, L.ROOMS)}",
    lambda r: f"preheat the oven to {cardinal(r.randrange(150, 500, 25))} degrees",
)

# ---------------------------------------------------------------------------------------- digits


def _digit_string(r: random.Random, n: int) -> str:
    s = "".join(str(r.randrange(10)) for _ in range(n))
    return digits(s, zero=r.choice(("zero", "oh")))


def _phone(r: random.Random) -> str:
    zero = r.choice(("zero", "oh"))
    parts = ("".join(str(r.randrange(10)) for _ in range(k)) for k in (3, 3, 4))
    return " ".join(digits(p, zero=zero) for p in parts)


def _code(r: random.Random) -> str:
    items = [_pick(r, L.NATO) for _ in range(r.randrange(1, 3))]
    items += [digits(str(r.randrange(10))) for _ in range(r.randrange(2, 5))]
    r.shuffle(items)
    return " ".join(items)


_DIGITS: tuple[Template, ...] = (
    lambda r: _digit_string(r, r.randrange(3, 11)),
    lambda r: f"my phone number is {_phone(r)}",
    lambda r: f"call {_phone(r)}",
    lambda r: f"the {_pick(r, L.CODE_KINDS)} is {_digit_string(r, r.randrange(4, 9))}",
    lambda r: f"my {_pick(r, L.CODE_KINDS)} is {_code(r)}",
    lambda r: f"extension {_digit_string(r, 4)}",
    lambda r: (
        f"flight {_pick(r, L.NATO)} {_pick(r, L.NATO)} {cardinal(r.randrange(10, 3000))} "
        f"from gate {_pick(r, L.NATO)} {cardinal(r.randrange(1, 60))}"
    ),
    lambda r: (
        f"the total is {cardinal(r.randrange(1, 5000))} {_pick(r, L.CURRENCY)} and "
        f"{cardinal(r.randrange(1, 100))} cents"
    ),
    lambda r: (
        f"transfer {cardinal(r.randrange(10, 100000))} {_pick(r, L.CURRENCY)} to account "
        f"{_digit_string(r, 8)}"
    ),
    lambda r: (
        f"my date of birth is the {ordinal(r.randrange(1, 32))} of {_pick(r, L.MONTHS)} "
        f"{year(r.randrange(1930, 2020))}"
    ),
    lambda r: f"book it for {_pick(r, L.MONTHS)} {ordinal(r.randrange(1, 32))}",
    lambda r: (
        f"card ending in {_digit_string(r, 4)} expiring {_digit_string(r, 2)} {_digit_string(r, 2)}"
    ),
    lambda r: f"room {cardinal(r.randrange(100, 1000))} on the {ordinal(r.randrange(1, 40))} floor",
    lambda r: (
        f"the meter reading is {cardinal(r.randrange(1000, 100000))} point "
        f"{_digit_string(r, r.randrange(1, 3))}"
    ),
)

# --------------------------------------------------------------------------------------- address


def _house_number(r: random.Random) -> str:
    n = r.choice((r.randrange(1, 100), r.randrange(100, 1000), r.randrange(1000, 10000)))
    if n >= 1000 and r.random() < 0.5:  # "forty two eighteen"
        hi, lo = divmod(n, 100)
        tail = f"oh {cardinal(lo)}" if 0 < lo < 10 else ("hundred" if lo == 0 else cardinal(lo))
        return f"{cardinal(hi)} {tail}"
    return cardinal(n)


def _street(r: random.Random) -> str:
    return f"{_house_number(r)} {_pick(r, L.STREET_NAMES)} {_pick(r, L.STREET_TYPES)}"


def _zip(r: random.Random) -> str:
    return _digit_string(r, 5)


_ADDRESS: tuple[Template, ...] = (
    lambda r: f"{_street(r)} {_pick(r, L.TOWNS)} {_pick(r, L.STATES)} {_zip(r)}",
    lambda r: f"my address is {_street(r)} {_pick(r, L.TOWNS)}",
    lambda r: (
        f"ship it to {_street(r)} {_pick(r, L.UNIT_KINDS)} {cardinal(r.randrange(1, 60))} "
        f"{_pick(r, L.TOWNS)} {_pick(r, L.STATES)}"
    ),
    lambda r: f"navigate to {_street(r)} in {_pick(r, L.TOWNS)}",
    lambda r: (
        f"the parcel goes to {_pick(r, L.UNIT_KINDS)} {cardinal(r.randrange(1, 300))} {_street(r)}"
    ),
    lambda r: (
        f"directions to {_pick(r, L.STREET_NAMES)} {_pick(r, L.STREET_TYPES)} and "
        f"{_pick(r, L.STREET_NAMES)} {_pick(r, L.STREET_TYPES)}"
    ),
    lambda r: f"zip code {_zip(r)}",
    lambda r: f"we moved to {_street(r)} {_pick(r, L.TOWNS)} {_pick(r, L.STATES)}",
)

GENERATORS: dict[str, tuple[Template, ...]] = {
    "search": _SEARCH,
    "dictation": _DICTATION,
    "command": _COMMAND,
    "digits": _DIGITS,
    "address": _ADDRESS,
}
"""Generator name -> its templates; each template is equally likely."""

DOMAIN_GENERATORS: dict[str, dict[str, float]] = {
    "source": {"search": 0.5, "dictation": 0.5},
    "target": {"command": 0.45, "digits": 0.25, "address": 0.30},
}
"""Domain -> generator mixture weights."""

_DIGIT_RUN = re.compile(r"\d+")
_NOT_LETTER = re.compile(r"[^A-Z ]+")


def _spell_number(match: re.Match[str]) -> str:
    s = match.group(0)
    return f" {cardinal(int(s))} " if len(s) <= 4 and s[0] != "0" else f" {digits(s)} "


def normalize_text(text: str) -> str:
    """Upper case, numbers spelled out (up to four digits as a cardinal, longer ones digit by
    digit), every other non-letter dropped, single spaces: ``"Call 911, now!"`` ->
    ``"CALL NINE HUNDRED ELEVEN NOW"``."""
    text = _DIGIT_RUN.sub(_spell_number, text)
    text = text.replace("'", "").replace("-", " ").upper()
    return " ".join(_NOT_LETTER.sub(" ", text).split())


def generate_text(generator: str, rng: random.Random) -> str:
    """One normalised utterance from ``generator`` (a key of :data:`GENERATORS`)."""
    templates = GENERATORS[generator]
    return normalize_text(templates[rng.randrange(len(templates))](rng))


def vocabulary(texts: Iterable[str]) -> set[str]:
    """The distinct words of normalised texts."""
    return {w for t in texts for w in t.split()}
