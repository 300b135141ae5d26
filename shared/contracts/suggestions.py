"""How a typed suggestion title becomes the words of its group key (`title:<words>`, see
`SuggestionMatch.group_key`): the catalogue groups by it, and whoever compares a title with a group
(the workspace's follow-up) must use the very same words."""

import re
import unicodedata

# French function words, and the generic words every dataset title carries: they say nothing of
# which dataset is meant.
STOP_WORDS = frozenset(
    (
        *("a", "au", "aux", "d", "de", "des", "du", "en", "et", "l", "la", "le", "les", "leur", "leurs"),
        *("par", "pour", "sur", "un", "une", "dans", "ou", "the", "of", "and"),
        *("donnees", "donnee", "jeu", "base", "liste", "fichier"),
    )
)


def slugify(text: str) -> str:
    """ASCII, lower-case, hyphen-separated form of a text."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def normalise_title(text: str) -> str:
    """Compare-ready form of a French title: no case, accents, punctuation, stop words, plurals."""
    words = []
    for word in slugify(text).split("-"):
        if not word or word in STOP_WORDS:
            continue
        if len(word) > 3 and word[-1] in "sx":
            word = word[:-1]
        words.append(word)
    return " ".join(words)
