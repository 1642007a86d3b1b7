"""User and manifest text inside elements that render Markdown, shown as text.

``st.markdown``, ``st.info``/``st.error``/``st.success``, ``st.subheader`` and captions all render
Markdown: a reader named ``![x](http://host/beacon.png)`` would make every browser that shows the
name fetch that URL, and a patient ID with ``**`` or ``:red[...]`` in it would change the page.
Widget options (``st.selectbox``) and table cells are drawn as plain text and need none of this.
"""

from __future__ import annotations

import re

# Every ASCII punctuation character may be backslash-escaped in CommonMark; these are the ones
# that start Markdown, HTML, maths ($) or Streamlit's own directives (:red[...], :material/x:).
_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&])")
_LINK_OR_IMAGE = re.compile(r"([\[\]<>])")
_AUTOLINK = re.compile(r"(?i)\b(https?|ftp|mailto|www)([:.])")


def plain(text) -> str:
    """``text`` escaped so a Markdown element shows it exactly as typed, on one line."""
    one_line = " ".join(str(text).splitlines())
    return _SPECIAL.sub(r"\\\1", one_line)


def instructions(text) -> str:
    """Reader instructions as Markdown without images or links: headings, lists and emphasis
    render; ``![..](url)``, ``[..](url)``, ``<url>``, raw HTML and bare web addresses show as
    text, so showing the instructions never makes a browser fetch anything."""
    escaped = _LINK_OR_IMAGE.sub(r"\\\1", str(text))
    return _AUTOLINK.sub(lambda m: f"{m.group(1)}\\{m.group(2)}", escaped)
