"""An append-only, crash-safe, size-bounded on-disk log of span batches awaiting delivery.

Layout: `<directory>/lane-<n>/seg-<id>.spool`. A lane belongs to one live process at a time
(an exclusive `flock` on `lane-<n>/LOCK`, which the kernel releases when the process dies, even
by SIGKILL); a process takes the first lane it can lock, so a restarted exporter adopts the lane
its dead predecessor left behind, and two live workers sharing one spool directory never mix
their logs.

Each segment is a sequence of framed records:

    magic "SCSP" | type u8 | seq u64 | spans u32 | length u32 | crc32 u32 | payload[length]

type DATA carries one encoded batch; type ACK (no payload) says batch `seq` reached the backend.
The CRC covers the header fields and the payload, so a record torn by a crash (or a failed write
on a full disk) is recognised and ignored: reading a segment stops at its first bad record. After a
failed append the writer moves on to a fresh segment, so a torn record never hides later ones.

Durability (fsync policy): with `fsync=True` (the default) every DATA append is followed by
`fsync` of the segment, and a new segment by an `fsync` of its directory, so an acknowledged
append survives power loss. ACK records are not fsynced on their own: losing one in a crash only
means that batch is delivered once more, which the exporters make harmless (their backend keys
derive from span identity). With `fsync=False` appends survive a process crash (SIGKILL) but not
an OS crash.

Size: the sum of segment sizes stays at or below `max_bytes`; an append that would exceed it
raises `SpoolFull` and the caller counts the spans as dropped. Segments whose every batch is
acknowledged are deleted oldest-first.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import struct
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass

_MAGIC = b"SCSP"
_HEADER = struct.Struct(">4sBQIII")  # magic, type, seq, spans, length, crc
_DATA = 1
_ACK = 2
_SEGMENT_RE = re.compile(r"^seg-(\d{12})\.spool$")
MAX_LANES = 64
MAX_QUARANTINE = 1000


class SpoolError(OSError):
    """The spool could not be opened or written."""


class SpoolFull(SpoolError):
    """Appending would exceed the configured size bound."""


class SpoolLocked(SpoolError):
    """Every lane of the spool directory is held by another live process."""


@dataclass
class SpoolEntry:
    """Where one unacknowledged batch lives on disk."""

    seq: int
    spans: int
    segment: int
    offset: int  # of the payload
    length: int


@dataclass
class SpoolStats:
    corrupt_records: int = 0  # bad CRC/magic found on open: the rest of that segment was skipped
    torn_tail_bytes: int = 0  # trailing bytes of the newest segment cut off on open
    failed_appends: int = 0


def _crc(kind: int, seq: int, spans: int, payload: bytes) -> int:
    head = struct.pack(">BQII", kind, seq, spans, len(payload))
    return zlib.crc32(payload, zlib.crc32(head)) & 0xFFFFFFFF


def _frame(kind: int, seq: int, spans: int, payload: bytes = b"") -> bytes:
    crc = _crc(kind, seq, spans, payload)
    return _HEADER.pack(_MAGIC, kind, seq, spans, len(payload), crc) + payload


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """One lane of a spool directory. Thread-safe; all methods do bounded local disk I/O."""

    def __init__(
        self,
        directory: str,
        *,
        max_bytes: int = 256 * 1024 * 1024,
        segment_bytes: int = 8 * 1024 * 1024,
        fsync: bool = True,
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = max(1024, segment_bytes)
        self.fsync = fsync
        self.stats = SpoolStats()
        self.lane_dir: str | None = None
        self._lock = threading.Lock()
        self._lock_fd: int | None = None
        self._segments: "OrderedDict[int, int]" = OrderedDict()  # id -> size in bytes
        self._unacked_per_segment: dict[int, int] = {}
        self._entries: "OrderedDict[int, SpoolEntry]" = OrderedDict()  # unacked, by seq
        self._active: int | None = None
        self._active_fd: int | None = None
        self._read_fds: dict[int, int] = {}
        self._next_seq = 1
        self._pending_spans = 0
        self._closed = False

    # --- opening ----------------------------------------------------------------------------
    def open(self) -> "Spool":
        os.makedirs(self.directory, exist_ok=True)
        for lane in range(MAX_LANES):
            lane_dir = os.path.join(self.directory, f"lane-{lane}")
            os.makedirs(lane_dir, exist_ok=True)
            fd = os.open(os.path.join(lane_dir, "LOCK"), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    continue
                raise
            self._lock_fd = fd
            self.lane_dir = lane_dir
            self._recover()
            return self
        raise SpoolLocked(errno.EBUSY, f"all {MAX_LANES} lanes of {self.directory} are locked")

    def _seg_path(self, seg: int) -> str:
        assert self.lane_dir is not None
        return os.path.join(self.lane_dir, f"seg-{seg:012d}.spool")

    def _recover(self) -> None:
        assert self.lane_dir is not None
        ids = sorted(
            int(m.group(1)) for m in map(_SEGMENT_RE.match, os.listdir(self.lane_dir)) if m
        )
        acked: set[int] = set()
        data: list[SpoolEntry] = []
        for i, seg in enumerate(ids):
            path = self._seg_path(seg)
            with open(path, "rb") as f:
                blob = f.read()
            good = self._scan(seg, blob, data, acked)
            if good < len(blob):
                if i == len(ids) - 1:
                    self.stats.torn_tail_bytes += len(blob) - good
                    os.truncate(path, good)
                else:
                    self.stats.corrupt_records += 1
            self._segments[seg] = min(good, len(blob)) if i == len(ids) - 1 else len(blob)
        max_seq = max([0, *(e.seq for e in data), *acked])
        for entry in data:
            if entry.seq in acked:
                continue
            self._entries[entry.seq] = entry
            self._pending_spans += entry.spans
            self._unacked_per_segment[entry.segment] = self._unacked_per_segment.get(entry.segment, 0) + 1
        self._next_seq = max_seq + 1
        self._collect_garbage()

    def _scan(self, seg: int, blob: bytes, data: list[SpoolEntry], acked: set[int]) -> int:
        """Parse records; return the offset of the first byte that is not a good record."""
        pos = 0
        while pos + _HEADER.size <= len(blob):
            magic, kind, seq, spans, length, crc = _HEADER.unpack_from(blob, pos)
            start = pos + _HEADER.size
            end = start + length
            if magic != _MAGIC or kind not in (_DATA, _ACK) or end > len(blob):
                return pos
            payload = blob[start:end]
            if _crc(kind, seq, spans, payload) != crc:
                return pos
            if kind == _DATA:
                data.append(SpoolEntry(seq, spans, seg, start, length))
            else:
                acked.add(seq)
            pos = end
        return pos

    # --- writing ----------------------------------------------------------------------------
    @property
    def total_bytes(self) -> int:
        return sum(self._segments.values())

    def append(self, payload: bytes, spans: int) -> int:
        """Durably add one batch; return its sequence number. Raises SpoolFull / OSError."""
        with self._lock:
            self._check_open()
            frame_len = _HEADER.size + len(payload)
            if self.total_bytes + frame_len > self.max_bytes:
                self._collect_garbage(rotate_if_idle=True)
                if self.total_bytes + frame_len > self.max_bytes:
                    raise SpoolFull(errno.ENOSPC, f"spool full ({self.max_bytes} bytes)")
            seq = self._next_seq
            seg, offset = self._write_frame(_frame(_DATA, seq, spans, payload), sync=self.fsync)
            self._next_seq += 1
            self._entries[seq] = SpoolEntry(seq, spans, seg, offset + _HEADER.size, len(payload))
            self._pending_spans += spans
            self._unacked_per_segment[seg] = self._unacked_per_segment.get(seg, 0) + 1
            return seq

    def append_many(self, records: list[tuple[bytes, int]]) -> list[int]:
        """Durably add several records with one fsync; their seqs, in order. All-or-nothing:
        on SpoolFull / OSError none of them is pending (a torn tail is cut or CRC-hidden)."""
        if len(records) == 1:
            return [self.append(*records[0])]
        with self._lock:
            self._check_open()
            size = sum(_HEADER.size + len(payload) for payload, _ in records)
            if self.total_bytes + size > self.max_bytes:
                self._collect_garbage(rotate_if_idle=True)
                if self.total_bytes + size > self.max_bytes:
                    raise SpoolFull(errno.ENOSPC, f"spool full ({self.max_bytes} bytes)")
            first = self._next_seq
            blob = b"".join(_frame(_DATA, first + i, n, payload) for i, (payload, n) in enumerate(records))
            seg, offset = self._write_frame(blob, sync=self.fsync)
            seqs = []
            for i, (payload, n) in enumerate(records):
                seq = first + i
                offset += _HEADER.size
                self._entries[seq] = SpoolEntry(seq, n, seg, offset, len(payload))
                offset += len(payload)
                self._pending_spans += n
                seqs.append(seq)
            self._next_seq = first + len(records)
            self._unacked_per_segment[seg] = self._unacked_per_segment.get(seg, 0) + len(records)
            return seqs

    def ack(self, seq: int) -> None:
        """Mark a batch delivered. Best effort: a lost ACK only causes one more delivery."""
        with self._lock:
            if self._closed:
                return
            entry = self._entries.pop(seq, None)
            if entry is None:
                return
            self._pending_spans -= entry.spans
            self._unacked_per_segment[entry.segment] -= 1
            try:
                self._write_frame(_frame(_ACK, seq, 0), sync=False)
            except OSError:
                self.stats.failed_appends += 1
            self._collect_garbage()

    def _write_frame(self, frame: bytes, *, sync: bool) -> tuple[int, int]:
        if self._active is None or self._segments[self._active] >= self.segment_bytes:
            self._rotate()
        assert self._active is not None and self._active_fd is not None
        seg, fd = self._active, self._active_fd
        offset = self._segments[seg]
        try:
            written = 0
            while written < len(frame):
                written += os.write(fd, frame[written:])
            if sync:
                os.fsync(fd)
        except OSError:
            self.stats.failed_appends += 1
            # Cut the torn record off; if even that fails, CRC framing hides it on the next open.
            # Either way later records go to a fresh segment, never behind a torn one.
            try:
                os.ftruncate(fd, offset)
            except OSError:
                pass
            self._segments[seg] = os.fstat(fd).st_size if self._fd_ok(fd) else offset
            self._close_active()
            raise
        self._segments[seg] = offset + len(frame)
        return seg, offset

    @staticmethod
    def _fd_ok(fd: int) -> bool:
        try:
            os.fstat(fd)
            return True
        except OSError:
            return False

    def _rotate(self) -> None:
        self._close_active()
        seg = (next(reversed(self._segments)) + 1) if self._segments else 1
        path = self._seg_path(seg)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._segments[seg] = 0
        self._active, self._active_fd = seg, fd
        if self.fsync:
            try:
                _fsync_dir(self.lane_dir or self.directory)
            except OSError:
                pass

    def _close_active(self) -> None:
        if self._active_fd is not None:
            try:
                os.close(self._active_fd)
            except OSError:
                pass
        self._active = None
        self._active_fd = None

    def _collect_garbage(self, rotate_if_idle: bool = False) -> None:
        """Delete fully acknowledged segments, oldest first (acks only ever point backwards)."""
        if rotate_if_idle and not self._entries and self._active is not None and self._segments[self._active]:
            self._close_active()
        for seg in list(self._segments):
            if seg == self._active or self._unacked_per_segment.get(seg, 0) > 0:
                break
            try:
                os.unlink(self._seg_path(seg))
            except FileNotFoundError:
                pass
            except OSError:
                break
            self._segments.pop(seg)
            self._unacked_per_segment.pop(seg, None)
            fd = self._read_fds.pop(seg, None)
            if fd is not None:
                os.close(fd)

    # --- reading ----------------------------------------------------------------------------
    def pending(self, after_seq: int = 0, limit: int | None = None) -> list[SpoolEntry]:
        """Unacknowledged batches with seq > after_seq, oldest first."""
        with self._lock:
            out = []
            for seq, entry in self._entries.items():
                if seq > after_seq:
                    out.append(entry)
                    if limit is not None and len(out) >= limit:
                        break
            return out

    @property
    def pending_spans(self) -> int:
        return self._pending_spans

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def read(self, entry: SpoolEntry) -> bytes:
        with self._lock:
            self._check_open()
            fd = self._read_fds.get(entry.segment)
            if fd is None:
                fd = os.open(self._seg_path(entry.segment), os.O_RDONLY)
                self._read_fds[entry.segment] = fd
            data = os.pread(fd, entry.length, entry.offset)
            if len(data) != entry.length:
                raise SpoolError(errno.EIO, f"short read of spool batch {entry.seq}")
            return data

    def drop(self, seq: int) -> None:
        """Give up on a batch that can never be delivered (undecodable): ack it so it goes away."""
        self.ack(seq)

    def quarantine(self, seq: int) -> str | None:
        """Move a batch the backend keeps rejecting out of the way: copy its payload to
        `<lane>/quarantine/<seq>.json` (at most MAX_QUARANTINE files) and acknowledge it, so
        the batches behind it can flow. Returns the file written, if any."""
        with self._lock:
            entry = self._entries.get(seq)
        if entry is None:
            return None
        path = None
        try:
            payload = self.read(entry)
            qdir = os.path.join(self.lane_dir or self.directory, "quarantine")
            os.makedirs(qdir, exist_ok=True)
            if len(os.listdir(qdir)) < MAX_QUARANTINE:
                path = os.path.join(qdir, f"{seq:012d}.json")
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                try:
                    os.write(fd, payload)
                finally:
                    os.close(fd)
        except OSError:
            path = None
        self.ack(seq)
        return path

    # --- closing ----------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed or self._lock_fd is None:
            raise SpoolError(errno.EBADF, "spool is closed")

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._close_active()
            for fd in self._read_fds.values():
                os.close(fd)
            self._read_fds.clear()
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # releases the flock
                self._lock_fd = None
