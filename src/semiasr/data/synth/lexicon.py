"""Word lists of the synthetic corpus, written for semiasr (not taken from any corpus).

Each tuple is one slot of the text generators in :mod:`semiasr.data.synth.text`. Entries are lower
case, letters and spaces only; the generators upper-case them. Lists are grouped by the domain that
uses them, so that the target domain (device commands, digits, addresses) says things the source
domain (voice search, dictation) never says.
"""

from __future__ import annotations

# --------------------------------------------------------------------------------------------------
# Shared: numbers and calendar words (used by several generators)
# --------------------------------------------------------------------------------------------------
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS = (
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december",
)  # fmt: skip

# --------------------------------------------------------------------------------------------------
# Source domain: voice-search queries
# --------------------------------------------------------------------------------------------------
CITIES = (
    "boston", "chicago", "denver", "seattle", "portland", "atlanta", "houston", "dallas", "austin",
    "phoenix", "miami", "orlando", "detroit", "cleveland", "pittsburgh", "baltimore",
    "philadelphia", "nashville", "memphis", "milwaukee", "minneapolis", "omaha",
    "kansas city", "saint louis",
    "salt lake city", "las vegas", "san diego", "san francisco", "los angeles", "sacramento",
    "honolulu", "anchorage", "toronto", "montreal", "vancouver", "london", "paris", "berlin",
    "madrid", "lisbon", "rome", "vienna", "prague", "dublin", "edinburgh", "amsterdam", "brussels",
    "copenhagen", "stockholm", "oslo", "helsinki", "athens", "cairo", "nairobi", "mumbai", "delhi",
    "tokyo", "osaka", "seoul", "singapore", "sydney", "melbourne", "auckland", "lima", "santiago",
    "havana", "warsaw", "budapest", "istanbul", "marrakesh",
)  # fmt: skip
WHEN = (
    "today", "tomorrow", "tonight", "this weekend", "next week", "this morning", "this afternoon",
    "this evening", "right now", "on monday", "on tuesday", "on wednesday", "on thursday",
    "on friday", "on saturday", "on sunday",
)  # fmt: skip
DISHES = (
    "lasagna", "pancakes", "banana bread", "chicken curry", "beef stew", "lentil soup",
    "fried rice", "apple pie", "carrot cake", "pumpkin soup", "mushroom risotto", "fish tacos",
    "vegetable stir fry", "chocolate brownies", "potato salad", "french toast", "tomato sauce",
    "garlic bread", "chili", "meatballs", "omelette", "paella", "dumplings", "noodle soup",
    "roast chicken", "grilled salmon", "shepherds pie", "pizza dough", "sourdough bread",
    "blueberry muffins", "oatmeal cookies", "cheesecake", "guacamole", "hummus", "falafel",
    "ramen", "burritos", "quiche", "coleslaw", "gingerbread", "scrambled eggs", "waffles",
    "spaghetti", "macaroni and cheese", "pot roast", "pulled pork", "corn bread", "lemonade",
    "smoothie", "granola",
)  # fmt: skip
INGREDIENTS = (
    "spinach", "chickpeas", "tofu", "zucchini", "eggplant", "cauliflower", "broccoli", "quinoa",
    "coconut milk", "cinnamon", "ginger", "honey", "almonds", "walnuts", "yogurt", "buttermilk",
    "cheddar", "parmesan", "basil", "cilantro", "rosemary", "thyme", "paprika", "cumin",
    "turmeric", "oregano", "avocado", "sweet potatoes", "bell peppers", "leftover rice", "oats",
    "peanut butter", "maple syrup", "lemon", "lime", "shrimp", "turkey", "bacon", "sausage",
    "mozzarella",
)  # fmt: skip
PRODUCTS = (
    "laptop", "headphones", "running shoes", "winter jacket", "backpack", "office chair",
    "standing desk", "electric toothbrush", "hair dryer", "blender", "rice cooker",
    "air fryer", "slow cooker", "bicycle", "tent", "sleeping bag", "hiking boots", "umbrella",
    "sunglasses", "wristwatch", "tablet", "keyboard", "monitor", "printer", "digital camera",
    "mattress", "pillow", "sofa", "bookshelf", "wardrobe", "lawn mower", "pressure washer",
    "cordless drill", "vacuum cleaner", "car seat", "stroller", "yoga mat", "dumbbells",
    "treadmill", "guitar", "piano", "violin", "microphone", "water bottle", "suitcase",
    "raincoat", "scarf", "gloves", "sweater", "jeans",
)  # fmt: skip
PRODUCT_ADJ = (
    "cheap", "lightweight", "waterproof", "wireless", "portable", "quiet", "durable", "foldable",
    "affordable", "professional", "second hand", "refurbished", "comfortable", "compact",
    "ergonomic", "rechargeable",
)  # fmt: skip
ANIMALS = (
    "cheetah", "elephant", "giraffe", "penguin", "dolphin", "octopus", "kangaroo", "koala",
    "panda", "tiger", "lion", "zebra", "hippo", "rhino", "gorilla", "chimpanzee", "wolf",
    "fox", "beaver", "otter", "squirrel", "hedgehog", "rabbit", "turtle", "tortoise", "crocodile",
    "alligator", "eagle", "owl", "parrot", "hummingbird", "flamingo", "pelican", "ostrich",
    "shark", "whale", "jellyfish", "bumblebee", "butterfly", "spider", "snail", "frog",
    "salamander", "camel", "llama", "moose", "reindeer", "polar bear", "seal", "walrus",
)  # fmt: skip
HOWTO = (
    "fix a leaking tap", "change a flat tyre", "tie a tie", "boil an egg", "plant tomatoes",
    "unclog a drain", "paint a ceiling", "clean an oven", "learn to swim", "write a resume",
    "train a puppy", "sharpen a knife", "fold a fitted sheet", "remove a stain", "bake bread",
    "start a compost heap", "jump start a car", "patch a wall", "hang a picture",
    "prune roses", "knit a scarf", "meditate", "improve my handwriting", "make cold brew coffee",
    "grow herbs indoors", "save money on groceries", "stop snoring", "fall asleep faster",
    "tune a guitar", "build a birdhouse", "wrap a present", "iron a shirt", "descale a kettle",
    "defrost a freezer", "reset a router", "back up my photos", "learn sign language",
    "read faster", "draw a horse", "solve a rubik cube",
)  # fmt: skip
DEFINE_WORDS = (
    "serendipity", "ubiquitous", "ephemeral", "melancholy", "pragmatic", "nostalgia",
    "eloquent", "ambiguous", "resilient", "meticulous", "benevolent", "candid", "frugal",
    "gregarious", "impeccable", "lucid", "notorious", "obsolete", "plausible", "quaint",
    "reluctant", "skeptical", "tenacious", "vivid", "whimsical", "zealous", "arbitrary",
    "coherent", "diligent", "empathy", "paradox", "hypothesis", "metaphor", "irony",
    "photosynthesis", "inflation", "democracy", "gravity", "evolution", "algorithm",
)  # fmt: skip
LANGUAGES = (
    "spanish", "french", "german", "italian", "portuguese", "japanese", "chinese", "korean",
    "arabic", "hindi", "russian", "dutch", "swedish", "greek", "polish", "turkish", "welsh",
    "swahili",
)  # fmt: skip
TOPICS = (
    "space exploration", "climate change", "electric cars", "renewable energy", "the economy",
    "the election", "the olympics", "medicine", "vaccines", "volcanoes", "earthquakes",
    "dinosaurs", "black holes", "the moon", "mars", "oceans", "rainforests", "robots",
    "artificial intelligence", "archaeology", "ancient egypt", "the roman empire", "astronomy",
    "chemistry", "physics", "biology", "geology", "mathematics", "philosophy", "architecture",
)  # fmt: skip
ILLNESSES = (
    "the flu", "a cold", "measles", "chickenpox", "migraine", "asthma", "diabetes",
    "food poisoning", "hay fever", "tonsillitis", "bronchitis", "anemia", "sunburn",
    "dehydration", "insomnia", "a sprained ankle", "a concussion", "an ear infection",
)  # fmt: skip
UNITS = (
    "cups", "ounces", "grams", "pounds", "kilograms", "miles", "kilometers", "teaspoons",
    "tablespoons", "liters", "gallons", "inches", "feet", "meters", "yards", "pints", "acres",
    "centimeters",
)  # fmt: skip
UNITS_SINGULAR = (
    "cup", "ounce", "pound", "kilogram", "mile", "kilometer", "gallon", "liter", "foot", "meter",
    "yard", "pint", "acre", "tablespoon",
)  # fmt: skip
SPORTS = (
    "football", "baseball", "basketball", "hockey", "soccer", "tennis", "golf", "cricket",
    "rugby", "volleyball", "badminton", "cycling", "skiing", "snowboarding", "swimming",
    "rowing", "sailing", "surfing", "climbing", "marathon running",
)  # fmt: skip
FILM_GENRES = (
    "comedy", "horror", "science fiction", "romance", "action", "animated", "mystery",
    "fantasy", "documentary", "western", "thriller", "musical", "war", "family", "detective",
)  # fmt: skip
DECADES = ("fifties", "sixties", "seventies", "eighties", "nineties")
INVENTIONS = (
    "telephone", "light bulb", "printing press", "airplane", "bicycle", "internet",
    "steam engine", "television", "radio", "microwave oven", "refrigerator", "telescope",
    "compass", "paper clip", "zipper", "sewing machine", "typewriter", "calculator",
    "thermometer", "parachute",
)  # fmt: skip
LANDMARKS = (
    "the eiffel tower", "mount everest", "the statue of liberty", "big ben",
    "the golden gate bridge", "the empire state building", "the great wall", "niagara falls",
    "the grand canyon", "stonehenge", "the colosseum", "mount kilimanjaro", "the pyramids",
    "the leaning tower", "mount fuji", "the amazon river",
)  # fmt: skip
BUSINESSES = (
    "pharmacy", "bakery", "post office", "hardware store", "bookstore", "dentist", "vet",
    "gas station", "car wash", "laundromat", "barber", "hair salon", "florist", "butcher",
    "dry cleaner", "pizza place", "coffee shop", "sushi restaurant", "vegan restaurant",
    "farmers market", "swimming pool", "gym", "museum", "art gallery", "cinema", "library",
    "playground", "urgent care", "bank", "supermarket",
)  # fmt: skip
PEOPLE_ROLES = (
    "an electrician", "a plumber", "a carpenter", "a nurse", "a pilot", "a teacher",
    "a firefighter", "a lawyer", "an architect", "a pharmacist", "a paramedic", "a chef",
    "a journalist", "a librarian", "a veterinarian", "an accountant", "a mechanic", "a baker",
)  # fmt: skip

