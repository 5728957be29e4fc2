"""Request bodies for limit tests: a streamed body that counts what the client managed to send."""

from __future__ import annotations

from collections.abc import Iterator


class CountingBody:
    """Yields ``total`` bytes in ``chunk``-sized pieces (sent chunked unless a Content-Length is given);
    ``sent`` says how far the client got before the server refused it."""

    def __init__(self, total: int, chunk: int = 64 * 1024, fill: bytes = b"x") -> None:
        self.total = total
        self.piece = fill * chunk
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        while self.sent < self.total:
            self.sent += len(self.piece)
            yield self.piece
