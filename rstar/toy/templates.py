"""The toy world's story templates: scenarios, their sentences and the reasoning behind each.

A problem tracks one quantity through a chain of events. A scenario says how the quantity
is introduced (a *start*, either one fact or two facts combined by one operation), which
events can change it (*moves*, one arithmetic operation each), how the question is asked,
and which irrelevant facts (*distractors*) may be mixed in at harder levels.

Placeholders filled in by :mod:`rstar.toy.world`:

- ``{name}`` the protagonist, with pronouns ``{He} {he} {His} {his} {him}``;
- ``{friend}`` and ``{other}`` two other people; ``{subject}`` / ``{new}`` the person whose
  age is tracked before / after a move (ages scenario);
- ``{a} {b}`` the numbers of a start, ``{n}`` the number of a move or distractor;
- scenario vocabulary such as ``{obj}``, ``{item}``, ``{vehicle}`` (see ``Scenario.vocab``).

Comments are the reasoning shown in the gold solution (``# Step i: <comment>``); they name
the fact used and the operation, so the policy can learn the sentence -> code mapping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Op(StrEnum):
    """The four operations a step may apply."""

    ADD = "+"
    SUB = "-"
    MUL = "*"
    DIV = "/"


@dataclass(frozen=True)
class Start:
    """How a problem introduces its quantity: ``{a}`` alone, or ``{a} op {b}`` as one step."""

    key: str
    text: str
    comment: str
    op: Op | None = None


@dataclass(frozen=True)
class Move:
    """One event that changes the tracked quantity by one operation with the number ``{n}``.

    ``fixed`` is a number the sentence implies without writing it ("doubles" = 2).
    ``new_subject`` moves the tracked quantity to a new person (ages: "{new} is 3 years
    older than {subject}"). ``question`` replaces the scenario's question when this move is
    the last one that sets it (e.g. "how much does each roommate pay" after a split).
    """

    key: str
    op: Op
    text: str
    comment: str
    fixed: int | None = None
    new_subject: bool = False
    question: str | None = None


@dataclass(frozen=True)
class Scenario:
    """A family of stories around one tracked quantity.

    ``var`` is the Python variable of the gold code (may use placeholders, e.g.
    ``{subject_var}_age``). ``exact_division`` forbids splits that leave a fraction (marbles
    and ages stay whole); elsewhere splits may produce fractions such as 7/2.
    """

    key: str
    var: str
    exact_division: bool
    starts: tuple[Start, ...]
    moves: tuple[Move, ...]
    questions: tuple[str, ...]
    distractors: tuple[str, ...]
    vocab: dict[str, tuple[str, ...]] = field(default_factory=dict)


MALE_NAMES = (
    "Ben",
    "David",
    "Farid",
    "Hugo",
    "Jack",
    "Leo",
    "Noah",
    "Pablo",
    "Ravi",
    "Tom",
    "Victor",
    "Yusuf",
    "Liam",
    "Omar",
    "Ivan",
    "Kenji",
    "Mateo",
    "Sam",
    "Theo",
    "Arjun",
)
FEMALE_NAMES = (
    "Ann",
    "Carla",
    "Emma",
    "Grace",
    "Ines",
    "Kira",
    "Maya",
    "Olga",
    "Quinn",
    "Sara",
    "Uma",
    "Wendy",
    "Zoe",
    "Mia",
    "Nina",
    "Lena",
    "Rosa",
    "Aisha",
    "Chloe",
    "Eva",
)

# Irrelevant facts usable in any scenario; scenario-specific ones are more confusable.
GENERIC_DISTRACTORS = (
    "{friend} is {n} years old.",
    "{friend} has {n} {other_things}.",
    "The shop on the corner opened {n} years ago.",
    "{name}'s school is {n} km away.",
    "There are {n} {other_things} in the room.",
    "{friend} walks {n} minutes to the park every day.",
)
OTHER_THINGS = ("balloons", "pencils", "plants", "chairs", "cookies", "shirts", "cups", "lamps")

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        key="collection",
        var="{obj_var}",
        exact_division=True,
        starts=(
            Start("has", "{name} has {a} {obj}.", "{name} has {a} {obj}"),
            Start("day", "{name} starts the day with {a} {obj}.", "{name} starts with {a} {obj}"),
            Start("box", "There are {a} {obj} in {name}'s box.", "the box holds {a} {obj}"),
            Start(
                "boxes",
                "{name} has {a} boxes with {b} {obj} in each box.",
                "{a} boxes with {b} {obj} each, so multiply",
                Op.MUL,
            ),
        ),
        moves=(
            Move("finds", Op.ADD, "{He} finds {n} more {obj}.", "{he} finds {n} more, so add {n}"),
            Move(
                "gift", Op.ADD, "{friend} gives {him} {n} {obj}.", "{friend} gives {n}, so add {n}"
            ),
            Move(
                "buys",
                Op.ADD,
                "{He} buys another {n} {obj} at the market.",
                "{he} buys {n} more, so add {n}",
            ),
            Move(
                "gives",
                Op.SUB,
                "{He} gives {n} {obj} to {friend}.",
                "{he} gives away {n}, so subtract {n}",
            ),
            Move(
                "loses", Op.SUB, "{He} loses {n} of {his} {obj}.", "{he} loses {n}, so subtract {n}"
            ),
            Move(
                "borrow",
                Op.SUB,
                "{friend} borrows {n} {obj} and never returns them.",
                "{n} are not returned, so subtract {n}",
            ),
            Move(
                "trade",
                Op.MUL,
                "{He} trades them so that {he} has {n} times as many {obj}.",
                "{n} times as many, so multiply by {n}",
            ),
            Move(
                "double",
                Op.MUL,
                "Then the number of {obj} {he} has doubles.",
                "the number doubles, so multiply by 2",
                fixed=2,
            ),
            Move(
                "piles",
                Op.DIV,
                "{He} splits the {obj} into {n} equal piles and keeps one pile.",
                "{n} equal piles and one is kept, so divide by {n}",
            ),
            Move(
                "half",
                Op.DIV,
                "{He} gives away half of {his} {obj}.",
                "half is given away, so divide by 2",
                fixed=2,
            ),
        ),
        questions=(
            "How many {obj} does {name} have now?",
            "How many {obj} does {name} end up with?",
        ),
        distractors=(
            "{friend}'s box can hold {n} {obj}.",
            "{friend} has {n} {obj}.",
        ),
        vocab={
            "obj": (
                "marbles",
                "stickers",
                "stamps",
                "shells",
                "cards",
                "beads",
                "toy cars",
                "apples",
                "eggs",
                "books",
            )
        },
    ),
    Scenario(
        key="money",
        var="money",
        exact_division=False,
        starts=(
            Start("wallet", "{name} has ${a} in {his} wallet.", "{name} has {a} dollars"),
            Start("saved", "{name} has saved ${a}.", "{name} has {a} dollars"),
            Start(
                "hourly",
                "{name} earns ${a} an hour and works {b} hours.",
                "{a} dollars per hour for {b} hours, so multiply",
                Op.MUL,
            ),
        ),
        moves=(
            Move(
                "earns", Op.ADD, "{He} earns ${n} by {chore}.", "{he} earns {n} dollars, so add {n}"
            ),
            Move(
                "relative",
                Op.ADD,
                "{His} {relative} gives {him} ${n}.",
                "{he} gets {n} dollars, so add {n}",
            ),
            Move(
                "spends",
                Op.SUB,
                "{He} spends ${n} on {item}.",
                "{he} spends {n} dollars, so subtract {n}",
            ),
            Move(
                "pays",
                Op.SUB,
                "{He} pays ${n} for {item}.",
                "{he} pays {n} dollars, so subtract {n}",
            ),
            Move(
                "invests",
                Op.MUL,
                "{He} invests the money and it grows to {n} times as much.",
                "the money grows {n} times, so multiply by {n}",
            ),
            Move(
                "doubles",
                Op.MUL,
                "{His} {relative} doubles the money {he} has.",
                "the money is doubled, so multiply by 2",
                fixed=2,
            ),
            Move(
                "envelopes",
                Op.DIV,
                "{He} divides the money equally into {n} envelopes and keeps one envelope.",
                "{n} equal envelopes and one is kept, so divide by {n}",
            ),
            Move(
                "donates",
                Op.DIV,
                "{He} donates half of {his} money.",
                "half is donated, so divide by 2",
                fixed=2,
            ),
        ),
        questions=(
            "How many dollars does {name} have now?",
            "How much money, in dollars, does {name} have at the end?",
        ),
        distractors=(
            "{item_cap} costs ${n} at the store next door.",
            "{friend} has ${n}.",
        ),
        vocab={
            "chore": ("washing cars", "mowing lawns", "walking dogs", "selling lemonade"),
            "relative": ("aunt", "uncle", "grandmother", "grandfather"),
            "item": ("a book", "a sandwich", "a toy", "a ticket", "lunch", "a puzzle"),
        },
    ),
    Scenario(
        key="shopping",
        var="bill",
        exact_division=False,
        starts=(
            Start(
                "cart",
                "{name} puts items worth ${a} in {his} cart.",
                "the cart is worth {a} dollars",
            ),
            Start(
                "each",
                "{name} buys {a} {items} at ${b} each.",
                "{a} {items} at {b} dollars each, so multiply",
                Op.MUL,
            ),
        ),
        moves=(
            Move(
                "adds",
                Op.ADD,
                "{He} adds a {thing} that costs ${n}.",
                "the {thing} adds {n} dollars, so add {n}",
            ),
            Move(
                "delivery",
                Op.ADD,
                "The delivery fee is ${n}.",
                "the delivery fee is {n} dollars, so add {n}",
            ),
            Move(
                "coupon",
                Op.SUB,
                "{He} uses a coupon for ${n} off.",
                "the coupon takes off {n} dollars, so subtract {n}",
            ),
            Move(
                "putback",
                Op.SUB,
                "{He} puts back an item worth ${n}.",
                "an item worth {n} dollars is removed, so subtract {n}",
            ),
            Move(
                "families",
                Op.MUL,
                "{He} buys the same for {n} families, so the bill is {n} times as big.",
                "the bill is {n} times as big, so multiply by {n}",
            ),
            Move(
                "roommates",
                Op.DIV,
                "The bill is split equally among {n} roommates.",
                "the bill is split among {n}, so divide by {n}",
                question="How many dollars does each roommate pay?",
            ),
        ),
        questions=("How many dollars is the bill?", "What is the total of the bill, in dollars?"),
        distractors=(
            "A {thing} in another shop costs ${n}.",
            "The store has {n} checkout lanes.",
        ),
        vocab={
            "items": ("notebooks", "pens", "mugs", "towels", "batteries", "candles"),
            "thing": ("lamp", "scarf", "backpack", "game", "plant"),
        },
    ),
    Scenario(
        key="baking",
        var="{ingredient_var}",
        exact_division=False,
        starts=(
            Start("kitchen", "{name} has {a} {unit} of {ingredient}.", "{name} has {a} {unit}"),
            Start(
                "batches",
                "{name} bakes {a} batches of {food}, and each batch needs {b} {unit} of "
                "{ingredient}.",
                "{a} batches with {b} {unit} each, so multiply",
                Op.MUL,
            ),
        ),
        moves=(
            Move(
                "buys",
                Op.ADD,
                "{He} buys {n} more {unit} of {ingredient}.",
                "{he} buys {n} {unit} more, so add {n}",
            ),
            Move(
                "brings",
                Op.ADD,
                "{friend} brings {n} {unit} of {ingredient}.",
                "{friend} brings {n} {unit}, so add {n}",
            ),
            Move(
                "uses",
                Op.SUB,
                "{He} uses {n} {unit} of {ingredient} for a cake.",
                "{n} {unit} are used, so subtract {n}",
            ),
            Move(
                "spill",
                Op.SUB,
                "{n} {unit} of {ingredient} spill on the floor.",
                "{n} {unit} are spilled, so subtract {n}",
            ),
            Move(
                "scales",
                Op.MUL,
                "{He} scales everything up {n} times.",
                "scaling up {n} times, so multiply by {n}",
            ),
            Move(
                "jars",
                Op.DIV,
                "{He} divides the {ingredient} equally into {n} jars and keeps one jar.",
                "{n} equal jars and one is kept, so divide by {n}",
            ),
            Move(
                "halves",
                Op.DIV,
                "{He} halves the amount of {ingredient}.",
                "halving, so divide by 2",
                fixed=2,
            ),
        ),
        questions=(
            "What is the final amount of {ingredient}, in {unit}?",
            "How many {unit} of {ingredient} are there in the end?",
        ),
        distractors=(
            "The oven is set to {n} degrees.",
            "{friend} has {n} {unit} of {other_ingredient}.",
        ),
        vocab={
            "ingredient": ("flour", "sugar", "milk", "butter", "rice"),
            "other_ingredient": ("honey", "cocoa", "salt"),
            "unit": ("cups", "grams", "spoons"),
            "food": ("muffins", "bread", "cookies", "pancakes"),
        },
    ),
    Scenario(
        key="travel",
        var="distance",
        exact_division=False,
        starts=(
            Start("sofar", "A {vehicle} has travelled {a} km so far.", "it has travelled {a} km"),
            Start(
                "speed",
                "A {vehicle} travels at {a} km per hour for {b} hours.",
                "{a} km per hour for {b} hours, so multiply",
                Op.MUL,
            ),
        ),
        moves=(
            Move(
                "another", Op.ADD, "It then travels another {n} km.", "another {n} km, so add {n}"
            ),
            Move(
                "break",
                Op.ADD,
                "After a break it drives {n} more km.",
                "{n} more km, so add {n}",
            ),
            Move(
                "cancel",
                Op.SUB,
                "A planned detour of {n} km is cancelled.",
                "the {n} km detour is cancelled, so subtract {n}",
            ),
            Move(
                "shortcut",
                Op.SUB,
                "A shortcut saves {n} km.",
                "the shortcut saves {n} km, so subtract {n}",
            ),
            Move(
                "repeat",
                Op.MUL,
                "The whole trip is made {n} times in total.",
                "{n} trips, so multiply by {n}",
            ),
            Move(
                "drivers",
                Op.DIV,
                "The distance is shared equally between {n} drivers.",
                "the distance is shared by {n} drivers, so divide by {n}",
                question="How many km does each driver drive?",
            ),
        ),
        questions=(
            "How many km has the {vehicle} travelled in total?",
            "What is the total distance of the {vehicle}, in km?",
        ),
        distractors=(
            "The {vehicle} has {n} seats.",
            "The {vehicle} is {n} years old.",
        ),
        vocab={"vehicle": ("car", "bus", "train", "truck", "van")},
    ),
    Scenario(
        key="savings",
        var="savings",
        exact_division=False,
        starts=(
            Start("bank", "{name} has ${a} in a piggy bank.", "the piggy bank holds {a} dollars"),
            Start(
                "weekly",
                "{name} saves ${a} each week for {b} weeks.",
                "{a} dollars per week for {b} weeks, so multiply",
                Op.MUL,
            ),
        ),
        moves=(
            Move(
                "week",
                Op.ADD,
                "The next week {he} saves ${n} more.",
                "{he} saves {n} dollars more, so add {n}",
            ),
            Move(
                "birthday",
                Op.ADD,
                "{He} gets ${n} for {his} birthday.",
                "{he} gets {n} dollars, so add {n}",
            ),
            Move(
                "game",
                Op.SUB,
                "{He} takes out ${n} to buy a game.",
                "{he} takes out {n} dollars, so subtract {n}",
            ),
            Move(
                "match",
                Op.MUL,
                "{His} parents add money so that the savings become {n} times as large.",
                "the savings become {n} times as large, so multiply by {n}",
            ),
            Move(
                "jars",
                Op.DIV,
                "{He} splits the savings equally between {n} jars and keeps one jar.",
                "{n} equal jars and one is kept, so divide by {n}",
            ),
        ),
        questions=(
            "How many dollars does {name} have saved now?",
            "How much money, in dollars, do {name}'s savings come to?",
        ),
        distractors=(
            "{friend} saves ${n} each month.",
            "A game costs ${n} in the shop.",
        ),
    ),
    Scenario(
        key="garden",
        var="area",
        exact_division=False,
        starts=(
            Start(
                "field",
                "A field has an area of {a} square meters.",
                "the area is {a} square meters",
            ),
            Start(
                "rectangle",
                "{name}'s garden is {a} meters long and {b} meters wide.",
                "the area is length {a} times width {b}, so multiply",
                Op.MUL,
            ),
            Start(
                "floor",
                "A room floor measures {a} m by {b} m.",
                "the area is {a} m times {b} m, so multiply",
                Op.MUL,
            ),
        ),
        moves=(
            Move(
                "strip",
                Op.ADD,
                "A strip of {n} square meters is added.",
                "{n} square meters are added, so add {n}",
            ),
            Move(
                "shed",
                Op.SUB,
                "A shed covers {n} square meters of it.",
                "the shed covers {n} square meters, so subtract {n}",
            ),
            Move(
                "path",
                Op.SUB,
                "{n} square meters are used for a path.",
                "the path uses {n} square meters, so subtract {n}",
            ),
            Move(
                "copies",
                Op.MUL,
                "There are {n} such areas in total.",
                "{n} such areas, so multiply by {n}",
            ),
            Move(
                "plots",
                Op.DIV,
                "The area is divided into {n} equal plots.",
                "{n} equal plots, so divide by {n}",
                question="How many square meters is each plot?",
            ),
        ),
        questions=(
            "What is the final area, in square meters?",
            "How many square meters are there in the end?",
        ),
        distractors=(
            "The fence around it is {n} meters long.",
            "{name} plants {n} tomato plants.",
        ),
    ),
    Scenario(
        key="ages",
        var="{subject_var}_age",
        exact_division=True,
        starts=(
            Start("age", "{subject} is {a} years old.", "{subject} is {a}"),
            Start("turned", "{subject} just turned {a}.", "{subject} is {a}"),
        ),
        moves=(
            Move(
                "older",
                Op.ADD,
                "{new} is {n} years older than {subject}.",
                "{new} is {n} years older than {subject}, so add {n}",
                new_subject=True,
            ),
            Move(
                "younger",
                Op.SUB,
                "{new} is {n} years younger than {subject}.",
                "{new} is {n} years younger than {subject}, so subtract {n}",
                new_subject=True,
            ),
            Move(
                "times",
                Op.MUL,
                "{new} is {n} times as old as {subject}.",
                "{new} is {n} times as old as {subject}, so multiply by {n}",
                new_subject=True,
            ),
            Move(
                "twice",
                Op.MUL,
                "{new} is twice as old as {subject}.",
                "{new} is twice as old as {subject}, so multiply by 2",
                fixed=2,
                new_subject=True,
            ),
            Move(
                "fraction",
                Op.DIV,
                "{subject} is {n} times as old as {new}.",
                "{new} is {subject}'s age divided by {n}",
                new_subject=True,
            ),
            Move(
                "half",
                Op.DIV,
                "{new} is half as old as {subject}.",
                "{new} is half as old as {subject}, so divide by 2",
                fixed=2,
                new_subject=True,
            ),
        ),
        questions=("How old is {subject}?", "What is {subject}'s age?"),
        distractors=(
            "{other} is {n} years old.",
            "{subject} has {n} cousins.",
        ),
    ),
)