# --------------------------------------------------------------------------------------------------
# Source domain: dictated messages and sentences
# --------------------------------------------------------------------------------------------------
FIRST_NAMES = (
    "alice", "oliver", "sophia", "liam", "emma", "noah", "ava", "ethan", "mia", "lucas",
    "isabella", "mason", "charlotte", "logan", "amelia", "james", "harper", "benjamin",
    "evelyn", "henry", "abigail", "samuel", "ella", "daniel", "scarlett", "matthew", "grace",
    "joseph", "chloe", "david", "victoria", "gabriel", "riley", "anthony", "aria", "isaac",
    "lily", "dylan", "zoey", "andrew", "nora", "joshua", "hannah", "christopher", "layla",
    "nathan", "stella", "thomas", "lucy", "caleb", "maya", "ryan", "naomi", "aaron", "ruby",
    "adrian", "clara", "julian", "eva", "miles",
)  # fmt: skip
RELATIVES = (
    "my sister", "my brother", "my mother", "my father", "my aunt", "my uncle", "my cousin",
    "my neighbour", "my boss", "my friend", "my teacher", "my grandmother", "my grandfather",
    "my colleague", "my roommate", "my landlord", "the manager", "the doctor",
)  # fmt: skip
VERBS_PAST = (
    "found", "lost", "bought", "sold", "borrowed", "returned", "painted", "fixed", "broke",
    "cleaned", "washed", "moved", "carried", "dropped", "opened", "closed", "packed",
    "wrapped", "mended", "polished", "ordered", "delivered", "forgot", "remembered", "liked",
    "loved", "hated", "noticed", "described", "photographed", "measured", "weighed",
    "collected", "hid", "shared", "kept", "brought", "left", "sent", "received", "finished",
    "started", "watched", "read", "wrote", "cooked", "baked", "tasted", "planted", "picked",
    "sorted", "counted", "folded", "hung", "built", "designed", "sketched", "printed",
    "signed", "checked", "tested", "repaired", "replaced", "decorated", "rearranged",
    "donated", "recycled", "scrubbed", "dusted", "stacked",
)  # fmt: skip
NOUNS = (
    "book", "letter", "parcel", "table", "chair", "window", "door", "basket", "bottle", "box",
    "bag", "blanket", "jacket", "coat", "hat", "shoe", "boot", "bicycle", "car", "bus",
    "train", "ticket", "map", "notebook", "pencil", "pen", "envelope", "photograph", "painting",
    "mirror", "clock", "candle", "vase", "plate", "bowl", "spoon", "fork", "knife", "cup",
    "mug", "teapot", "saucepan", "frying pan", "tray", "towel", "curtain", "rug", "carpet",
    "cushion", "shelf", "drawer", "cupboard", "key", "wallet", "purse", "phone", "charger",
    "computer", "radio", "camera", "ladder", "hammer", "screwdriver", "shovel", "rake",
    "bucket", "hose", "flowerpot", "garden", "fence", "gate", "roof", "chimney", "staircase",
    "balcony", "cake", "sandwich", "salad", "soup", "cheese", "bread", "apple", "orange",
    "banana", "pear", "peach", "plum", "cherry", "grape", "melon", "strawberry", "carrot",
    "potato", "onion", "cabbage", "pumpkin", "recipe", "invitation", "report", "contract",
    "receipt", "invoice", "schedule", "presentation", "spreadsheet", "magazine", "newspaper",
    "novel", "poem", "song", "story", "puzzle", "game", "toy", "kite", "ball", "doll", "puppet",
    "guitar", "drum", "trumpet", "violin", "necklace", "bracelet", "ring", "watch", "scarf",
    "glove", "sock", "sweater", "dress", "shirt", "tie", "belt", "suitcase", "backpack",
    "tent", "lantern", "compass", "torch", "blanket", "quilt", "pillow", "sofa", "armchair",
    "desk", "lamp", "bench", "statue", "fountain",
)  # fmt: skip
ADJECTIVES = (
    "old", "new", "small", "large", "tiny", "huge", "heavy", "light", "bright", "dark",
    "red", "blue", "green", "yellow", "purple", "brown", "black", "white", "grey", "pink",
    "golden", "silver", "wooden", "plastic", "metal", "glass", "paper", "woollen", "cotton",
    "leather", "shiny", "dusty", "dirty", "clean", "broken", "cracked", "empty", "full",
    "warm", "cold", "soft", "hard", "smooth", "rough", "round", "square", "narrow", "wide",
    "tall", "short", "long", "strange", "beautiful", "ugly", "lovely", "precious", "expensive",
    "cheap", "fancy", "simple", "plain", "striped", "spotted", "colourful", "antique",
    "modern", "elegant", "clumsy", "famous", "secret", "mysterious", "ordinary", "unusual",
    "favourite", "lucky", "useful", "useless", "fragile", "sturdy", "delicious", "fresh",
    "ripe", "stale", "sweet", "sour", "bitter", "salty", "spicy", "crunchy", "fluffy",
    "sticky", "wet", "dry", "noisy", "silent", "gentle", "enormous", "miniature", "handmade",
)  # fmt: skip
PREPOSITIONS = (
    "in", "on", "under", "behind", "beside", "near", "inside", "outside", "next to",
    "in front of", "on top of", "across from", "between", "above", "below",
)  # fmt: skip
PLACES = (
    "kitchen", "library", "office", "station", "airport", "harbour", "market", "school",
    "hospital", "museum", "theatre", "church", "castle", "cottage", "farm", "barn", "forest",
    "beach", "river", "lake", "mountain", "valley", "village", "town hall", "park", "zoo",
    "stadium", "hotel", "restaurant", "cafe", "bakery", "garage", "shed", "attic", "cellar",
    "hallway", "classroom", "laboratory", "warehouse", "factory", "studio", "gallery",
    "bridge", "tunnel", "island", "desert", "meadow", "orchard", "vineyard", "greenhouse",
)  # fmt: skip
EVENTS = (
    "meeting", "party", "wedding", "birthday dinner", "concert", "football match", "lecture",
    "interview", "appointment", "rehearsal", "picnic", "barbecue", "conference", "workshop",
    "book club", "dentist appointment", "parent evening", "yoga class", "choir practice",
    "team lunch", "graduation", "funeral", "baby shower", "housewarming", "exhibition",
    "school play", "swimming lesson", "piano lesson", "job fair", "charity run",
)  # fmt: skip
TIME_PHRASES = (
    "in ten minutes", "in half an hour", "after lunch", "before dinner", "this afternoon",
    "tomorrow morning", "tomorrow evening", "later tonight", "next weekend", "on friday",
    "at noon", "at midnight", "in a few days", "by the end of the week", "early next month",
    "around sunset", "first thing in the morning", "as soon as possible", "after the holidays",
    "before the weekend",
)  # fmt: skip
ADVERBS = (
    "yesterday", "quickly", "slowly", "carefully", "finally", "suddenly", "happily", "quietly",
    "secretly", "proudly", "accidentally", "eventually", "recently", "already", "again",
    "gladly", "patiently", "nervously", "gently", "completely",
)  # fmt: skip
FEELINGS = (
    "happy", "tired", "excited", "worried", "grateful", "sorry", "proud", "nervous", "relieved",
    "delighted", "disappointed", "surprised", "exhausted", "curious", "thrilled", "confused",
)  # fmt: skip
TODOS = (
    "buy milk", "water the plants", "feed the cat", "walk the dog", "pay the rent",
    "return the library books", "book a haircut", "renew my passport", "call the plumber",
    "pick up the dry cleaning", "send the invoice", "finish the report", "clean the gutters",
    "take out the rubbish", "bring an umbrella", "charge the camera", "check the post",
    "buy a birthday card", "back up the laptop", "order more printer paper",
    "phone the insurance company", "collect the children from school", "change the bed sheets",
    "defrost the chicken", "repot the cactus", "answer the emails", "practise the speech",
    "print the boarding passes", "wash the car", "sharpen the pencils",
)  # fmt: skip
PRONOUNS = ("i", "we", "they", "she", "he", "you")

