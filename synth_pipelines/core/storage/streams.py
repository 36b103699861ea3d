"""Writers over an object store's forward-only streams: what archive and export writers share.

`ForwardWriter` answers tell() over a non-seekable target (zipfile, tarfile and Parquet ask
for it; zipfile then writes sizes and CRCs in data descriptors after each member);
`HashingWriter` also takes the sha256 of what passes through. Closing either leaves the target
open: the store's writer publishes it.
"""

from __future__ import annotations

import hashlib
import io
from typing import IO, Any


class ForwardWriter(io.RawIOBase):
    """A forward-only writer to `target` that counts what passes (`written`, `tell()`)."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target = target
        self.written = 0

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.written

    def write(self, data: Any) -> int:
        self.target.write(data)
        size = memoryview(data).nbytes
        self.written += size
        return size


class HashingWriter(ForwardWriter):
    """A forward writer that also takes the sha256 of what passes through (`hash`)."""

    def __init__(self, target: IO[bytes]) -> None:
        super().__init__(target)
        self.hash = hashlib.sha256()

    def write(self, data: Any) -> int:
        self.hash.update(data)
        return super().write(data)
