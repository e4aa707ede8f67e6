"""Build folders as transactions: a build either replaces ``DIR`` whole or leaves it untouched.

A build writes into ``DIR.partial/``. When it succeeds, that folder replaces ``DIR`` (whatever an
earlier build left there goes with it). When it fails or is interrupted after writing something,
it becomes ``DIR.failed/``, with its logs and partial products for debugging, and ``DIR`` stays
as it was. ``DIR.lock`` (holding the builder's process id) refuses a second build into the same
folder while one runs; a lock whose process is gone is taken over.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from debut.errors import ArtifactError

__all__ = ["BuildFolder", "write_error"]

# errors of the file system that are the environment's, not a bug: told in one line
_ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS}


def write_error(exc: OSError, where: Path) -> ArtifactError | None:
    """The one-line error for ``exc`` raised while writing under ``where``, when the file
    system (full, read-only, no permission) rather than the code caused it; else None."""
    if exc.errno not in _ENVIRONMENT_ERRNOS:
        return None
    target = exc.filename or where
    return ArtifactError(
        f"cannot write {target}: {exc.strerror}; free space or choose another --out"
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class BuildFolder:
    """The folders of one build into ``final`` (see the module's documentation). Use as a context
    manager: entering takes the lock and makes a fresh ``work`` folder; :meth:`commit` puts the
    work in place, :meth:`abandon` moves it aside; leaving releases the lock."""

    def __init__(self, final: Path) -> None:
        final = Path(final)
        here = Path.cwd().resolve()
        if final.resolve() == here or final.resolve() in here.parents:
            raise ArtifactError(
                f"the output folder must be a folder of its own, not {str(final)!r} (the current "
                "folder or one that holds it: a build replaces its folder whole)"
            )
        if final.exists() and not final.is_dir():
            raise ArtifactError(f"the output folder {final} is a file; choose another --out")
        self.final = final
        self.work = final.with_name(final.name + ".partial")
        self.failed = final.with_name(final.name + ".failed")
        self.lock = final.with_name(final.name + ".lock")
        self._locked = False

    def __enter__(self) -> BuildFolder:
        try:
            self.final.parent.mkdir(parents=True, exist_ok=True)
            self._take_lock()
            shutil.rmtree(self.work, ignore_errors=True)
            self.work.mkdir()
        except OSError as exc:
            self._release()
            raise ArtifactError(
                f"cannot write in {self.final.parent}: {exc.strerror}; choose another --out"
            ) from None
        return self

    def _take_lock(self) -> None:
        for _ in range(2):
            try:
                fd = os.open(self.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    pid = int(self.lock.read_text().strip() or 0)
                except (OSError, ValueError):
                    pid = 0
                if pid and pid != os.getpid() and _alive(pid):
                    raise ArtifactError(
                        f"another build (process {pid}) is writing {self.final}; wait for it to "
                        f"end, or delete {self.lock} if that process is not a build"
                    ) from None
                self.lock.unlink(missing_ok=True)  # left by a build that is gone
                continue
            with os.fdopen(fd, "w") as f:
                f.write(f"{os.getpid()}\n")
            self._locked = True
            return
        raise ArtifactError(f"cannot take the lock {self.lock}; delete it and build again")

    def _release(self) -> None:
        if self._locked:
            self.lock.unlink(missing_ok=True)
            self._locked = False

    def __exit__(self, *exc_info) -> None:
        self._release()

    def commit(self) -> None:
        """Put the work in place of ``final``; an earlier ``failed`` folder goes too."""
        old = self.final.with_name(f"{self.final.name}.old-{os.getpid()}")
        if self.final.exists():
            os.replace(self.final, old)
        os.replace(self.work, self.final)
        shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(self.failed, ignore_errors=True)

    def abandon(self) -> Path | None:
        """Leave ``final`` untouched; the work becomes ``failed`` when it holds anything (which
        is returned), else it is removed."""
        if not self.work.is_dir():
            return None
        if not any(self.work.iterdir()):
            self.work.rmdir()
            return None
        shutil.rmtree(self.failed, ignore_errors=True)
        os.replace(self.work, self.failed)
        return self.failed