# --------------------------------------------------------------------------------------------------
# Target domain: device commands
# --------------------------------------------------------------------------------------------------
ROOMS = (
    "kitchen", "living room", "bedroom", "bathroom", "hallway", "garage", "basement", "attic",
    "porch", "patio", "nursery", "study", "dining room", "guest room", "laundry room", "pantry",
    "playroom", "sunroom", "utility room", "upstairs", "downstairs", "front yard", "back yard",
    "driveway", "workshop", "master bedroom", "loft", "conservatory", "den", "entrance",
)  # fmt: skip
DEVICES = (
    "lights", "lamp", "fan", "heater", "television", "speaker", "projector", "dehumidifier",
    "humidifier", "air purifier", "kettle", "coffee maker", "toaster", "radiator",
    "ceiling fan", "floor lamp", "desk lamp", "porch light", "night light", "fairy lights",
    "air conditioner", "sound bar", "smart plug", "heated towel rail", "electric blanket",
    "water heater", "sprinklers", "fireplace", "aquarium pump", "extractor fan", "strip lights",
    "reading light", "subwoofer", "soundbar", "dimmer", "thermostat display",
)  # fmt: skip
APPLIANCES = (
    "dishwasher", "washing machine", "tumble dryer", "oven", "microwave", "robot vacuum",
    "bread maker", "slow cooker", "air fryer", "pressure cooker", "ice maker", "espresso machine",
    "lawnmower", "pool pump", "heat pump", "boiler", "freezer",
)  # fmt: skip
MODES = (
    "eco", "turbo", "quiet", "sleep", "boost", "delicate", "rinse", "spin", "defrost", "grill",
    "convection", "fan assisted", "holiday", "frost protection", "child lock", "auto",
    "manual", "intensive", "express", "steam",
)  # fmt: skip
APPS = (
    "calendar", "camera", "calculator", "alarm clock", "maps", "weather app", "music player",
    "podcasts", "email", "messages", "contacts", "photo gallery", "notes", "settings",
    "wallet", "web browser", "voice recorder", "stopwatch", "fitness tracker", "banking app",
    "audiobooks", "radio app", "translator", "compass app", "file manager", "video player",
    "shopping list", "reminders", "clock", "news app",
)  # fmt: skip
MUSIC_GENRES = (
    "jazz", "blues", "rock", "pop", "folk", "reggae", "soul", "funk", "disco", "techno",
    "classical", "country", "gospel", "ambient", "lullabies", "salsa", "hip hop", "bluegrass",
    "opera", "punk", "metal", "swing", "bossa nova", "lofi", "synthwave", "piano", "acoustic",
    "dance", "chillout", "rhythm and blues",
)  # fmt: skip
COLOURS = (
    "red", "warm white", "cool white", "daylight", "amber", "orange", "yellow", "lime",
    "green", "teal", "turquoise", "cyan", "sky blue", "blue", "indigo", "violet", "purple",
    "magenta", "pink", "coral", "peach", "lavender", "mint", "crimson", "candlelight",
)  # fmt: skip
DOORS = (
    "front door", "back door", "garage door", "side gate", "patio door", "cat flap",
    "garden gate", "shed door", "basement door", "french windows",
)  # fmt: skip
COVERINGS = ("blinds", "curtains", "shutters", "skylight", "awning", "roller shades")
CONTACTS = (
    "mum", "dad", "grandma", "grandpa", "auntie", "the babysitter", "the office", "reception",
    "the vet", "the garage", "kevin", "priya", "fatima", "tomasz", "giovanni", "mei",
    "oluwaseun", "siobhan", "rajesh", "ingrid", "pablo", "yusuf", "keiko", "dmitri", "aisha",
    "bjorn", "chidi", "leilani", "marguerite", "xavier",
)  # fmt: skip
WORKOUTS = (
    "running", "cycling", "rowing", "walking", "stretching", "pilates", "interval",
    "strength", "cardio", "core", "elliptical", "stair climber",
)  # fmt: skip
TOGGLES = (
    "do not disturb", "airplane mode", "bluetooth", "wifi", "the flashlight", "night mode",
    "battery saver", "location services", "hotspot", "dark mode", "subtitles", "captions",
    "guest mode", "vacation mode", "motion sensor", "doorbell chime",
)  # fmt: skip
MEDIA_ACTIONS = (
    "pause", "resume", "stop", "skip", "next track", "previous track", "shuffle", "repeat",
    "rewind", "fast forward", "mute", "unmute", "volume up", "volume down", "louder", "quieter",
)  # fmt: skip
TIMER_UNITS = ("seconds", "minutes", "hours")
SHOPPING_ITEMS = (
    "batteries", "light bulbs", "dish soap", "laundry detergent", "paper towels",
    "toilet roll", "bin bags", "kitchen foil", "cling film", "sponges", "bleach",
    "fabric softener", "toothpaste", "shampoo", "cat litter", "dog food", "birdseed",
    "matches", "candles", "fuse", "extension lead", "duct tape", "superglue", "sandpaper",
)  # fmt: skip
CAMERAS = ("doorbell", "driveway", "nursery", "garden", "garage", "front porch", "side alley")

