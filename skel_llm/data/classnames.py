"""Class names of every dataset we train or evaluate on (index = 0-based label).

Sources (facts only): NTU RGB+D A1-A120 as listed in the dataset README
(github shahroudy/NTURGB-D; apostrophes written as ASCII "'"); PKU-MMD's 51
actions in the order of its Actions.xlsx (alphabetical, 1-based ids in the
label files); NW-UCLA's 10 actions (ids a01-a06, a08, a09, a11, a12 in the
file names) from the dataset page; synthetic actions from
`skel_llm.synthetic`.
"""

from __future__ import annotations

from skel_llm import synthetic

NTU120_CLASSES: tuple[str, ...] = (
    # A1-A60: NTU RGB+D 60.
    "drink water", "eat meal/snack", "brushing teeth", "brushing hair", "drop", "pickup", "throw",
    "sitting down", "standing up (from sitting position)", "clapping", "reading", "writing",
    "tear up paper", "wear jacket", "take off jacket", "wear a shoe", "take off a shoe",
    "wear on glasses", "take off glasses", "put on a hat/cap", "take off a hat/cap", "cheer up",
    "hand waving", "kicking something", "reach into pocket", "hopping (one foot jumping)",
    "jump up", "make a phone call/answer phone", "playing with phone/tablet",
    "typing on a keyboard", "pointing to something with finger", "taking a selfie",
    "check time (from watch)", "rub two hands together", "nod head/bow", "shake head",
    "wipe face", "salute", "put the palms together", "cross hands in front (say stop)",
    "sneeze/cough", "staggering", "falling", "touch head (headache)",
    "touch chest (stomachache/heart pain)", "touch back (backache)", "touch neck (neckache)",
    "nausea or vomiting condition", "use a fan (with hand or paper)/feeling warm",
    "punching/slapping other person", "kicking other person", "pushing other person",
    "pat on back of other person", "point finger at the other person", "hugging other person",
    "giving something to other person", "touch other person's pocket", "handshaking",
    "walking towards each other", "walking apart from each other",
    # A61-A120: added by NTU RGB+D 120.
    "put on headphone", "take off headphone", "shoot at the basket", "bounce ball",
    "tennis bat swing", "juggling table tennis balls", "hush (quite)", "flick hair", "thumb up",
    "thumb down", "make ok sign", "make victory sign", "staple book", "counting money",
    "cutting nails", "cutting paper (using scissors)", "snapping fingers", "open bottle",
    "sniff (smell)", "squat down", "toss a coin", "fold paper", "ball up paper",
    "play magic cube", "apply cream on face", "apply cream on hand back", "put on bag",
    "take off bag", "put something into a bag", "take something out of a bag", "open a box",
    "move heavy objects", "shake fist", "throw up cap/hat", "hands up (both hands)",
    "cross arms", "arm circles", "arm swings", "running on the spot",
    "butt kicks (kick backward)", "cross toe touch", "side kick", "yawn", "stretch oneself",
    "blow nose", "hit other person with something", "wield knife towards other person",
    "knock over other person (hit with body)", "grab other person's stuff",
    "shoot at other person with a gun", "step on foot", "high-five", "cheers and drink",
    "carry something with other person", "take a photo of other person",
    "follow other person", "whisper in other person's ear",
    "exchange things with other person", "support somebody with hand",
    "finger-guessing game (playing rock-paper-scissors)",
)
NTU60_CLASSES: tuple[str, ...] = NTU120_CLASSES[:60]
# The SkeletonLLM authors' short wording of the same 120 classes (label order), the keys of their
# released confusable-class lists (ntu120_similar_actions.json); prompts that use their
# Disc-FT negatives name the classes this way.
NTU120_AUTHOR_NAMES: tuple[str, ...] = (
    "drink water", "eat food", "brush teeth", "brush hair", "drop something", "pick up", "throw",
    "sit down", "stand up", "clapping", "reading", "writing", "tear up paper", "put on jacket",
    "take off jacket", "put on shoe", "take off shoe", "put on glasses", "take off glasses",
    "put on hat/cap", "take off hat/cap", "cheer (raise arms)", "hand waving",
    "kicking the air/something", "reach into pocket", "hopping", "jump up", "phone call",
    "play with phone/tablet", "type on keyboard", "point at something/directions", "take a selfie",
    "check time (from watch)", "rub two hands", "bow (bend forward)", "shake head", "wipe face",
    "salute", "pray with hands together", "cross hands in front", "sneezing/cough", "staggering",
    "falling down", "headache", "chest pain", "back pain", "neck pain", "nausea/vomiting",
    "fan self", "punch/slap someone", "kicking someone", "pushing someone",
    "pat someone on the back", "point at someone", "hug each other", "giving object",
    "touch someone's pocket", "shaking hands", "walking towards each other",
    "walking apart from each other", "put on headphones", "take off headphone",
    "throw ball (shoot a basket)", "bounce ball", "swing paddle", "juggle table tennis ball",
    "hush", "touch hair", "give thumbs up", "give thumbs down", "make ok sign",
    "make victory sign", "staple papers with a small stapler", "counting money", "cutting nails",
    "cutting paper", "snap fingers", "open a bottle", "sniff/smell", "squat down", "toss a coin",
    "fold paper", "ball up paper", "play with a rubik's cube", "apply cream on face",
    "apply cream on hand", "put on bag", "take off bag", "put object into bag",
    "take object out of bag", "open a box", "move heavy objects", "shake fist", "throw up hat/cap",
    "capitulate", "cross arms", "spin arms in circles", "arm swings", "run on the spot",
    "butt kicks", "touch toes repeatedly", "side kick", "yawn", "stretch oneself", "blow nose",
    "hit someone with an object", "swing a knife at someone", "knock into someone",
    "grab something from someone", "point a gun at someone", "step on someone's foot", "high-five",
    "cheers and drink", "carry objects together", "take a photo", "follow someone",
    "whisper to someone", "exchange objects", "support someone", "rock-paper-scissors",
)
NTU60_AUTHOR_NAMES: tuple[str, ...] = NTU120_AUTHOR_NAMES[:60]
# Two-person interactions: A50-A60 and A106-A120 (0-based labels).
NTU_TWO_PERSON_LABELS: tuple[int, ...] = tuple(range(49, 60)) + tuple(range(105, 120))

