"""The recent changes of stories this process's readers follow, kept in memory, so a storm of
catch-up joins (every reader after a deploy, each a few revisions behind) costs the database a
couple of queries per story and process instead of two per reader.

A story's window starts on its first join in this process: one read of the story and of the
entries changed in its last CATCHUP_WINDOW revisions. From then on it follows every `entry` and
`story` event this process delivers to the story's room (tracker.fanout calls `note`), locally
made or from the message queue. A window answers a join only when it is certain: no revision
missing below the newest it holds, and the reader no further behind than its start. Anything
else (a gap, an event lost with the queue down, a reader far behind, a page too big) takes the
database path, and the revision beacon drops a window the database has overtaken.
"""
from __future__ import annotations

import json
import threading
from collections import OrderedDict

MAX_STORIES = 64  # windows kept, least recently joined dropped first


class Window:
    """One story's recent changes: every entry changed after `start`, as of revision `rev`."""

    def __init__(self, story: dict):
        self.story = _as_joined(story)
        self.rev = story["rev"]
        self.start = self.rev
        self.ready = False  # until its first read; events meanwhile wait in `early`
        # id -> (newest state, its size in bytes), in the order of those states' revisions.
        self.entries: dict[int, tuple[dict, int]] = {}
        self.early: dict[int, tuple[str, dict]] = {}  # revisions that arrived above a missing one

    def fill(self, story: dict, entries: list[dict], start: int) -> None:
        """Take the first read: the story as of its revision, and the entries changed after `start`
        (in revision order). A state newer than the story's revision was committed after this window
        opened, so its event is still to come: it is left for that event, which keeps the order."""
        self.story = _as_joined(story)
        self.rev, self.start = story["rev"], start
        for state in entries:
            if state["rev"] <= self.rev:
                self.entries[state["id"]] = (state, len(json.dumps(state)))
        self.ready = True
        self._close()

    def note(self, kind: str, state: dict) -> None:
        """Count a delivered event's revision; apply it once every revision below it is here."""
        if state["rev"] > self.rev:
            self.early[state["rev"]] = (kind, state)
            self._close()

    def _close(self) -> None:
        if not self.ready:
            return
        for rev in [rev for rev in self.early if rev <= self.rev]:
            del self.early[rev]
        while self.rev + 1 in self.early:
            self.rev += 1
            kind, state = self.early.pop(self.rev)
            if kind == "story":
                self.story = _as_joined(state)
            else:
                self.entries.pop(state["id"], None)  # to the end: the newest revision
                self.entries[state["id"]] = (state, len(json.dumps(state)))
                self.story["updated_at"] = max(self.story["updated_at"] or "", state["updated_at"] or "")

    def answer(self, since: int, most: int, max_bytes: int, keep: int) -> dict | None:
        """A join's ack from memory, or None when only the database can answer it."""
        # A reader ahead of this window heard of a revision this process has not delivered yet.
        if not self.ready or self.early or not self.start <= since <= self.rev:
            return None
        changed = []
        for item in reversed(self.entries.values()):  # newest first, as far back as the reader is
            if item[0]["rev"] <= since:
                break
            changed.append(item)
        changed.reverse()
        if len(changed) > most or sum(size for _, size in changed) > max_bytes:
            return None
        if len(self.entries) > 2 * keep:
            self._trim(keep)
        return {"rev": self.rev, "story": {**self.story, "rev": self.rev}, "entries": [s for s, _ in changed]}

    def _trim(self, keep: int) -> None:
        """Keep the `keep` newest states; the window then starts at the newest one dropped."""
        while len(self.entries) > keep:
            state, _ = self.entries.pop(next(iter(self.entries)))
            self.start = max(self.start, state["rev"])


def _as_joined(story: dict) -> dict:
    """A story's state as a join's answer holds it: without the lead image's object."""
    return {key: value for key, value in story.items() if key != "image"}


class Windows:
    """A process's windows, one per followed story (held by its tracker.fanout manager)."""

    def __init__(self):
        self._windows: OrderedDict[str, Window] = OrderedDict()
        self._lock = threading.Lock()

    def note(self, event: str, data) -> None:
        """A broadcast this process delivers to a story's room: an entry's or the story's state."""
        if event not in ("entry", "story") or not isinstance(data, dict) or not isinstance(data.get("rev"), int):
            return
        window = self._windows.get(data.get("slug" if event == "story" else "story"))
        if window is not None:
            with self._lock:
                window.note(event, data)

    def answer(self, slug: str, since: int, most: int, max_bytes: int, keep: int) -> dict | None:
        """A join's ack (rev, story, entries) from the story's window, or None."""
        window = self._windows.get(slug)
        if window is None:
            return None
        with self._lock:
            self._windows.move_to_end(slug)
            return window.answer(since, most, max_bytes, keep)

    def open(self, slug: str, story: dict) -> Window | None:
        """Start following a story before its first read (`fill` gives it); None if one exists."""
        with self._lock:
            if slug in self._windows:
                return None
            window = self._windows[slug] = Window(story)
            while len(self._windows) > MAX_STORIES:
                self._windows.popitem(last=False)
            return window

    def fill(self, window: Window, story: dict, entries: list[dict], start: int) -> None:
        """Give a new window its first read."""
        with self._lock:
            window.fill(story, entries, start)

    def forget(self, slug: str, window: Window | None = None) -> None:
        """Drop a story's window (only this one, if given): the next join reads the database."""
        with self._lock:
            if slug in self._windows and (window is None or self._windows[slug] is window):
                del self._windows[slug]

    def confirm(self, slug: str, rev: int) -> None:
        """The database's revision of a story (the revision beacon): a window behind it missed an event."""
        window = self._windows.get(slug)
        if window is not None and window.ready and window.rev < rev:
            self.forget(slug, window)
