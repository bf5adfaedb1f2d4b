"""Which output paths a job may write, decided once, before the model loads: the one home of that policy.

An output is a video file (`out.mp4`: its extension picks the format) or a PNG sequence (a printf pattern,
`out/%05d.png`, or an existing folder, `out/`, which gets `%06d.png`). `reserve_outputs` refuses (P3MError):
an empty path, a path without an extension, a pattern with a stray `%`, two outputs on the same files, an
output on any input file (the input video, a frame of an input sequence, the background) or a PNG sequence in
an input sequence's folder, an existing output unless the user allows it (`-y`, or yes when asked), and an
output another job is writing (an exclusive lock beside it, held for the job). It creates a missing output
folder, and on failure removes only what it created (folders left empty, its lock files).
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from model.errors import P3MError
from stream.ffmpeg import PRINTF_FIELD, is_url
from stream.sinks.encoding import Kind, supported, video_format

try:                              # Linux and macOS: advisory locks that end with the process, even on SIGKILL
    import fcntl
except ImportError:               # Windows
    fcntl = None  # type: ignore[assignment]
    import msvcrt

log = logging.getLogger(__name__)

SEQUENCE_NAME = "%06d.png"        # the pattern a folder output gets
Confirm = Callable[[str], bool]   # asks the user "replace it?" (a terminal's y/N); True replaces


@dataclass(frozen=True)
class Output:
    """One output path as a job will write it: a video file, or the printf `pattern` of a PNG sequence."""

    path: str
    kind: Kind
    option: str = "-o"            # how the user gave it, for messages
    pattern: str | None = None    # a PNG sequence's file pattern; None: a video file

    @property
    def folder(self) -> str:
        return os.path.dirname(os.path.abspath(self.pattern or self.path))

    def existing(self) -> list[str]:
        """The files this output would replace: the video file, or the files its pattern names."""
        if self.pattern is None:
            return [self.path] if os.path.lexists(self.path) else []
        if not os.path.isdir(self.folder):
            return []
        match = pattern_regex(self.pattern).fullmatch
        shown = os.path.dirname(self.pattern)       # as the user wrote it, for messages
        return sorted(os.path.join(shown, name) for name in os.listdir(self.folder) if match(name))

    def writes(self, file: str) -> bool:
        """True when `file` is one this output writes (or may write, for a sequence)."""
        if self.pattern is None:
            return same_file(self.path, file)
        return (os.path.dirname(os.path.realpath(file)) == os.path.realpath(self.folder)
                and pattern_regex(self.pattern).fullmatch(os.path.basename(file)) is not None)


def parse_output(path: str, kind: Kind, option: str = "-o") -> Output:
    """`path` as an Output, or a P3MError naming what is wrong with it and what works."""
    if not path.strip():
        raise P3MError(f"{option} is empty", f"give a file, e.g. out.mp4, or PNG frames as out/%05d.png "
                                             f"({kind} output goes to {supported(kind)})")
    if is_url(path):
        raise P3MError(f"{option} {path}: an output is a file, not a URL",
                       "p3m live streams with --stream-url; write a file with -o")
    if os.path.isdir(path) or path.endswith(("/", os.sep)):
        return Output(path, kind, option, check_pattern(os.path.join(path, SEQUENCE_NAME), option))
    if "%" in path:
        return Output(path, kind, option, check_pattern(path, option))
    ext = Path(path).suffix.lower()
    if not ext:
        raise P3MError(f"{option} {path}: no extension, so no format",
                       f"{kind} output goes to {supported(kind)}; e.g. {path}.mp4 or {path}/%05d.png")
    if ext == ".png":
        stem = os.path.splitext(path)[0]
        raise P3MError(f"{option} {path}: PNG output is a sequence of frames and needs a frame-number pattern",
                       f"e.g. {stem}_%05d.png")
    video_format(kind, path)       # the extension against the kind (P3MError naming what works)
    return Output(path, kind, option)


def check_pattern(pattern: str, option: str = "-o") -> str:
    """A PNG sequence's printf pattern, checked: one integer field (`%d`, `%05d`) in the file name, `%%` for a
    literal percent sign, nothing else after a `%`, and `.png` at the end."""
    hint = "one %d (or %05d) in the file name stands for the frame number; write %% for a literal %"
    if not pattern.lower().endswith(".png"):
        raise P3MError(f"{option} {pattern}: an image sequence output must end in .png", "e.g. out/frame_%05d.png")
    folder, name = os.path.split(pattern)
    if "%" in folder.replace("%%", ""):
        raise P3MError(f"{option} {pattern}: a % in the folder name", hint)
    fields = PRINTF_FIELD.findall(name.replace("%%", ""))
    stray = PRINTF_FIELD.sub("", name.replace("%%", ""), count=1)
    if len(fields) != 1 or "%" in stray:
        raise P3MError(f"{option} {pattern}: not a frame-number pattern", hint)
    return pattern


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """What the file names of a PNG pattern look like (any frame number), as a regex on the base name."""
    name = os.path.basename(pattern).replace("%%", "\0")
    field = PRINTF_FIELD.search(name)
    if field is None:
        return re.compile(re.escape(name.replace("\0", "%")))
    before, after = (re.escape(part.replace("\0", "%")) for part in (name[:field.start()], name[field.end():]))
    width = max(1, int(field.group(1) or 0))
    # %05d: at least 5 digits (zero-padded); %5d: space-padded; %d: any number
    number = f"-?\\d{{{width},}}" if field.group(0).startswith("%0") else " *-?\\d+"
    return re.compile(f"{before}{number}{after}")


def same_file(a: str, b: str) -> bool:
    """True when two paths name one file (links included; a file not yet there by its resolved path)."""
    if is_url(a) or is_url(b):
        return a == b
    if os.path.exists(a) and os.path.exists(b):
        return os.path.samefile(a, b)
    return os.path.realpath(a) == os.path.realpath(b)


@dataclass(frozen=True)
class Input:
    """What a job reads: a role for messages ("the input", "the background") and its files."""

    role: str
    files: Sequence[str]
    sequence: bool = False       # frames of an image sequence: no output may go into their folder


def input_files(role: str, spec: str | None, files: Sequence[str] | None = None) -> Input | None:
    """An `Input` for a spec a job reads (None for URLs, devices and words like `green`): its `files` when it
    lists them (an image sequence), else the spec itself when it is a regular file."""
    if files:
        return Input(role, list(files), sequence=len(files) > 1 or os.path.isdir(spec or ""))
    if spec and not is_url(spec) and os.path.isfile(os.path.expanduser(spec)):
        return Input(role, [os.path.expanduser(spec)])
    return None


def check_against_inputs(outputs: Sequence[Output], inputs: Sequence[Input | None]) -> None:
    """P3MError when two outputs share files, or an output would write over (or into the folder of) an input
    (None: an input without files, a URL or a device)."""
    for i, a in enumerate(outputs):
        for b in outputs[i + 1:]:
            if _overlap(a, b):
                raise P3MError(f"{b.option} {b.path} writes the same files as {a.option} {a.path}",
                               f"give {b.option} its own file")
    for out in outputs:
        for source in filter(None, inputs):
            hit = next((f for f in source.files if out.writes(f)), None)
            if hit is not None:
                raise P3MError(f"{out.option} {out.path} would write over {source.role} {hit}",
                               "write the output to another file or folder")
            if out.pattern is not None and source.sequence and any(
                    os.path.realpath(os.path.dirname(os.path.abspath(f))) == os.path.realpath(out.folder)
                    for f in source.files[:1]):
                raise P3MError(f"{out.option} {out.path} would write frames into the folder of {source.role}",
                               "write the frames to another folder, e.g. out/%05d.png")


def _overlap(a: Output, b: Output) -> bool:
    if a.pattern is None and b.pattern is None:
        return same_file(a.path, b.path)
    if a.pattern is not None and b.pattern is not None:     # a few of a's names, as b would see them
        return any(b.writes(os.path.join(a.folder, os.path.basename(a.pattern) % n)) for n in (0, 7, 123456))
    video, sequence = (a, b) if a.pattern is None else (b, a)
    return sequence.writes(video.path)


class Reservation(contextlib.AbstractContextManager):
    """The outputs a job holds: their locks, and the folders it made for them (removed again, when left empty,
    if the job fails)."""

    def __init__(self) -> None:
        self._locks: list[tuple[int, str]] = []
        self.created: list[str] = []          # folders made, deepest last

    def __exit__(self, exc_type, exc, tb) -> None:
        self.release(failed=exc_type is not None)

    def release(self, *, failed: bool = False) -> None:
        """Unlock (and remove the lock files); after a failure, remove the folders made that stayed empty."""
        while self._locks:
            fd, path = self._locks.pop()
            with contextlib.suppress(OSError):
                os.remove(path)      # while still holding it: a job that opened it checks it is still there
            os.close(fd)
        if failed:
            for folder in reversed(self.created):
                with contextlib.suppress(OSError):     # not empty: someone put something there; keep it
                    os.rmdir(folder)
        self.created = []

    def lock(self, output: Output) -> None:
        """An exclusive lock on `output` (a hidden file beside it); P3MError when another job holds it."""
        target = os.path.basename(output.pattern or output.path)
        path = os.path.join(output.folder, f".{target}.p3m-lock")
        for _ in range(3):            # the holder may remove the file between our open and our lock: retry
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                raise P3MError(f"cannot write to {output.folder}: {e.strerror}",
                               "choose a writable output folder") from None
            if not _try_lock(fd):
                holder = _read_pid(fd)
                os.close(fd)
                raise P3MError(f"{output.path} is being written by another p3m job{holder}",
                               "wait for it to finish, or choose another output")
            try:
                current = os.stat(path).st_ino
            except FileNotFoundError:
                current = None
            if current == os.fstat(fd).st_ino:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                self._locks.append((fd, path))
                return
            os.close(fd)
        raise P3MError(f"cannot lock {output.path}: other jobs keep taking it", "try again")

    def make_folder(self, output: Output) -> None:
        """Create `output`'s folder (and its missing parents), remembering what was made; P3MError when a file
        stands where a folder should be or the place is not writable."""
        missing: list[str] = []
        folder = output.folder
        while not os.path.exists(folder):
            missing.append(folder)
            folder = os.path.dirname(folder)
        if not os.path.isdir(folder):
            raise P3MError(f"{output.option} {output.path}: {folder} is a file, not a folder",
                           "choose an output path inside a folder")
        for path in reversed(missing):
            try:
                os.mkdir(path)
            except FileExistsError:
                continue
            except OSError as e:
                raise P3MError(f"cannot create output folder {path}: {e.strerror}", "check its permissions") from None
            self.created.append(path)
        if missing:
            log.info("created the output folder %s", output.folder)
        check_writable(output.folder)


def reserve_outputs(outputs: Sequence[Output], inputs: Sequence[Input | None], *, overwrite: bool = False,
                    confirm: Confirm | None = None) -> Reservation:
    """Check `outputs` against each other and the job's `inputs`, create missing folders, lock each output and
    refuse existing ones unless `overwrite` (or `confirm` says yes). P3MError for every refusal, before any
    output file is written; the returned Reservation is held for the job (a context manager)."""
    check_against_inputs(outputs, inputs)
    reservation = Reservation()
    try:
        for out in outputs:
            if out.pattern is None and os.path.isdir(out.path):
                raise P3MError(f"{out.option} {out.path} is a folder", "give a file name, e.g. out.mp4")
            reservation.make_folder(out)
            reservation.lock(out)        # before looking for existing files: a second job meets the lock
            if not overwrite:
                _refuse_existing(out, confirm)
    except BaseException:
        reservation.release(failed=True)
        raise
    return reservation


def _refuse_existing(out: Output, confirm: Confirm | None) -> None:
    """P3MError when `out` would replace files, unless `confirm` (a terminal's prompt) says yes."""
    existing = out.existing()
    if not existing:
        return
    what = (f"{out.path} exists" if out.pattern is None
            else f"{out.path}: {len(existing)} frame{'s' if len(existing) > 1 else ''} exist ({existing[0]}, ...)")
    if confirm is not None and confirm(f"{what}. Overwrite?"):
        return
    raise P3MError(f"{out.option} {what}", "pass -y (--overwrite) to replace it, or choose another name")


def _try_lock(fd: int) -> bool:
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:
        return False
    return True


def _read_pid(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError, AttributeError):     # no pread on Windows
        return f" (pid {int(os.pread(fd, 32, 0).decode().strip())})"
    return ""


def check_writable(folder: str) -> None:
    """Prove `folder` writable with a probe file (permissions alone say nothing of a read-only mount)."""
    probe = os.path.join(folder, f".p3m-probe.{secrets.token_hex(4)}")
    try:
        open(probe, "xb").close()     # mode 0o666 & ~umask, like any other file the user writes
    except OSError as e:
        raise P3MError(f"cannot write to {folder}: {e.strerror}", "choose a writable output folder") from None
    os.remove(probe)
