"""The three pathological types and how labels are spelled."""

CLASSES: tuple[str, ...] = ("SCC", "AC", "ASC")
CLASS_INDEX: dict[str, int] = {name: i for i, name in enumerate(CLASSES)}
CLASS_NAMES_LONG: dict[str, str] = {
    "SCC": "squamous cell carcinoma",
    "AC": "adenocarcinoma",
    "ASC": "adenosquamous carcinoma",
}


def parse_label(text: str) -> int:
    """Return the class index of a label such as ``"scc"`` or ``" AC "``.

    Raises
    ------
    ValueError
        If the label is not one of ``CLASSES`` (case-insensitive).
    """
    key = str(text).strip().upper()
    if key not in CLASS_INDEX:
        raise ValueError(f"unknown label {text!r}: expected one of {', '.join(CLASSES)}")
    return CLASS_INDEX[key]
