"""Known-answer texts for the tests and the demo: one short script per topic, and its named entities.

Each script in `TOPIC_SCRIPTS` is a list of ten to twelve plain sentences (150 to 190 words, about a
minute of espeak-ng speech) that are clearly about one category of `taxonomy.CATEGORIES`, keyed by
that category's id. Words are chosen for espeak-ng to pronounce and Whisper to spell back: no digits
(numbers are written out), no abbreviations, and proper nouns only where a test wants them.

`THREE_TOPICS` names the scripts that, concatenated in that order, make a three-topic episode with
two known topic boundaries. Those three scripts also mention the named entities of `NAMED_ENTITIES`:
(category id, entity text, spaCy label) triples that spaCy's small English pipeline finds, with that
exact text and label, in the script's text.
"""

from __future__ import annotations

TOPIC_SCRIPTS: dict[str, list[str]] = {
    "food_and_cooking": [
        "Welcome back to the kitchen, where today we are cooking a simple tomato pasta for dinner.",
        "Our guest is the chef Maria Lopez, who runs a small restaurant in London.",
        "She learned to cook from her grandmother in Italy when she was a young girl.",
        "First, boil a large pot of salted water and add the pasta.",
        "While it cooks, warm some olive oil in a pan and fry the garlic and onions until they are soft.",
        "Then add the chopped tomatoes, a pinch of salt, black pepper and fresh basil.",
        "Let the sauce simmer slowly for twenty minutes so the flavors come together.",
        "Maria says the secret is to taste the sauce often and to finish it with butter and cheese.",
        "Drain the pasta, stir it into the sauce, and grate some fresh cheese on top.",
        "For dessert she bakes a chocolate cake with eggs, flour, sugar and cream.",
        "Every Sunday she also presents a cooking show about family recipes on the BBC.",
    ],
    "science": [
        "Tonight we look up at the night sky and talk about the planets, the stars and the moon.",
        "Our guest is the astronomer John Smith, who studies distant galaxies with a large telescope.",
        "He works with NASA on a mission to send a robot to the red planet.",
        "His telescope sits high on a mountain in Hawaii, far away from the lights of the city.",
        "Light from the sun takes about eight minutes to reach the earth.",
        "Stars are giant balls of hot gas that shine for billions of years.",
        "When a very large star dies, it can explode and leave behind a black hole.",
        "Gravity holds the planets in their orbits around the sun.",
        "John says that scientists measure the light from each galaxy to learn how fast it is moving away.",
        "In July, NASA will launch a new space telescope to search for planets like our own.",
        "Maybe one day we will find signs of life on another world.",
    ],
    "sports": [
        "Welcome to the football show, where we talk about the biggest match of the weekend.",
        "On Saturday, Arsenal played against Chelsea in front of a full stadium.",
        "The striker James Miller scored two goals in the first half.",
        "The goalkeeper made a great save from a penalty kick just before half time.",
        "In the second half, the visitors passed the ball well and scored a goal from a corner.",
        "The referee showed a yellow card to a defender after a hard tackle.",
        "The coach said his players were tired but they kept running until the end.",
        "The fans sang loudly when the final whistle blew, and the home team won the game by two goals to one.",
        "James Miller is the top scorer for Arsenal in the league this season.",
        "Next week the team travels to Madrid for the cup final.",
        "Tickets for the big game sold out in less than an hour.",
    ],
    "technology": [
        "Today we talk about computers, software and the future of the internet.",
        "Most people now carry a smartphone that is more powerful than the computers of the past.",
        "Every app on your phone is a program that engineers write in code.",
        "Programmers test their software carefully to find and fix bugs before a new version is released.",
        "Much of our data now lives in the cloud, on servers in large data centers.",
        "Artificial intelligence lets a computer recognize speech, translate text and answer questions.",
        "These models learn patterns from huge amounts of data using powerful chips.",
        "Security is a big problem, because hackers try to steal passwords and personal information.",
        "You should always update your devices and use a strong password for every account.",
        "Tech companies are also building smart watches, electric cars and virtual reality headsets.",
        "In the next episode we will explain how a computer network sends messages around the world.",
    ],
    "history": [
        "Today we travel back in time to the ancient world, thousands of years ago.",
        "The Romans built a huge empire with roads, bridges and great stone cities.",
        "Their army was strong, and their soldiers fought many wars and battles to win new lands.",
        "Kings and queens ruled much of the world for centuries, and they often fought over land and power.",
        "In the middle ages, people built castles with thick walls to protect their towns.",
        "Most people were poor farmers who worked the land for a rich lord.",
        "Historians study old letters, books and maps to understand how people lived in the past.",
        "Archaeologists dig in the ground to find old coins, pots and the ruins of ancient temples.",
        "A revolution can change a country forever, when people rise up against their rulers.",
        "Every old building and monument tells a story about the people who came before us.",
        "Next time, we will look at how the great empires of the past finally fell.",
    ],
    "health_and_fitness": [
        "Welcome to the show about health, fitness and feeling good in your body.",
        "Regular exercise makes your heart stronger and helps you live a longer life.",
        "Try to go for a walk or a run for thirty minutes most days of the week.",
        "Strength training at the gym builds muscle and keeps your bones healthy.",
        "Always warm up and stretch before a workout, so that you do not get hurt.",
        "A healthy diet has plenty of fruit, vegetables, whole grains and water.",
        "Eating less sugar and fewer snacks can help you lose weight.",
        "Sleep is just as important as exercise, so aim for eight hours every night.",
        "Stress can hurt your body and your mind, so take time to breathe and rest.",
        "If you feel pain or you are sick, talk to your doctor before you start a new training plan.",
        "Small healthy habits every day add up to big changes over time.",
    ],
}

THREE_TOPICS: tuple[str, str, str] = ("food_and_cooking", "science", "sports")

NAMED_ENTITIES: list[tuple[str, str, str]] = [
    ("food_and_cooking", "Maria Lopez", "PERSON"),
    ("food_and_cooking", "London", "GPE"),
    ("food_and_cooking", "Italy", "GPE"),
    ("food_and_cooking", "Sunday", "DATE"),
    ("food_and_cooking", "BBC", "ORG"),
    ("science", "John Smith", "PERSON"),
    ("science", "NASA", "ORG"),
    ("science", "Hawaii", "GPE"),
    ("science", "July", "DATE"),
    ("sports", "Arsenal", "ORG"),
    ("sports", "Chelsea", "ORG"),
    ("sports", "James Miller", "PERSON"),
    ("sports", "Saturday", "DATE"),
    ("sports", "Madrid", "GPE"),
]


def script_text(topic: str) -> str:
    """The script of category `topic` as one string, sentences joined by spaces."""
    return " ".join(TOPIC_SCRIPTS[topic])


def three_topic_sentences() -> list[str]:
    """The sentences of the three-topic episode, in `THREE_TOPICS` order."""
    return [sentence for topic in THREE_TOPICS for sentence in TOPIC_SCRIPTS[topic]]


def three_topic_boundaries() -> list[int]:
    """Indices into `three_topic_sentences()` of the first sentence of the second and third topics."""
    sizes = [len(TOPIC_SCRIPTS[topic]) for topic in THREE_TOPICS]
    return [sum(sizes[:1]), sum(sizes[:2])]
