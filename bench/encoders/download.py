"""url: sources: a weight file downloaded once over HTTP(S) into the bench cache, checked by sha256.

The file lands in $BENCH_HOME/downloads/<digest of the URL>/<its name>. The first full hash is
written beside it as NAME.sha256 (sha256sum's format); a later use compares the pin with that
record instead of hashing gigabytes again, unless the file is newer than its record (it changed).
A file whose hash is not the pinned one is refused, naming both hashes, and kept where it is:
nothing is deleted but the partial file of a failed download.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlsplit

from bench.encoders.weights import sha256_of
from benchutil.errors import BenchError
from benchutil.paths import bench_home

URL_PREFIX = "url:"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_TIMEOUT_S = 30


def download_dir() -> Path:
    return bench_home() / "downloads"


def url_of(source: str) -> str:
    """'url:https://host/path/file.pt' -> the URL, checked (http or https, a host, a file name)."""
    url = source.removeprefix(URL_PREFIX)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or not _file_name(url):
        raise BenchError(f"malformed encoder {source!r}: write url:https://HOST/PATH/FILE, "
                         "e.g. url:https://example.org/weights/vision.safetensors")
    return url


def check_pin(pin: str) -> str:
    """A pinned sha256 in lower case, or one line saying what a pin looks like."""
    if not _HEX64.fullmatch(pin.lower()):
        raise BenchError(f"sha256 pin {pin!r} is not a sha256 (64 hex digits); give the file's sha256sum")
    return pin.lower()


def _file_name(url: str) -> str:
    """The URL's last path segment as a safe local file name ('' when the URL names no file)."""
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    return re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")


def cached_path(url: str) -> Path:
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]  # two URLs with one file name stay apart
    return download_dir() / digest / _file_name(url)


def _record(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def fetch_url(source: str, pin: str | None) -> tuple[Path, str]:
    """(the local file, its sha256) of a url: source: downloaded on first use, then from the cache.
    pin: the sha256 the file must have (None: any, and its hash is returned for the provenance)."""
    url = url_of(source)
    expected = None if pin is None else check_pin(pin)
    path = cached_path(url)
    actual = _recorded_sha256(path) if path.is_file() else _download(url, path)
    if expected is not None and actual != expected:
        raise BenchError(f"{url} has sha256 {actual}, but the encoder pins {expected}: not the file pinned, so it "
                         f"is refused; check the URL and the pin (the download is kept at {path}; delete it to "
                         "download again)")
    return path, actual


def _recorded_sha256(path: Path) -> str:
    """The hash recorded beside the file, valid while the file is not newer; else hashed again."""
    record = _record(path)
    try:
        if record.stat().st_mtime_ns >= path.stat().st_mtime_ns:
            recorded = record.read_text(encoding="utf-8").split(maxsplit=1)[0]
            if _HEX64.fullmatch(recorded):
                return recorded
    except (OSError, IndexError):  # no record, or an empty one: hash the file
        pass
    return _write_record(path, sha256_of(path))


def _write_record(path: Path, sha256: str) -> str:
    _record(path).write_text(f"{sha256}  {path.name}\n", encoding="utf-8")
    return sha256


def _download(url: str, path: Path) -> str:
    """Stream url into a partial file beside `path`, hashing as it comes; complete -> renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    part = tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name + ".", suffix=".part", delete=False)
    try:
        with part, urllib.request.urlopen(urllib.request.Request(url, headers={"User-Agent": "robust-vlm-bench"}),
                                          timeout=_TIMEOUT_S) as response:
            expected_size = response.headers.get("Content-Length")
            size = 0
            for block in iter(lambda: response.read(1 << 20), b""):
                part.write(block)
                digest.update(block)
                size += len(block)
        if expected_size is not None and size != int(expected_size):
            raise BenchError(f"download of {url} stopped after {size} of {expected_size} bytes; run again")
        os.replace(part.name, path)
    except BenchError:
        Path(part.name).unlink(missing_ok=True)
        raise
    except (urllib.error.URLError, OSError, ValueError) as err:
        Path(part.name).unlink(missing_ok=True)
        reason = err if isinstance(err, urllib.error.HTTPError) else getattr(err, "reason", None) or err
        raise BenchError(f"cannot download {url} ({str(reason)[:200]}); check the URL and the network, or "
                         "download the file yourself and give its path") from None
    return _write_record(path, digest.hexdigest())
