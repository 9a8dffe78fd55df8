"""The built-in category taxonomy for podcast episodes and videos.

Nineteen top-level categories, loosely modelled on Apple Podcasts' categories but merged where the
line is academic for a transcript (news and government are one; fiction lives in arts and tv & film;
leisure and hobbies takes games, crafts, gardening, cars and pets). An episode usually scores high on
one or two of them.

Each `Category` has:
- `id`: a stable snake_case key, what tables and tests store; never renamed, only added to.
- `name`: the display name.
- `description`: one to three sentences of plain, vocabulary-rich prose about what episodes in the
  category talk about. The descriptions *are* the classifier: `classification.classify` embeds each one
  with the sentence embedder and compares it with the episode's passages, so they are written to be
  close in meaning to what people actually say on such a show (the nouns and verbs of the topic), not
  as definitions. Editing a description changes scores; keep them about the same length so that no
  category is favoured by being vaguer.

How scores are computed (see `classification`): every passage of the transcript (a sentence or a
window of about 60 words) is embedded, its cosine similarity to every description is turned into a
probability over the categories by a softmax with a fixed temperature, and an episode's score for a
category is the word-weighted mean of those probabilities: the share of the episode, in [0, 1], that
is about the category. The scores of all categories sum to 1.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    id: str
    name: str
    description: str


CATEGORIES: tuple[Category, ...] = (
    Category(
        "arts",
        "Arts",
        "Painting, drawing, sculpture, photography, design, fashion, poetry, books and novels, writers and "
        "authors, literature, theatre, dance and performance. Artists talk about their creative process, "
        "galleries, museums, exhibitions and the craft of making art.",
    ),
    Category(
        "business",
        "Business",
        "Companies, startups, entrepreneurs, management, marketing, sales, customers and careers. Money, "
        "investing, the stock market, the economy, banks, prices, profit, revenue, jobs, leadership and "
        "how to grow and run a business.",
    ),
    Category(
        "comedy",
        "Comedy",
        "Comedians telling jokes, funny stories, stand up comedy, improv and sketches. Hosts laugh, tease "
        "each other, banter and riff on silly, absurd and embarrassing everyday situations.",
    ),
    Category(
        "education",
        "Education",
        "Teaching and learning: schools, teachers, students, classes, lessons, homework, exams, university "
        "and courses. How to study, learn a language, improve skills, and explanations and tutorials that "
        "help listeners understand a subject.",
    ),
    Category(
        "food_and_cooking",
        "Food & Cooking",
        "Cooking, recipes, chefs, kitchens and restaurants. Ingredients, meals, dinner, baking bread and "
        "cakes, sauces, spices, vegetables, meat, cheese, wine and coffee, how a dish tastes and how to "
        "prepare it, boil, fry, roast or bake it.",
    ),
    Category(
        "health_and_fitness",
        "Health & Fitness",
        "Exercise, workouts, running, strength training, the gym, diet and nutrition, weight loss, sleep, "
        "stress and mental health. Doctors, medicine, illness, the heart, muscles and the body, and habits "
        "for a healthy life.",
    ),
    Category(
        "history",
        "History",
        "The past: ancient civilizations, empires, kings and queens, wars and battles, revolutions and "
        "historical events. Centuries ago, old cities, castles, archaeology, historians and the stories of "
        "people who lived long ago.",
    ),
    Category(
        "kids_and_family",
        "Kids & Family",
        "Parenting, children, babies, toddlers and teenagers, family life, raising kids, bedtime stories "
        "and fairy tales for children, games and songs for kids, school days and advice for mothers and "
        "fathers.",
    ),
    Category(
        "music",
        "Music",
        "Songs, albums, bands, singers and musicians. Guitar, piano, drums, concerts, tours, recording in a "
        "studio, writing lyrics and melodies, rock, pop, jazz, hip hop and classical music, and interviews "
        "with artists about their records.",
    ),
    Category(
        "news_and_politics",
        "News & Politics",
        "Current events and daily news, politics, government, elections, voters, presidents, prime "
        "ministers, parliament and congress, laws and policy, political parties, campaigns, international "
        "relations, diplomacy and world affairs.",
    ),
    Category(
        "religion_and_spirituality",
        "Religion & Spirituality",
        "Faith, God, prayer, church, the Bible, Christianity, Islam, Judaism, Buddhism and Hinduism. "
        "Spiritual practice, meditation, belief, the soul, worship, sermons, scripture and the meaning "
        "of life.",
    ),
    Category(
        "science",
        "Science",
        "Scientists and research: physics, chemistry, biology, astronomy and space, the sun and the moon, "
        "planets, stars, galaxies and black holes, gravity, experiments, discoveries, evolution, animals, "
        "the climate and how the natural world works.",
    ),
    Category(
        "society_and_culture",
        "Society & Culture",
        "People, relationships, identity, communities and everyday life. Personal stories, philosophy, "
        "social issues, traditions, customs and culture, conversations about love, friendship, work and "
        "how we live together.",
    ),
    Category(
        "sports",
        "Sports",
        "Sports games and matches: football, soccer, basketball, baseball, tennis, golf and the Olympics. "
        "Players, teams, coaches, goals, scores, leagues, tournaments, championships, fans in the stadium "
        "and who won or lost.",
    ),
    Category(
        "technology",
        "Technology",
        "Computers, software, the internet, smartphones, apps, programming and code, artificial "
        "intelligence, data, gadgets, tech companies, engineers, cyber security, the cloud and new "
        "digital devices and products.",
    ),
    Category(
        "true_crime",
        "True Crime",
        "Real crimes and criminal cases: murder, robbery, fraud, kidnapping and missing persons. Police "
        "detectives, investigations, evidence, suspects, victims, trials, courts, juries and prison.",
    ),
    Category(
        "tv_and_film",
        "TV & Film",
        "Movies, films, television shows and series, actors, actresses, directors, cinema and Hollywood. "
        "Reviews of episodes, seasons, plots and characters, streaming, trailers, awards and behind the "
        "scenes.",
    ),
    Category(
        "travel_and_places",
        "Travel & Places",
        "Travel and trips, vacations and holidays, tourists, flights, hotels and beaches. Exploring "
        "countries, cities, islands and mountains, places to visit, sightseeing, backpacking and life in "
        "other cultures abroad.",
    ),
    Category(
        "leisure_and_hobbies",
        "Leisure & Hobbies",
        "Hobbies and pastimes: video games, board games, gardening, crafts, knitting, woodworking, "
        "collecting, fishing, camping, cars and motorcycles, pets and dogs, home improvement and do it "
        "yourself projects.",
    ),
)

CATEGORY_NAMES = {c.id: c.name for c in CATEGORIES}
