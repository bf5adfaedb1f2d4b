"""Where frames go: encoded video files (with the input's audio) and PNG sequences, as context managers.

A sink writes `frame.pixels` (H×W×3 composite or H×W×4 RGBA: the output, or the image when no stage set
one) or, for a matte sink, `frame.alpha`. The format follows the output's extension and the `kind`:

    kind         .mp4             .mov                       .mkv                     .webm
    composite    H.264 yuv420p    H.264 yuv420p              H.264 yuv420p            VP9 yuv420p
    transparent  (refused)        ProRes 4444 yuva444p10le   FFV1 bgra (lossless)     VP9 yuva420p
    matte        H.264 of alpha   H.264 of alpha             FFV1 gray (lossless)     (refused)

A printf pattern (`out/%05d.png`) or a folder writes PNGs instead: RGB, RGBA or gray by kind.
Any other combination is a P3MError naming the extension and what works.

Odd sizes: H.264 4:2:0 needs even width and height, so an odd-sized composite or matte is padded (the last
row or column repeated; `odd_size="crop"`: cut) at the bottom or right, with one info line; it stays 4:2:0,
which every player plays (4:4:4 would keep the size, but browsers and QuickTime do not play it).

Files are written to a hidden temporary sibling (`.name.XXXX.part.ext`) and renamed on `close()`;
`abort()` (any error) removes it; `close(interrupted=True)` (Ctrl-C) finalises what was written and
keeps it. Timestamps: the input's pts while they rise (encoding.Clock). Which paths are accepted, and the
locks that keep two jobs off one output: stream/sinks/paths.py.
"""
from __future__ import annotations

import logging
import os
import secrets
from fractions import Fraction
from pathlib import Path

import av
import cv2

from model.errors import P3MError
from stream.ffmpeg import error_reason
from stream.frames import Frame
from stream.protocols import Sink, Source
from stream.sinks.audio import AudioCopier
from stream.sinks.encoding import (
    CONTAINERS,
    Clock,
    Kind,
    VideoFormat,
    add_video_stream,
    encoded_size,
    fit,
    sink_pixels,
    video_format,
    video_frame,
)
from stream.sinks.paths import (
    Output,
    check_against_inputs,
    check_pattern,
    check_writable,
    input_files,
    parse_output,
)
from stream.sinks.wrappers import TeeSink

log = logging.getLogger(__name__)


