"""Words that can name a group of reports: no stop words and no fragments of a contraction.

scikit-learn's default tokens split "don't" into "don" and "t", and its English
stop words know neither "don" nor "dont": discovery named clusters "don" and
"don work" after how people write, not what they wrote about.
"""

from __future__ import annotations

from typing import Any

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

# A word of two letters or more that is not the part of a contraction on either side of its apostrophe
# ("don't", "I've"); a possessive's "'s" is left off ("app's" is "app"). Straight and curly apostrophes.
WORD = r"(?u)(?<![^\W\d_]['’])\b([^\W\d_]{2,})(?:['’]s)?\b(?!['’][^\W\d_])"
# Contractions as reports often write them, without the apostrophe.
CONTRACTIONS = frozenset(
    "aint arent couldnt didnt doesnt dont hadnt hasnt havent im isnt ive lets shouldnt thats theyre "
    "wasnt weve werent whats wont wouldnt youre youve".split()
)
STOP_WORDS = sorted(ENGLISH_STOP_WORDS | CONTRACTIONS)


def keyword_counter(**options: Any) -> CountVectorizer:
    """Counts of words and word pairs in two documents or more, for naming what a group of reports is about."""
    return CountVectorizer(stop_words=STOP_WORDS, token_pattern=WORD, ngram_range=(1, 2), min_df=2, **options)
