"""Audio passthrough: copy the input's audio packets into an output file, interleaved with its video.

The copier opens the input a second time, demuxing audio streams only, and muxes audio up to the video
time of each written frame: memory stays bounded (one packet of look-ahead) and the file interleaves
properly. Packets are copied as they are where the container takes the codec; otherwise they are decoded
and re-encoded (AAC → Opus for WebM, say) with a warning. A piece of the input (`--start`) keeps the packets
that overlap it, their times shifted by the start so that the output's sound starts with its first frame.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import av
from av.audio.stream import AudioStream
from av.container import OutputContainer

from model.errors import P3MError
from stream.ffmpeg import open_input

log = logging.getLogger(__name__)


# Codecs each container stores as they are (FFmpeg's own list is looser: it accepts Vorbis in MP4, say).
COPYABLE = {
    "mp4": {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"},
    "mov": {"aac", "mp3", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_s24be",
            "pcm_f32le", "pcm_f32be"},
    "webm": {"opus", "vorbis"},
}


REENCODE_TO = {"mp4": "aac", "mov": "aac", "webm": "libopus", "matroska": "libopus"}
OPUS_RATES = (48000, 24000, 16000, 12000, 8000)


@dataclass
class _Route:
    """Where one input audio stream goes: copied as is, or decoded then re-encoded."""

    source: AudioStream
    target: AudioStream
    reencode: bool
    last_dts: int | None = None      # the last decode time muxed (the input stream's time base)
    started: bool = False            # a whole frame went out (MP4 drops what comes before one)


class AudioCopier:
    """Copies every audio stream of `input_path` into `output`; call before the output's first mux. `start`:
    the input's second that the output's time 0 stands for (packets that end before it are left out)."""

    def __init__(self, input_path: str, output: OutputContainer, container: str, start: float = 0.0) -> None:
        try:
            self._input = open_input(input_path)       # as the video was opened: a dead server must not hang us
        except (av.FFmpegError, OSError) as e:
            raise P3MError(f"cannot reopen {input_path} to copy its audio: {e}",
                           "pass --no-audio to skip the audio") from None
        self._output, self._container, self._name = output, container, input_path
        self._routes: dict[int, _Route] = {}
        try:
            self._add_routes(container)
        except (av.FFmpegError, ValueError) as e:     # e.g. no encoder for this layout or rate
            self._input.close()
            raise P3MError(f"cannot carry the audio of {input_path} into a {container} file: {e}",
                           "pass --no-audio to drop the audio, or choose .mkv (takes any codec as is)") from None
        self._start = start
        self._packets = self._demux() if self._routes else iter(())
        self._pending: av.Packet | None = None

    def _demux(self) -> Iterator[av.Packet]:
        """The audio packets from `start` on (the one playing at `start` included), times shifted by it."""
        streams = [r.source for r in self._routes.values()]
        if self._start > 0:
            # A second early (the container's clock, in µs): the packet playing at `start` may be stored before
            # the keyframe a seek to `start` would land on.
            try:
                self._input.seek(int(max(0.0, self._start - 1.0) * 1_000_000), backward=True)
            except (av.FFmpegError, OSError):
                pass         # not seekable: the packets before `start` are read and left out below
        for packet in self._input.demux(*streams):
            if self._start > 0 and packet.pts is not None and packet.time_base is not None:
                shift = round(self._start / packet.time_base)
                if packet.pts + (packet.duration or 0) <= shift:
                    continue
                packet.pts -= shift
                if packet.dts is not None:
                    packet.dts -= shift
            yield packet

    def _add_routes(self, container: str) -> None:
        """Copy each audio stream the container accepts as is; re-encode the others (with a warning)."""
        copyable = COPYABLE.get(container, self._output.supported_codecs)
        for source in self._input.streams.audio:
            name = source.codec_context.name
            if name in copyable:
                target = self._output.add_stream_from_template(source)
                self._routes[source.index] = _Route(source, target, reencode=False)
            else:
                target = self._add_encoder(source, REENCODE_TO.get(container, "aac"))
                self._routes[source.index] = _Route(source, target, reencode=True)
                log.warning("audio stream %d (%s) cannot go into %s as is: re-encoding it to %s",
                            source.index, name, container, target.codec_context.name)

    def _add_encoder(self, source: AudioStream, codec: str) -> AudioStream:
        rate = source.rate or 48000
        if codec == "libopus" and rate not in OPUS_RATES:
            rate = 48000
        target = self._output.add_stream(codec, rate=rate)
        # Opus and AAC take mono and stereo everywhere; keep those, fold anything wider to stereo.
        target.layout = "mono" if source.channels == 1 else "stereo"
        if source.bit_rate:
            target.bit_rate = min(source.bit_rate, 256_000)
        return target

    def mux_until(self, seconds: float | None) -> None:
        """Mux audio packets whose decode time is at most `seconds` (all of them when None)."""
        while True:
            if self._pending is None:
                self._pending = next(self._packets, None)
                if self._pending is None:
                    return
            packet = self._pending
            if not packet.size:           # demuxer's flush packets carry nothing to copy
                self._pending = None
                continue
            when = packet.dts if packet.dts is not None else packet.pts     # a parser may leave dts unset
            if seconds is not None and when is not None and when * packet.time_base > seconds:
                return
            self._pending = None
            self._mux(packet)

    def _mux(self, packet: av.Packet) -> None:
        route = self._routes[packet.stream.index]
        if not route.reencode:
            _rising_times(packet, route)
            self._warn_if_dropped(packet, route)
            packet.stream = route.target
            self._output.mux(packet)
        else:
            for frame in packet.decode():
                self._output.mux(route.target.encode(frame))

    def _warn_if_dropped(self, packet: av.Packet, route: _Route) -> None:
        """MP4 and MOV keep AC3/E-AC3 only from the first whole frame: FFmpeg's muxer drops a file's leading
        partial frame (a cut made mid-frame) without a word; say so, with where to keep it."""
        if route.started or self._container not in ("mp4", "mov"):
            return
        if route.source.codec_context.name not in ("ac3", "eac3") or bytes(packet)[:2] == b"\x0b\x77":
            route.started = True
            return
        when = float((packet.pts or 0) * packet.time_base)
        log.warning("%s: audio stream %d starts with %d bytes that are not a whole %s frame (at %.3f s); %s files "
                    "cannot hold them and they are left out: write .mkv to keep every audio packet", self._name,
                    route.source.index, packet.size, route.source.codec_context.name.upper(), when,
                    self._container.upper())

    def finish(self, until: float | None = None) -> None:
        """Mux the remaining audio (only up to `until` seconds after an interruption), flush encoders."""
        self.mux_until(until)
        for route in self._routes.values():
            if route.reencode:
                for frame in route.source.codec_context.decode(None):
                    self._output.mux(route.target.encode(frame))
                self._output.mux(route.target.encode(None))

    def close(self) -> None:
        """Close the second opening of the input."""
        self._input.close()


def _rising_times(packet: av.Packet, route: _Route) -> None:
    """Give `packet` a decode time above the stream's last: a parser may leave it unset or repeat it (AVI audio
    chunks that do not match the codec's frames), which muxers refuse; the packet itself is kept whole."""
    dts = packet.dts if packet.dts is not None else packet.pts
    if dts is None or (route.last_dts is not None and dts <= route.last_dts):
        dts = 0 if route.last_dts is None else route.last_dts + 1
        packet.dts = dts
        if packet.pts is None or packet.pts < dts:
            packet.pts = dts
    route.last_dts = dts
