"""``wallet-service backup`` / ``restore``: the embedded SQLite database, copied online with
SQLite's backup API, together with the instance folder's secrets and development
certificates, in one ``.tar.gz`` (README: Backups).

Without the instance folder a restored database is not enough: the generated secret key
signs every card link and download link, and the development certificates sign the passes
and authenticate the pushes, so a database restored without them serves links that no
longer open and passes that no longer verify. On PostgreSQL the database is backed up with
``pg_dump`` and these commands carry the instance folder alone.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from .errors import ConfigurationError

#: Inside the archive: the database copy, the instance files, and what the archive holds.
DATABASE = "database/wallet.db"
INSTANCE = "instance"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class BackupReport:
    path: Path
    database: bool  # whether the archive holds the database (SQLite)
    files: list[str]  # the instance files, relative to the folder


def sqlite_path(database_url: str) -> Path | None:
    """The file of a SQLite URL; ``None`` for another database."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return None
    if not url.database or url.database == ":memory:":
        raise ConfigurationError("an in-memory SQLite database cannot be backed up",
                                 field="WALLET_DATABASE_URL")
    return Path(url.database).resolve()


def _instance_files(instance: Path, database: Path | None) -> list[Path]:
    """Every file of the instance folder except the live database and its journals."""
    skip = set()
    if database is not None:
        skip = {database, Path(f"{database}-wal"), Path(f"{database}-shm"),
                Path(f"{database}-journal")}
    found = []
    for path in sorted(instance.rglob("*")):
        if path.is_file() and not path.is_symlink() and path.resolve() not in skip:
            found.append(path)
    return found


def backup(target: Path, *, instance: Path, database_url: str) -> BackupReport:
    """Write the archive ``target`` (mode 0600: it holds the secrets): an online copy of the
    SQLite database (writers may go on meanwhile) and the instance folder's files.

    :raises ConfigurationError: ``target`` exists already.
    """
    if target.exists():
        raise ConfigurationError(f"{target} exists already; give a new file name")
    database = sqlite_path(database_url)
    files = _instance_files(instance, database) if instance.is_dir() else []
    with tempfile.TemporaryDirectory(prefix="wallet-backup-") as work:
        copy = Path(work) / "wallet.db"
        if database is not None:
            _online_copy(database, copy)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as archive:
            manifest = {
                "format": 1,
                "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "database": DATABASE if database is not None else None,
                "instance_files": [str(p.relative_to(instance)) for p in files],
            }
            _add_bytes(archive, MANIFEST, json.dumps(manifest, indent=2).encode())
            if database is not None:
                archive.add(copy, DATABASE, recursive=False)
            for path in files:
                archive.add(path, f"{INSTANCE}/{path.relative_to(instance)}", recursive=False)
    return BackupReport(target, database is not None,
                        [str(p.relative_to(instance)) for p in files])


def _online_copy(source: Path, target: Path) -> None:
    """SQLite's backup API: a consistent copy while other connections read and write."""
    if not source.is_file():
        raise ConfigurationError(f"no database at {source}", field="WALLET_DATABASE_URL")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        with dst:
            src.backup(dst, pages=4096)
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file in the archive
    finally:
        dst.close()
        src.close()


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    info.mtime = int(dt.datetime.now(dt.UTC).timestamp())
    archive.addfile(info, io.BytesIO(data))


def restore(source: Path, *, instance: Path, database_url: str,
            force: bool = False) -> BackupReport:
    """Put the archive ``source`` back: the instance files into ``instance`` and the
    database (SQLite) into the configured file. Nothing is replaced unless ``force``: a
    restore over a live service is a mistake more often than not.

    :raises ConfigurationError: the archive is not a backup, or would replace files.
    """
    database = sqlite_path(database_url)
    with tarfile.open(source, mode="r:gz") as archive:
        try:
            manifest = json.loads(archive.extractfile(MANIFEST).read())  # type: ignore[union-attr]
        except (KeyError, AttributeError, ValueError):
            raise ConfigurationError(f"{source} is not a wallet-service backup") from None
        has_database = manifest.get("database") == DATABASE
        if has_database and database is None:
            raise ConfigurationError(
                "the backup holds a SQLite database but WALLET_DATABASE_URL is PostgreSQL; "
                "restore into SQLite, or move the data with your own tools",
                field="WALLET_DATABASE_URL")
        names = [str(n) for n in manifest.get("instance_files", [])]
        for name in names:
            if Path(name).is_absolute() or ".." in Path(name).parts:
                raise ConfigurationError(f"{source}: unsafe path {name!r}")
        targets = [instance / n for n in names]
        if has_database and database is not None:
            targets.append(database)
        present = [str(t) for t in targets if t.exists()]
        if present and not force:
            raise ConfigurationError(
                f"would replace {', '.join(present)}; restore into an empty folder, or "
                "stop the service and pass --force")
        instance.mkdir(parents=True, exist_ok=True, mode=0o700)
        for name in names:
            member = archive.extractfile(f"{INSTANCE}/{name}")
            if member is None:
                raise ConfigurationError(f"{source}: {name} is missing")
            target = instance / name
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(member, out)
        if has_database and database is not None:
            member = archive.extractfile(DATABASE)
            if member is None:
                raise ConfigurationError(f"{source}: the database is missing")
            with tempfile.TemporaryDirectory(prefix="wallet-restore-") as work:
                copy = Path(work) / "wallet.db"
                with open(copy, "wb") as out:
                    shutil.copyfileobj(member, out)
                _restore_database(copy, database)
    return BackupReport(source, has_database, names)


def _restore_database(copy: Path, database: Path) -> None:
    """Write ``copy`` into ``database`` through the backup API (it replaces the content
    page by page under SQLite's own locks), then leave WAL mode as the service sets it."""
    database.parent.mkdir(parents=True, exist_ok=True)
    if not database.exists():
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT, 0o600))
    src = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
    dst = sqlite3.connect(database)
    try:
        with dst:
            src.backup(dst)
    finally:
        dst.close()
        src.close()
