"""What a batch did: one result per video, the summary table, and the JSON or CSV report."""
from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Literal

from model.errors import P3MError

Status = Literal["done", "failed", "skipped", "cancelled"]
REPORT_FORMATS = (".json", ".csv")


@dataclass(frozen=True)
class VideoResult:
    """One video's outcome, in plain types (it travels back from worker processes and Ray nodes)."""

    input: str
    output: str
    status: Status
    frames: int = 0
    seconds: float = 0.0
    model: str = ""
    device: str = ""
    host: str = ""
    error: str = ""                   # the one-line reason a video failed

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


@dataclass
class BatchReport:
    """Every video's result, in input order, and how the batch ran."""

    videos: list[VideoResult]
    seconds: float
    engine: str
    workers: int
    interrupted: bool = False
    by_status: dict[str, list[VideoResult]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.by_status = {status: [v for v in self.videos if v.status == status]
                          for status in ("done", "failed", "skipped", "cancelled")}

    @property
    def done(self) -> list[VideoResult]:
        return self.by_status["done"]

    @property
    def failed(self) -> list[VideoResult]:
        return self.by_status["failed"]

    @property
    def skipped(self) -> list[VideoResult]:
        return self.by_status["skipped"]

    @property
    def cancelled(self) -> list[VideoResult]:
        return self.by_status["cancelled"]

    @property
    def frames(self) -> int:
        return sum(v.frames for v in self.done)

    @property
    def fps(self) -> float:
        """Frames written per second of the batch's wall time, over all workers."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def videos_per_minute(self) -> float:
        return 60 * len(self.done) / self.seconds if self.seconds > 0 else 0.0

    @property
    def exit_code(self) -> int:
        """130 after Ctrl-C, 1 when a video failed, else 0."""
        return 130 if self.interrupted else 1 if self.failed else 0

    def table(self) -> str:
        """The end-of-batch summary: videos, frames and seconds by status, then each failure's reason."""
        rows = [f"{'status':<10}{'videos':>8}{'frames':>10}{'seconds':>10}"]
        for status, videos in self.by_status.items():
            if videos:
                rows.append(f"{status:<10}{len(videos):>8}{sum(v.frames for v in videos):>10}"
                            f"{sum(v.seconds for v in videos):>10.1f}")
        rows.append(f"{self.frames} frames in {self.seconds:.1f} s: {self.fps:.1f} fps, "
                    f"{self.videos_per_minute:.1f} videos/min over {self.workers} {self.engine} worker"
                    f"{'s' if self.workers != 1 else ''}" + (" (interrupted)" if self.interrupted else ""))
        rows += [f"failed: {v.input}: {v.error}" for v in self.failed]
        return "\n".join(rows)

    def write(self, path: str | Path) -> None:
        """The report as JSON (the batch and its videos) or CSV (a row per video), by `path`'s extension."""
        check_report_path(path)
        rows = [{**asdict(v), "seconds": round(v.seconds, 3), "fps": round(v.fps, 3)} for v in self.videos]
        if Path(path).suffix.lower() == ".json":
            batch = {"engine": self.engine, "workers": self.workers, "seconds": round(self.seconds, 3),
                     "frames": self.frames, "fps": round(self.fps, 3), "interrupted": self.interrupted,
                     "exit_code": self.exit_code, "videos": rows}
            Path(path).write_text(json.dumps(batch, indent=2) + "\n")
            return
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=[*(x.name for x in fields(VideoResult)), "fps"])
            writer.writeheader()
            writer.writerows(rows)


def check_report_path(path: str | Path) -> None:
    """A report path ends in .json or .csv and its folder exists (checked before a batch starts)."""
    if Path(path).suffix.lower() not in REPORT_FORMATS:
        raise P3MError(f"cannot write a report to {path}", "name it report.json or report.csv")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise P3MError(f"the report's folder does not exist: {folder}", "create it first")
