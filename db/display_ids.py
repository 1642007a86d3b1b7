"""The IDs readers see for cases: random, stable, and unable to spell a label.

Hex IDs such as ``C-8EACB4`` can contain ``AC``, a cue for a reader. The alphabet here has no
vowels and none of the letters of the class names (S, C; A is a vowel), nor look-alikes of digits
(I, O), so no draw can spell SCC, AC, ASC or any word.
"""

from __future__ import annotations

import secrets

ALPHABET = "23456789BDFGHJKLMNPQRTVWXZ"
CODE_LENGTH = 6  # 26**6 = 309 million codes


def random_code(length: int = CODE_LENGTH) -> str:
    """A random code of ``length`` characters from :data:`ALPHABET` (``secrets``-drawn)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def code_from_digest(digest: bytes, length: int = CODE_LENGTH) -> str:
    """A deterministic code from hash bytes (same digest, same code)."""
    number = int.from_bytes(digest, "big")
    chars = []
    for _ in range(length):
        number, index = divmod(number, len(ALPHABET))
        chars.append(ALPHABET[index])
    return "".join(chars)
