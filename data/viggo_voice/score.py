"""The scorer of the `viggo_voice` task: does a sentence say what its meaning representation says, in
ViGGO's voice?

`score(prediction, reference, row)` gets the model's sentence, the gold sentence and the row, whose
prompt holds the meaning representation (MR), e.g.
`give_opinion(name[Little Nightmares], rating[good], player_perspective[side view])`:
- `slots`: the share of the MR's attribute values the sentence realizes (a number per item);
  `all_slots`: all of them. A value is realized when its words appear (case, hyphens and word
  endings ignored: "platformer" ~ "platforming"; lists such as platforms and genres count item by
  item); yes/no attributes (multiplayer, Steam, Linux, Mac) and empty values by their keyword. The
  rating (poor ... excellent) is not checked: speakers word opinions too freely for a word list.
- `voice`: the sentence is one conversational turn as ViGGO's speakers write it: at most 60 words
  on one line, no meta text (no "Sure", "Here is", no MR syntax, no quotes around it), a question
  when the dialogue act asks something (request, confirm, suggest, verify_attribute,
  request_explanation, request_attribute), a statement for inform and give_opinion.

Measured on the gold sentences (first reference per meaning representation): validation (238) voice
99.6 %, all_slots 98.3 %, slots 99.7 %; test (359) 99.2, 98.1, 99.6. The scorer is strict, not perfect:
compare models with it, not with 100 %.
"""

import re

QUESTION_ACTS = {"request", "confirm", "suggest", "verify_attribute", "request_explanation", "request_attribute"}
KEYWORDS = {  # yes/no attributes and empty values: the word that shows the attribute is mentioned
    "has_multiplayer": ("multiplayer", "multi-player", "multi player", "co-op", "online", "friends", "others",
                        "single-player", "single player", "solo", "alone", "people"),
    "available_on_steam": ("steam",), "has_linux_release": ("linux",), "has_mac_release": ("mac",),
    "player_perspective": ("perspective", "person", "view", "camera"),
    "genres": ("genre", "type", "kind"), "platforms": ("platform", "console", "system"),
    "release_year": ("year", "release", "came out", "old", "new"), "developer": ("develop", "studio", "made"),
    "esrb": ("esrb", "rating", "rated", "age"),
}
SYNONYMS = {"role-playing": ("rpg", "role playing", "roleplaying"), "pc": ("pc", "computer", "windows"),
            "driving/racing": ("racing", "driving", "racer"), "first person": ("first-person", "fps"),
            "third person": ("third-person",), "bird view": ("top-down", "overhead", "bird", "isometric"),
            "side view": ("side", "platformer", "scroll"), "real-time strategy": ("rts", "real-time", "strategy"),
            "mmorpg": ("mmo", "massively"), "hack-and-slash": ("hack and slash", "hack-and-slash", "hack 'n"),
            "turn-based strategy": ("turn-based", "turn based", "strategy"),
            "vehicular combat": ("vehicular", "vehicle", "car combat")}
META = re.compile(r"^\s*(sure|here is|here's|certainly|output|sentence|answer)\b|\w+\(\w+\[|^[\"'].*[\"']$|\n",
                  re.IGNORECASE)


def parse_mr(mr: str) -> tuple[str, list[tuple[str, str]]]:
    """The dialogue act and (attribute, value) pairs of a meaning representation.

    >>> parse_mr("inform(name[X: Y], genres[action, shooter], has_mac_release[no])")
    ('inform', [('name', 'X: Y'), ('genres', 'action, shooter'), ('has_mac_release', 'no')])
    """
    act, _, body = mr.strip().partition("(")
    return act.strip(), re.findall(r"(\w+)\[([^\]]*)\]", body)


def _norm(text: str) -> str:
    return " " + re.sub(r"[\s\-_/]+", " ", text.lower()) + " "


def realized(attribute: str, value: str, sentence: str) -> bool:
    """Whether a sentence mentions an attribute's value (see the module docstring for the rules)."""
    s = _norm(sentence)
    if value in ("yes", "no", "") or attribute in ("has_multiplayer", "available_on_steam",
                                                  "has_linux_release", "has_mac_release"):
        return any(_norm(k).strip() in s for k in KEYWORDS.get(attribute, (attribute,)))
    if attribute == "rating":
        return True  # not checked (see the module docstring)
    if attribute == "esrb":  # "E 10+ (for Everyone 10 and Older)": the code or the words in brackets
        code, _, words = value.partition("(")
        return code.strip().lower() in sentence.lower() or _norm(words.replace("for ", "").split()[0]).strip() in s
    items = [value] if attribute in ("name", "developer", "exp_release_date", "specifier") else value.split(",")
    return all(_item(item.strip(), s) for item in items if item.strip())


def _item(item: str, s: str) -> bool:
    """One value (or list item) in a normalized sentence: itself, a synonym, or, for one word, its stem
    (the word less its ending: "platformer" ~ "platforming", "fighting" ~ "fighter")."""
    options = (item,) + SYNONYMS.get(item.lower(), ())
    if any(_norm(o).strip() in s for o in options):
        return True
    words = _norm(item).split()
    if len(words) == 2 and words[1] in ("person", "view"):  # "first and third person"
        return f" {words[0]} " in s
    return len(words) == 1 and len(words[0]) >= 6 and f" {words[0][:max(5, len(words[0]) - 3)]}" in s


def voice(act: str, sentence: str) -> bool:
    """One conversational turn in ViGGO's voice for this dialogue act (see the module docstring)."""
    text = sentence.strip()
    if not text or len(text.split()) > 60 or META.search(text):
        return False
    if act in QUESTION_ACTS:
        return "?" in text
    if act in ("inform", "give_opinion"):
        return "?" not in text
    return True  # recommend: statements and questions both occur


def score(prediction: str, reference: str, row: dict) -> dict:
    """slots (share realized), all_slots and voice of a predicted sentence for the row's MR."""
    act, pairs = parse_mr(row["prompt"])
    hits = [realized(a, v, prediction) for a, v in pairs]
    share = sum(hits) / len(hits) if hits else 1.0
    return {"voice": voice(act, prediction), "all_slots": all(hits), "slots": share}
