"""Text into the sentences the voice speaks, one at a time.

Pure text handling: where sentences end, how run-on text is cut, and how titles and
initials are written so that espeak-ng reads them as intended.
"""

from __future__ import annotations

import re

# A VITS model attends over the whole input, so time and memory grow with sentence length
# and nothing is heard until the sentence is done: run-on text is cut into pieces this long.
_MAX_SENTENCE_CHARS = 400

# Sentence end: terminal punctuation, optional closing quotes/brackets, then whitespace.
# Line breaks end a sentence too: chat-style text uses them for list items and paragraphs.
_BOUNDARY = re.compile(r"(?P<end>(?P<punct>[.!?\u2026]+)[\"'\u201d\u2019\u00bb)\]]*)\s+|\s*\n\s*")
# Words whose trailing dot is not a sentence end. Titles only: words such as "etc." or
# "Inc." end sentences too often to guess. Merging two sentences costs a little latency,
# a wrong split puts a pause mid-sentence.
_ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "approx"})
_LAST_WORD = re.compile(r"(\S+)$")
_DOTTED = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]")
# espeak-ng reads the dot of a title or initial as a full stop ("Dr. Smith" comes out as
# "Doctor. Smith." with a sentence pause); without the dot it reads the words as intended.
_TITLE_DOT = re.compile(
    r"(?<![.\w])((?i:mr|mrs|ms|dr|prof|sr|jr|st|vs|approx)|[A-HJ-Z])\.(?=\s+\S)"
)


def _is_abbreviation(head: str) -> bool:
    match = _LAST_WORD.search(head)
    if match is None:
        return False
    word = match.group(1).lstrip("\"'(\u201c\u2018[")
    if word.lower() in _ABBREVIATIONS:
        return True
    # Initials ("J. Smith", but not the pronoun) and dotted forms ("e.g.", "U.S.", "p.m.").
    initial = len(word) == 1 and word.isupper() and word != "I"
    return initial or _DOTTED.fullmatch(word) is not None


def _cut_long(sentence: str) -> list[str]:
    pieces: list[str] = []
    while len(sentence) > _MAX_SENTENCE_CHARS:
        window = sentence[:_MAX_SENTENCE_CHARS]
        # Prefer a clause boundary so the pause falls where a speaker would take one.
        cut = max(window.rfind(", "), window.rfind("; "), window.rfind(": "))
        cut = cut + 1 if cut > 0 else window.rfind(" ")
        cut = cut if cut > 0 else _MAX_SENTENCE_CHARS
        pieces.append(sentence[:cut].strip())
        sentence = sentence[cut:].strip()
    return [p for p in [*pieces, sentence] if p]


def split_sentences(text: str) -> list[str]:
    """Split text into the sentences the engine speaks, whitespace collapsed.

    Pieces without a letter or digit (stray markdown such as ``---``) are dropped: there
    is nothing to say and Piper would only produce a click of silence.
    """
    sentences: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        punct = match.group("punct")
        if punct == "." and _is_abbreviation(text[start : match.start("punct")]):
            continue
        end = match.end("end") if punct else match.start()
        sentences.append(text[start:end])
        start = match.end()
    sentences.append(text[start:])
    result: list[str] = []
    for raw in sentences:
        sentence = " ".join(raw.split())
        if any(ch.isalnum() for ch in sentence):
            result.extend(_cut_long(sentence))
    return result


def spoken_form(sentence: str) -> str:
    """The sentence as handed to the phonemizer: titles and initials without their dot."""
    return _TITLE_DOT.sub(r"\1", sentence)