PKU_MMD_CLASSES: tuple[str, ...] = (
    "bow", "brushing hair", "brushing teeth", "check time (from watch)", "cheer up", "clapping",
    "cross hands in front (say stop)", "drink water", "drop", "eat meal/snack", "falling",
    "giving something to other person", "hand waving", "handshaking",
    "hopping (one foot jumping)", "hugging other person", "jump up", "kicking other person",
    "kicking something", "make a phone call/answer phone", "pat on back of other person",
    "pickup", "playing with phone/tablet", "point finger at the other person",
    "pointing to something with finger", "punching/slapping other person",
    "pushing other person", "put on a hat/cap", "put something inside pocket", "reading",
    "rub two hands together", "salute", "sitting down", "standing up", "take off a hat/cap",
    "take off glasses", "take off jacket", "take out something from pocket", "taking a selfie",
    "tear up paper", "throw", "touch back (backache)", "touch chest (stomachache/heart pain)",
    "touch head (headache)", "touch neck (neckache)", "typing on a keyboard",
    "use a fan (with hand or paper)/feeling warm", "wear jacket", "wear on glasses", "wipe face",
    "writing",
)

# NW-UCLA: label index -> (action id in the file names, name).
NW_UCLA_ACTION_IDS: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 8, 9, 11, 12)
NW_UCLA_CLASSES: tuple[str, ...] = (
    "pick up with one hand", "pick up with two hands", "drop trash", "walk around", "sit down",
    "stand up", "donning", "doffing", "throw", "carry",
)

_BY_DATASET = {
    "ntu60": NTU60_CLASSES,
    "ntu120": NTU120_CLASSES,
    "ntu60_author_names": NTU60_AUTHOR_NAMES,
    "ntu120_author_names": NTU120_AUTHOR_NAMES,
    "pku_mmd": PKU_MMD_CLASSES,
    "nw_ucla": NW_UCLA_CLASSES,
    "synthetic": synthetic.CLASS_NAMES,
}


def datasets() -> list[str]:
  """Dataset keys accepted by `class_names`."""
  return sorted(_BY_DATASET)


def class_names(dataset: str) -> tuple[str, ...]:
  """Names of a dataset's classes, index = 0-based label."""
  try:
    return _BY_DATASET[dataset]
  except KeyError:
    raise KeyError(f"unknown dataset {dataset!r}; known: {datasets()}") from None


def nw_ucla_label(action_id: int) -> int:
  """0-based NW-UCLA label of an action id from a file name (`a11_...` -> 8)."""
  try:
    return NW_UCLA_ACTION_IDS.index(action_id)
  except ValueError:
    raise ValueError(f"NW-UCLA action id {action_id} is not one of {NW_UCLA_ACTION_IDS}") from None
