"""A message's text as one line of a list, and as much of it as a detail view draws.

Lists (the conversation, the feed, toasts) showed every word of a body on one line: a 700 KB
message became one line the list wrapped into thousands, and the feed took seconds to draw and to
leave (walk, session 18). Only the head of a body is ever squeezed; the rest is counted."""

from __future__ import annotations

import re

# A PATH-like list of three or more absolute directories, as an error quotes it.
PATH_LIST = re.compile(r"/[^\s:;,]*(?::/[^\s:;,]*){2,}")
LINE_CHARS = 400  # a list line's text at most: wider than any terminal, so nothing visible is lost
VIEW_CHARS = 64 * 1024  # a thread view's body at most; `thrum message get ID` prints all of it


def one_line(text: str, limit: int = LINE_CHARS) -> str:
    """`text`'s words joined by single spaces, cut to `limit` characters (then " …")."""
    head = text[: limit * 4 + 64]  # room for the spaces squeezed out; never the whole of a huge body
    words = " ".join(head.split())
    if len(words) > limit:
        return words[:limit].rstrip() + " …"
    return words + " …" if len(head) < len(text) and words else words


def viewable(text: str, message_id: str, limit: int = VIEW_CHARS) -> str:
    """`text` as a detail view draws it: whole up to `limit`, else its head and what was left out."""
    if len(text) <= limit:
        return text
    cut = text.rfind("\n", 0, limit)
    head = text[: cut if cut > limit // 2 else limit]
    rest = text[len(head) :]
    more = rest.count("\n") + 1
    return f"{head}\n… {more:,} more lines, {len(rest):,} characters: `thrum message get {message_id}` prints it all"


def short_path_lists(text: str) -> str:
    """`text` with each PATH it quotes cut to its first directory and a count: a runtime not found
    printed the pane's whole PATH, five lines of the new-agent dialog (walk, bug 17)."""

    def cut(m: re.Match[str]) -> str:
        dirs = m.group(0).split(":")
        return f"{dirs[0]}:… ({len(dirs)} directories)"

    return PATH_LIST.sub(cut, text)
