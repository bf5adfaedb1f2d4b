"""Getting a model's file: from its official Google Drive id, a mirror URL, or a local file.

Google Drive and mirrors go through one call to gdown (its large-file confirmation page, Range resume of a
`.part` left by an interrupted run, retries, timeouts); the only difference is `id=` or `url=`.
"""
from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from model.errors import P3MError
from model.zoo.catalog import ModelEntry
from model.zoo.store import downloads_dir

TIMEOUT_S = (15, 60)      # connect, and between two bytes: a stalled server ends the command instead of hanging it
RETRIES = 2               # each resumes where the last stopped


def is_url(source: str) -> bool:
    return urlparse(source).scheme in ("http", "https")


def staging_path(model: ModelEntry, source: str) -> Path:
    """Where the download of `model` from `source` goes: one name per (model, source), so that a partial file
    from one mirror is never resumed from another."""
    tag = hashlib.sha1(source.encode()).hexdigest()[:10]
    suffix = ".safetensors" if urlparse(source).path.endswith(".safetensors") else ".pth"
    return downloads_dir() / f"{model.name}-{tag}{suffix}"


def download(model: ModelEntry, url: str | None = None, *, quiet: bool = False) -> Path:
    """Download `model` from `url`, or from its official Google Drive file when `url` is None, with a progress
    bar; a partial download from an earlier run resumes. P3MError for any failure."""
    import gdown
    import requests

    if url is None and model.drive_id is None:
        raise P3MError(f"{model.name} has no official download", f"install a file you have: p3m models download "
                                                                 f"{model.name} --from FILE_OR_URL")
    where = url or f"Google Drive file {model.drive_id}"
    dest = staging_path(model, url or f"gdrive:{model.drive_id}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    source = {"url": url} if url is not None else {"id": model.drive_id}
    try:
        with _ProgressBar(model.name, quiet) as progress:
            gdown.download(**source, output=str(dest), quiet=True, resume=True, use_cookies=False,
                           progress=progress, timeout=TIMEOUT_S, retries=RETRIES)
    except KeyboardInterrupt:
        print(f"download of {model.name} interrupted; run the same command again to resume it", file=sys.stderr)
        raise
    except gdown.exceptions.FileURLRetrievalError as e:
        reason = " ".join(str(e).split())
        raise P3MError(f"Google Drive did not hand out {model.name}: {reason[:200]}",
                       f"try again later, or download it in a browser and run: p3m models download {model.name} "
                       "--from FILE") from None
    except gdown.exceptions.DownloadError as e:
        raise P3MError(f"download of {model.name} from {where} stopped: {str(e).splitlines()[0]}",
                       "run the same command again: it resumes where it stopped") from None
    except requests.HTTPError as e:
        raise P3MError(f"download of {model.name} from {where} failed: HTTP {e.response.status_code} "
                       f"{e.response.reason}", "check the URL, or use another mirror or --from FILE") from None
    except requests.RequestException as e:
        raise P3MError(f"download of {model.name} from {where} failed: {type(e).__name__}",
                       "check the network connection (a partial download is kept and resumed), or use --from FILE") \
            from None
    return dest


class _ProgressBar:
    """A tqdm bar fed by gdown's progress callback, created on the first call (when a resume's offset is known)."""

    def __init__(self, name: str, quiet: bool) -> None:
        self.name, self.quiet, self.bar = name, quiet, None

    def __enter__(self) -> Callable[[int, int | None], None]:
        return self.update

    def update(self, done: int, total: int | None) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(desc=self.name, total=total, initial=done, unit="B", unit_scale=True,
                            unit_divisor=1024, disable=self.quiet, dynamic_ncols=True)
        else:
            self.bar.total = total
            self.bar.update(done - self.bar.n)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
