"""The run directory: everything one training run produces, resumable after any crash.

Layout::

    RUN_DIR/
      manifest.json    resolved config, versions, constitution hash, backends, seeds,
                       per-stage state (generations, wall_seconds, usage), checkpoints
      <stage>.jsonl    one file per stage output, one row per line, each with a stable ``id``
      filtered.jsonl   every row a filter rejected, with its reasons
      quality.json     kept, dropped and cleaned counts by reason, per stage
      metrics.jsonl    training steps and stage summaries
      events.jsonl     what happened when (stage start and end, errors, warnings)
      .lock            held by the one process writing this run

The manifest is replaced atomically (temp file, fsync, rename); rows are appended (see
:mod:`opencharacter.jsonl`). Every file passes through secret redaction on its way to disk.
A resumed stage asks :meth:`RunDir.done_ids` which rows exist and produces only the others.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from opencharacter.errors import DataError, RunLockedError
from opencharacter.jsonl import JsonlWriter, read_jsonl
from opencharacter.redact import redact_mapping, redact_text, secret_values
from opencharacter.registry import available_backends
from opencharacter.types import Checkpoint, TokenUsage

MANIFEST = "manifest.json"
FILTERED = "filtered"
METRICS = "metrics"
EVENTS = "events"
SCHEMA_VERSION = 1


def tracked_distributions() -> tuple[str, ...]:
    """The core, then what each installed backend plugin names (its own and what it runs on)."""
    names = ["opencharacter"]
    for spec in available_backends().values():
        names.extend(spec.distributions)
    return tuple(dict.fromkeys(names))


def installed_versions(distributions: Iterable[str] | None = None) -> dict[str, str]:
    """Return the installed version of each distribution that is present (none are imported).

    By default, of :func:`tracked_distributions`.
    """
    found = {}
    for name in tracked_distributions() if distributions is None else distributions:
        with contextlib.suppress(PackageNotFoundError):
            found[name] = version(name)
    return found


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _new_manifest() -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "created": _now(),
        "versions": installed_versions(),
        "config": {},
        "constitution": None,
        "backends": {},
        "seed": None,
        "stages": {},
        "checkpoints": {},
    }


def write_json_atomic(path: Path, data: Any) -> None:
    """Replace ``path`` with ``data`` as JSON so readers see the old or the new file, never half.

    The text goes to a temporary file in the same folder, is fsynced, renamed over ``path``,
    and the folder is fsynced so the rename itself survives a power cut.
    """
    text = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class RunDir:
    """An open run directory, locked for this process until :meth:`close`.

    Use :meth:`open`, preferably as a context manager::

        with RunDir.open("runs/sarcasm") as run:
            done = run.done_ids("distill")
            run.append("distill", {"id": "...", ...})

    Attributes:
        path: the folder.
        manifest: the manifest as a dictionary; change it through the methods below, or
            change it directly and call :meth:`save_manifest`.
    """

    def __init__(self, path: Path, lock: IO[str], manifest: dict[str, Any]) -> None:
        self.path = path
        self.manifest = manifest
        self._lock = lock
        self._writers: dict[str, JsonlWriter] = {}
        self._secrets: tuple[str, ...] | None = None

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, create: bool = True) -> RunDir:
        """Open (and, if ``create``, make) the run directory at ``path`` and lock it.

        Raises:
            RunLockedError: another live process holds the run.
            DataError: the folder does not exist (and ``create`` is False), or its manifest is
                unreadable.
        """
        path = Path(path).absolute()  # paths recorded in the run hold from any working directory
        if not create:
            _existing_manifest(path)
        path.mkdir(parents=True, exist_ok=True)
        lock = _acquire_lock(path)
        try:
            manifest = _read_manifest(path / MANIFEST)
        except BaseException:
            lock.close()
            raise
        run = cls(path, lock, manifest)
        if not (path / MANIFEST).exists():
            run.save_manifest()
        return run

    # Manifest -----------------------------------------------------------------------------

    def save_manifest(self) -> None:
        """Write the manifest atomically, secrets masked."""
        write_json_atomic(self.path / MANIFEST, redact_mapping(self.manifest, self.secrets))

    def stage(self, name: str) -> dict[str, Any]:
        """Return the manifest entry of stage ``name``, created empty if new."""
        stages: dict[str, dict[str, Any]] = self.manifest["stages"]
        return stages.setdefault(name, {"state": "pending"})

    def update_stage(self, name: str, **fields: Any) -> None:
        """Set fields of stage ``name`` in the manifest and save it."""
        self.stage(name).update(fields)
        self.save_manifest()

    def add_usage(self, name: str, usage: TokenUsage) -> None:
        """Add ``usage`` to stage ``name``'s token counts (saved with the next manifest write)."""
        entry = self.stage(name)
        total = TokenUsage(**entry.get("usage", {})) + usage
        entry["usage"] = total.to_dict()

    def record_checkpoint(self, name: str, checkpoint: Checkpoint) -> None:
        """Record a checkpoint under ``name`` (``"dpo"``, ``"sft"``...) and save the manifest."""
        self.manifest["checkpoints"][name] = checkpoint.to_dict()
        self.save_manifest()

    def checkpoint(self, name: str) -> Checkpoint | None:
        """Return the checkpoint recorded under ``name``, if any."""
        data = self.manifest["checkpoints"].get(name)
        return Checkpoint.from_dict(data) if data else None

    def save_section(self, name: str, key: str, value: Any) -> None:
        """Set ``key`` in the JSON file ``name`` and save it atomically.

        Per-stage reports live in one file each: ``save_section("quality", "distill", ...)``
        writes ``quality.json`` with a section per stage.
        """
        path = self.path / f"{name}.json"
        data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        data[key] = value
        write_json_atomic(path, redact_mapping(data, self.secrets))

    # Rows ---------------------------------------------------------------------------------

    def file(self, name: str) -> Path:
        """Return the path of the JSONL file called ``name`` (``"distill"`` -> distill.jsonl)."""
        return self.path / f"{name}.jsonl"

    def append(self, name: str, row: Mapping[str, Any]) -> None:
        """Append one row to file ``name``; it is on disk when this returns."""
        writer = self._writers.get(name)
        if writer is None:
            writer = JsonlWriter(self.file(name), transform=self._redactor(name))
            self._writers[name] = writer
        writer.append(row)

    def replace_rows(self, name: str, rows: Iterable[Mapping[str, Any]]) -> None:
        """Write file ``name`` anew with ``rows``, atomically (for files derived from others)."""
        writer = self._writers.pop(name, None)
        if writer is not None:
            writer.close()
        target = self.file(name)
        staging = target.with_name(f".{target.name}.tmp")
        staging.unlink(missing_ok=True)
        with JsonlWriter(staging, fsync_interval=float("inf"), transform=self._redactor(name)) as w:
            for row in rows:
                w.append(row)
        staging.replace(target)

    def rows(self, name: str) -> Iterator[dict[str, Any]]:
        """Yield the rows of file ``name`` in the order they were written."""
        return read_jsonl(self.file(name))

    def done_ids(self, *names: str) -> set[str]:
        """Return the ids already written to the named files, for resuming a stage."""
        return {row["id"] for name in names for row in self.rows(name) if "id" in row}

    def record_filtered(
        self, stage: str, row: Mapping[str, Any], reasons: Iterable[str | Sequence[str]]
    ) -> None:
        """Keep a rejected row with why it was rejected (codes, or ``(where, code)`` pairs)."""
        reasons = [r if isinstance(r, str) else list(r) for r in reasons]
        self.append(FILTERED, {"stage": stage, "reasons": reasons, **row})

    def log_metrics(self, metrics: Mapping[str, Any]) -> None:
        """Append a metrics record (a training step, a stage summary) to ``metrics.jsonl``."""
        self.append(METRICS, {"time": _now(), **metrics})

    def event(self, kind: str, **fields: Any) -> None:
        """Append an event (stage started, error, warning) to ``events.jsonl``."""
        self.append(EVENTS, {"time": _now(), "event": kind, **fields})

    # Lifecycle ------------------------------------------------------------------------------

    @property
    def secrets(self) -> tuple[str, ...]:
        """The secret values to mask, read once from the environment."""
        if self._secrets is None:
            self._secrets = secret_values()
        return self._secrets

    def _redactor(self, name: str) -> Callable[[str], str]:
        # Key shapes are matched only in small records that may quote config or errors.
        shapes = name in {EVENTS, METRICS}
        return lambda line: redact_text(line, self.secrets, shapes=shapes)

    def close(self) -> None:
        """Flush and close every file, save the manifest and release the lock."""
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
        if not self._lock.closed:
            self.save_manifest()
            self._lock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def read_manifest(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Return a run's manifest without taking its lock, for readers beside the writing process.

    The writer replaces the manifest atomically, so this is always one consistent version.

    Raises:
        DataError: ``run_dir`` is not a run directory, or its manifest is unreadable.
    """
    return _read_manifest(_existing_manifest(Path(run_dir)))


def _existing_manifest(run_dir: Path) -> Path:
    """Return the run's manifest path, or say plainly that ``run_dir`` holds no run."""
    path = run_dir / MANIFEST
    if not path.exists():
        msg = f"{run_dir} is not a run directory (no {MANIFEST}); check the path"
        raise DataError(msg)
    return path


def _acquire_lock(path: Path) -> IO[str]:
    """Take the run's exclusive lock; the OS releases it if the process dies, even by kill -9."""
    handle = (path / ".lock").open("a+", encoding="utf-8")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        msg = (
            f"The run directory {path} is in use by another process (pid {holder}). "
            "Wait for it to finish or stop it, or choose another --run-dir."
        )
        raise RunLockedError(msg) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def _read_manifest(path: Path) -> dict[str, Any]:
    if not path.exists():
        return _new_manifest()
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        msg = f"{path}: the manifest is not valid JSON ({exc}); restore it or start a new run"
        raise DataError(msg) from exc
    if not isinstance(manifest, dict) or manifest.get("schema_version") != SCHEMA_VERSION:
        msg = f"{path}: not an opencharacter manifest of schema version {SCHEMA_VERSION}"
        raise DataError(msg)
    for key, default in _new_manifest().items():
        manifest.setdefault(key, default)
    return manifest