# --------------------------------------------------------------------------------------------------
# Target domain: digits, codes and addresses
# --------------------------------------------------------------------------------------------------
NATO = (
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
    "uniform", "victor", "whiskey", "xray", "yankee", "zulu",
)  # fmt: skip
STREET_NAMES = (
    "oak", "maple", "cedar", "willow", "birch", "elm", "pine", "chestnut", "juniper",
    "magnolia", "walnut", "hickory", "sycamore", "poplar", "laurel", "hawthorn", "aspen",
    "cypress", "spruce", "alder", "linden", "rowan", "hazel", "holly", "ivy", "primrose",
    "bluebell", "heather", "foxglove", "clover", "washington", "lincoln", "jefferson",
    "franklin", "madison", "adams", "jackson", "monroe", "hamilton", "harrison", "garfield",
    "kennedy", "roosevelt", "church", "mill", "bridge", "river", "lake", "hill", "spring",
    "orchard", "harbour", "ridge", "summit", "canyon", "prairie", "highland", "lowland",
    "brook", "fern", "thistle", "sunflower", "riverbend", "stonegate", "kingsway", "queens",
    "victoria", "albert", "wellington", "nelson", "windsor", "clarendon", "ashford",
    "beechwood", "briarwood", "cherrywood", "elmwood", "oakwood", "pinecrest", "westfield",
    "northgate", "southgate", "eastbrook", "fairfield", "greenfield", "lakeview", "hillcrest",
    "meadowbrook", "rosewood", "silverbirch", "copperfield", "ironbridge", "goldcrest",
    "larkspur", "kestrel", "falcon", "heron", "kingfisher", "sparrow", "robin",
)  # fmt: skip
STREET_TYPES = (
    "street", "avenue", "road", "lane", "drive", "court", "boulevard", "place", "terrace", "way",
    "circle", "parkway", "highway", "trail", "crescent", "square", "close", "grove", "row",
    "mews",
)  # fmt: skip
TOWNS = (
    "springfield", "riverside", "fairview", "greenville", "georgetown", "salem", "ashland",
    "oxford", "milton", "newport", "bristol", "dover", "kingston", "lexington", "burlington",
    "arlington", "clayton", "dayton", "hudson", "marion", "chester", "winchester", "manchester",
    "jamestown", "lancaster", "auburn", "canton", "florence", "oakland", "shelbyville",
    "brookfield", "middletown", "centerville", "pleasant valley", "cedar falls", "eagle rock",
    "maple grove", "rock springs", "bay city", "silver lake", "pine bluff", "harmony",
    "liberty", "concord", "plymouth", "hanover", "camden", "norwich", "ipswich", "stratford",
    "bedford", "guildford", "harrogate", "aberdeen", "inverness", "swansea", "galway",
    "kilkenny", "durham", "carlisle",
)  # fmt: skip
STATES = (
    "alabama", "alaska", "arizona", "arkansas", "california", "colorado", "connecticut",
    "delaware", "florida", "georgia", "hawaii", "idaho", "illinois", "indiana", "iowa",
    "kansas", "kentucky", "louisiana", "maine", "maryland", "massachusetts", "michigan",
    "minnesota", "mississippi", "missouri", "montana", "nebraska", "nevada", "new hampshire",
    "new jersey", "new mexico", "new york", "north carolina", "north dakota", "ohio",
    "oklahoma", "oregon", "pennsylvania", "rhode island", "south carolina", "south dakota",
    "tennessee", "texas", "utah", "vermont", "virginia", "west virginia", "wisconsin",
    "wyoming",
)  # fmt: skip
UNIT_KINDS = ("apartment", "suite", "unit", "flat", "floor", "building")
CODE_KINDS = (
    "pin", "passcode", "verification code", "confirmation code", "booking reference",
    "security code", "tracking number", "order number", "account number", "policy number",
    "member number", "serial number", "reference number", "voucher code", "gate code",
)  # fmt: skip
CURRENCY = ("dollars", "pounds", "euros")