class VideoFileSink(Sink):
    """An encoded video file (see the module table), with the input's audio copied in when given."""

    def __init__(self, path: str, *, width: int, height: int, fps: Fraction, time_base: Fraction | None = None,
                 kind: Kind = "composite", crf: int | None = None, preset: str | None = None,
                 options: dict[str, str] | None = None, audio_from: str | None = None, audio_start: float = 0.0,
                 audio_cut: bool = False, hw_codecs: bool = False, input_name: str | None = None,
                 odd_size: str = "pad") -> None:
        self.path, self.kind, self.width, self.height = path, kind, width, height
        ext = Path(path).suffix.lower()
        fmt = video_format(kind, path)
        self.size = encoded_size(fmt, width, height, odd_size)     # even for H.264 4:2:0
        if self.size != (width, height):
            done = "padded to" if self.size[0] > width or self.size[1] > height else "cropped to"
            other = "crop" if done == "padded to" else "pad"
            log.info("%s: %dx%d is odd; %s %dx%d at the bottom/right for H.264 4:2:0, which every player plays "
                     "(--odd-size %s for the other way)", path, width, height, done, *self.size, other)
        self.format = fmt
        self.fps = Fraction(fps)
        self.time_base = Fraction(time_base) if time_base else 1 / self.fps
        self._clock = Clock(self.time_base, self.fps, input_name or f"frames written to {path}")
        self._tmp = _temporary_sibling(path)
        self._closed = False
        self._last_time: float | None = None
        self._audio: AudioCopier | None = None
        self._audio_cut = audio_cut          # a piece of the input: its sound ends with the last frame
        try:
            self._container = av.open(self._tmp, "w", format=CONTAINERS[ext])
            # NVENC for H.264 where it really opens (stream/hwcodecs.py); `encoder` says what was used and why.
            self._stream, self.encoder = add_video_stream(
                self._container, fmt, width=self.size[0], height=self.size[1], fps=self.fps, time_base=self.time_base,
                crf=crf, preset=preset, options=options, hardware=hw_codecs)
            if audio_from is not None:
                self._audio = AudioCopier(audio_from, self._container, CONTAINERS[ext], start=audio_start)
        except BaseException:
            self.abort()
            raise

    def write(self, frame: Frame) -> None:
        """Encode one frame (and mux the audio up to its time)."""
        pixels, layout = sink_pixels(frame, self.kind, self.width, self.height)
        if self.size != (self.width, self.height):
            pixels = fit(pixels, *self.size)
        video = video_frame(pixels, layout, self.format)
        video.pts = self._clock.next(frame)
        video.time_base = self.time_base
        self._last_time = float(video.pts * self.time_base)
        try:
            if self._audio is not None:
                self._audio.mux_until(self._last_time)
            self._container.mux(self._stream.encode(video))
        except (av.FFmpegError, OSError) as e:       # a full disk, a vanished folder...
            raise P3MError(f"cannot write {self.path} at frame {frame.index}: {error_reason(e)}",
                           "is the disk full or the output folder gone?") from None
        self.frames_written += 1

    def close(self, *, interrupted: bool = False) -> None:
        if self._closed:
            return
        if self.frames_written == 0:
            log.warning("no frames were written: %s not created", self.path)
            self.abort()
            return
        try:
            self._container.mux(self._stream.encode(None))     # flush the encoder's delayed frames
            if self._audio is not None:
                ends_early = (interrupted or self._audio_cut) and self._last_time is not None
                until = self._last_time + float(1 / self.fps) if ends_early else None
                self._audio.finish(until)
            self._container.close()
        except BaseException:
            self.abort()
            raise
        self._closed = True
        self._close_audio()
        try:
            os.replace(self._tmp, self.path)
        except OSError as e:          # e.g. a folder of that name appeared meanwhile
            _remove(self._tmp)
            raise P3MError(f"cannot move the finished video to {self.path}: {e.strerror}",
                           "is there a folder of that name, or is the folder read-only?") from None

    def abort(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._close_audio()
        try:
            if hasattr(self, "_container"):
                self._container.close()
        except Exception:       # the container may be half-written: we only want its file gone
            pass
        _remove(self._tmp)

    def _close_audio(self) -> None:
        if self._audio is not None:
            self._audio.close()


class PngSequenceSink(Sink):
    """One PNG per frame: `out/%05d.png` (a printf pattern) or a folder (`%06d.png` inside), numbered from 0."""

    def __init__(self, path: str, *, width: int, height: int, kind: Kind = "composite",
                 compression: int = 1) -> None:
        self.path, self.kind, self.width, self.height = path, kind, width, height
        self.pattern = parse_output(path, kind).pattern or check_pattern(path)
        folder = os.path.dirname(self.pattern) or "."
        if not os.path.isdir(folder):
            parent = os.path.dirname(os.path.abspath(folder))
            if not os.path.isdir(parent):
                raise P3MError(f"output folder does not exist: {parent}", "create it first")
            try:
                os.mkdir(folder)
            except OSError as e:
                raise P3MError(f"cannot create output folder {folder}: {e.strerror}", "check its permissions") from None
        check_writable(folder)
        self._params = [cv2.IMWRITE_PNG_COMPRESSION, compression]   # 1: fast, for somewhat larger files than 3
        self._created: list[str] = []        # files this sink made (abort removes these, and only these)
        self._closed = False

    def write(self, frame: Frame) -> None:
        """Write the next PNG (RGB, RGBA or gray by kind)."""
        pixels, fmt = sink_pixels(frame, self.kind, self.width, self.height)
        conversion = {"rgb24": cv2.COLOR_RGB2BGR, "rgba": cv2.COLOR_RGBA2BGRA}.get(fmt)
        image = cv2.cvtColor(pixels, conversion) if conversion is not None else pixels
        file = self.pattern % self.frames_written
        new = not os.path.lexists(file)      # one it replaces (-y) is not ours to remove on abort
        if not cv2.imwrite(file, image, self._params):
            raise P3MError(f"cannot write {file}", "is the disk full or the folder read-only?")
        if new:
            self._created.append(file)
        self.frames_written += 1

    def close(self, *, interrupted: bool = False) -> None:
        self._closed = True
        if not interrupted:        # -y over a longer sequence: its later frames would read as this one's
            index = self.frames_written
            while os.path.lexists(file := self.pattern % index):
                _remove(file)
                index += 1

    def abort(self) -> None:
        if not self._closed:
            self._closed = True
            for file in self._created:
                _remove(file)


def check_output(path: str, *, kind: Kind, input_path: str | None = None,
                 option: str = "-o") -> VideoFormat | None:
    """The user mistakes an output's path can hold (P3MError): what `paths.parse_output` refuses, the input
    itself, a missing folder. Returns the video format it will get (None: a PNG sequence)."""
    out = parse_output(path, kind, option)
    if input_path is not None:
        check_against_inputs([out], [input_files("the input", input_path)])
    if out.pattern is not None:
        return None
    if not os.path.isdir(out.folder):
        raise P3MError(f"output folder does not exist: {out.folder}", "create it first")
    return video_format(kind, path)


def job_outputs(output: str | None, alpha_out: str | None, *, transparent: bool) -> list[Output]:
    """A job's `-o` and `--alpha-out` as Outputs (either may be None in the live job), parsed (P3MError)."""
    outputs = [parse_output(output, "transparent" if transparent else "composite")] if output is not None else []
    if alpha_out is not None:
        outputs.append(parse_output(alpha_out, "matte", "--alpha-out"))
    return outputs


def check_outputs(output: str, source: Source, *, transparent: bool = False,
                  alpha_out: str | None = None) -> list[VideoFormat]:
    """One job's outputs (`open_sinks` opens the same) checked before any slow work: `check_output`, and a
    video file's folder proven writable (a PNG sequence's sink checks its folder as it opens). Returns the
    video formats they will get."""
    outputs = job_outputs(output, alpha_out, transparent=transparent)
    check_against_inputs(outputs, [input_files("the input", source.path, getattr(source, "files", None))])
    formats = []
    for out in outputs:
        fmt = check_output(out.path, kind=out.kind, option=out.option)
        if fmt is not None:
            check_writable(out.folder)
            formats.append(fmt)
    return formats


def open_sink(path: str, *, width: int, height: int, fps: Fraction, time_base: Fraction | None = None,
              kind: Kind = "composite", audio_from: str | None = None, audio_start: float = 0.0,
              audio_cut: bool = False, input_path: str | None = None, crf: int | None = None,
              preset: str | None = None, options: dict[str, str] | None = None, hw_codecs: bool = False,
              odd_size: str = "pad") -> Sink:
    """One output: a PNG sequence for a printf pattern or a folder (a path without extension), else a video file.

    `audio_from` copies that file's audio (video files; a PNG sequence warns that it is dropped), from its
    `audio_start` second on, and only up to the last frame when `audio_cut` (a piece of the input);
    `input_path` guards against overwriting the input. Raises P3MError before any work for bad paths.
    """
    if check_output(path, kind=kind, input_path=input_path) is None:
        if audio_from is not None:
            log.warning("%s: a PNG sequence holds no audio; the input's audio is dropped", path)
        return PngSequenceSink(path, width=width, height=height, kind=kind)
    return VideoFileSink(path, width=width, height=height, fps=fps, time_base=time_base, kind=kind, crf=crf,
                         preset=preset, options=options, audio_from=audio_from, audio_start=audio_start,
                         audio_cut=audio_cut, hw_codecs=hw_codecs, input_name=input_path, odd_size=odd_size)


def open_sinks(output: str, source: Source, *, transparent: bool = False, alpha_out: str | None = None,
               audio: bool = True, crf: int | None = None, preset: str | None = None,
               hw_codecs: bool = False, odd_size: str = "pad") -> Sink:
    """The sink(s) for one job: `output` (composite or transparent) plus an optional grayscale `alpha_out`."""
    common = dict(width=source.width, height=source.height, fps=source.fps, time_base=source.time_base,
                  input_path=source.path, crf=crf, preset=preset, hw_codecs=hw_codecs, odd_size=odd_size)
    check_against_inputs(job_outputs(output, alpha_out, transparent=transparent), [])
    main = open_sink(output, kind="transparent" if transparent else "composite",
                     audio_from=source.path if audio and source.has_audio else None,
                     audio_start=source.start_time, audio_cut=source.cut, **common)
    if alpha_out is None:
        return main
    try:
        matte = open_sink(alpha_out, kind="matte", **common)
    except BaseException:
        main.abort()
        raise
    return TeeSink([main, matte])


def _temporary_sibling(path: str) -> str:
    """Create the hidden partial file beside `path` (proving the folder writable); P3MError if we cannot."""
    folder, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(folder, f".{Path(name).stem}.{secrets.token_hex(4)}.part{Path(name).suffix}")
    _touch(tmp, folder)
    return tmp


def _touch(file: str, folder: str) -> None:
    try:
        open(file, "xb").close()      # mode 0o666 & ~umask, like any other file the user writes
    except OSError as e:
        raise P3MError(f"cannot write to {folder}: {e.strerror}", "choose a writable output folder") from None


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
