"""Predictions kept for their report links, keyed by unguessable ids, at most a fixed number.

A prediction is kept in memory (a few hundred kB at most each, so ``capacity`` bounds the
memory); its ``report.html`` is rendered by :func:`hotspot_erc.report.outputs.write_outputs`
into ``<folder>/<id>/`` the first time the link is opened (about 2 s with its figures), so a
client that never opens it never pays. Ids come from :func:`secrets.token_urlsafe`; a folder is
only ever named by an id this store made, never by one a request sent.
"""

from __future__ import annotations

import re
import secrets
import shutil
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

from hotspot_erc.engine.prediction import ConversationPrediction

ID_BYTES = 24
# token_urlsafe(24) is 32 characters of the URL-safe base64 alphabet.
REPORT_ID = re.compile(r"[A-Za-z0-9_-]{32}")
PAGE_FILE = "report.html"


class ReportStore:
    """At most ``capacity`` predictions, oldest dropped; rendered pages under ``folder``."""

    def __init__(self, folder: Path, capacity: int) -> None:
        self.folder = folder
        self.capacity = capacity
        self._conversations: OrderedDict[str, ConversationPrediction] = OrderedDict()
        self._lock = threading.Lock()
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)

    def __len__(self) -> int:
        return len(self._conversations)

    def add(self, conversation: ConversationPrediction) -> str:
        """Keep ``conversation``; return its id. Thread-safe."""
        report_id = secrets.token_urlsafe(ID_BYTES)
        with self._lock:
            self._conversations[report_id] = conversation
            dropped = [self._conversations.popitem(last=False)[0]
                       for _ in range(len(self._conversations) - self.capacity)]
        for old in dropped:
            shutil.rmtree(self.folder / old, ignore_errors=True)
        return report_id

    def page(self, report_id: str) -> bytes | None:
        """The report page of ``report_id``, rendered on first use; None for an unknown id (or
        one dropped meanwhile). Blocking: call it from a worker thread."""
        if not REPORT_ID.fullmatch(report_id):
            return None
        with self._lock:
            conversation = self._conversations.get(report_id)
        if conversation is None:
            return None
        try:
            return (self.folder / report_id / PAGE_FILE).read_bytes()
        except FileNotFoundError:
            return self._render(report_id, conversation)

    def _render(self, report_id: str, conversation: ConversationPrediction) -> bytes | None:
        from hotspot_erc.report.outputs import write_outputs

        # Rendered aside, then moved in only if the entry still exists: a report dropped while
        # it rendered leaves nothing behind.
        with tempfile.TemporaryDirectory(dir=self.folder, prefix=".render-") as scratch:
            written = write_outputs(conversation, scratch)["report"]
            html = written.read_bytes()
            with self._lock:
                if report_id not in self._conversations:
                    return None
                (self.folder / report_id).mkdir(mode=0o700, exist_ok=True)
                written.replace(self.folder / report_id / PAGE_FILE)
        return html
