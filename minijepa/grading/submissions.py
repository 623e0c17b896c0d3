"""Submissions: folders, zips and folders of them, read once into memory.

A bad archive, an undecodable name or a symbolic link costs only its owner: the submission is kept with
no files and a note saying why.
"""

from __future__ import annotations

import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from .rules import EXERCISE_MODULES, MAX_FILE_BYTES

MAX_ZIP_MEMBERS = 5000
MAX_ZIP_BYTES = 64 * 1024 * 1024


@dataclass
class Submission:
    """One student's exercise files, read once into memory (``files``: module name -> bytes)."""

    name: str
    source: str
    files: dict[str, bytes] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _printable(text: str) -> str:
    """``text`` with what cannot be written as UTF-8 (a file name's undecodable bytes) replaced by U+FFFD."""
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that is not an escaped byte (e.g. from JSON)
        data = text.encode("utf-8", "replace")
    return data.decode("utf-8", "replace")


def _visible(path: Path) -> bool:
    return not path.name.startswith((".", "__")) and not path.is_symlink()


def _exercise_files(directory: Path) -> list[Path]:
    return [directory / f"{m}.py" for m in EXERCISE_MODULES if (directory / f"{m}.py").exists()]


def _locate(directory: Path, wrappers: bool) -> Path | None:
    """The folder holding the exercise files: ``directory``, its ``exercises/``, or (``wrappers``) inside
    a chain of single sub-folders, as zips made of one folder have."""
    for depth in range(4):
        if _exercise_files(directory):
            return directory
        nested = directory / "exercises"
        if nested.is_symlink():
            raise _Refused("exercises/ is a symbolic link: refused (submit the files themselves)")
        if nested.is_dir() and _exercise_files(nested):
            return nested
        subdirs = [p for p in directory.iterdir() if p.is_dir() and _visible(p)]
        zips = [p for p in directory.iterdir() if p.suffix == ".zip" and _visible(p)]
        if not wrappers or len(subdirs) != 1 or zips:
            return None
        directory = subdirs[0]
    return None


class _Refused(Exception):
    """A submission that is refused as a whole, for the reason given (not a grader error)."""


def _read(directory: Path, name: str, source: str, notes: list[str]) -> Submission:
    submission = Submission(name, source, notes=list(notes))
    for path in _exercise_files(directory):
        if path.is_symlink() or not path.is_file():
            submission.notes.append(f"{path.name} is not a regular file: ignored")
            continue
        with open(path, "rb") as handle:
            submission.files[path.stem] = handle.read(MAX_FILE_BYTES + 1)  # the scan flags oversized files
    return submission


def _extract(archive: Path, workdir: Path) -> tuple[Path, list[str]]:
    """Extract the .py and .zip members of ``archive`` safely (no absolute paths, no '..', size limits)."""
    target = Path(tempfile.mkdtemp(prefix="unzip-", dir=workdir))
    notes: list[str] = []
    try:
        with zipfile.ZipFile(archive) as zf:
            total = 0
            for info in zf.infolist()[:MAX_ZIP_MEMBERS]:
                name = info.filename.replace("\\", "/")
                parts = [p for p in name.split("/") if p not in ("", ".")]
                if info.is_dir() or not parts or not parts[-1].endswith((".py", ".zip")):
                    continue
                if name.startswith("/") or ".." in parts or any(":" in p for p in parts):
                    notes.append(f"{archive.name}: unsafe path {info.filename!r} ignored")
                    continue
                if parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts):
                    continue
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    notes.append(f"{archive.name}: symbolic link {info.filename!r} ignored")
                    continue
                limit = MAX_FILE_BYTES + 1 if parts[-1].endswith(".py") else MAX_ZIP_BYTES
                try:
                    with zf.open(info) as member:
                        data = member.read(limit)
                except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError) as error:
                    notes.append(f"{archive.name}: {info.filename!r} is damaged ({error}): ignored")
                    continue
                total += len(data)
                if total > MAX_ZIP_BYTES:
                    notes.append(f"{archive.name}: more than {MAX_ZIP_BYTES // 2**20} MB, the rest is ignored")
                    break
                dest = target.joinpath(*parts)
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(data)
            if len(zf.infolist()) > MAX_ZIP_MEMBERS:
                notes.append(f"{archive.name}: more than {MAX_ZIP_MEMBERS} files, the rest is ignored")
    except Exception as error:  # noqa: BLE001 - e.g. a member name flagged UTF-8 that is not: the zip is unreadable
        notes.append(f"{archive.name} is not a readable zip file ({type(error).__name__}: {_printable(str(error))[:200]})")
    return target, notes


def _open(path: Path, workdir: Path) -> tuple[Path, str, list[str]]:
    if path.is_file() and path.suffix.lower() == ".zip":
        root, notes = _extract(path, workdir)
        return root, path.stem, notes
    return path, path.name, []


def _one(path: Path, workdir: Path, notes: list[str], wrappers: bool) -> Submission:
    """The submission at ``path`` (a folder or a zip); a submission that cannot be read costs only itself."""
    name = _printable(path.stem if path.suffix.lower() == ".zip" else path.name)
    try:
        root, _, own_notes = _open(path, workdir)
        located = _locate(root, wrappers=wrappers)
        if located is None:
            expected = ", ".join(f"{m}.py" for m in EXERCISE_MODULES)
            return Submission(name, _printable(str(path)), notes=notes + own_notes + [f"no exercise files found (expected some of {expected})"])
        return _read(located, name, _printable(str(path)), notes + own_notes)
    except _Refused as refusal:
        return Submission(name, _printable(str(path)), notes=notes + [str(refusal)])
    except Exception as error:  # noqa: BLE001 - an unreadable folder or archive scores its owner zero, not the class
        return Submission(name, _printable(str(path)), notes=notes + [f"could not be read ({type(error).__name__}: {_printable(str(error))[:200]})"])


def find_submissions(paths: list[str | Path], workdir: str | Path) -> list[Submission]:
    """Submissions named by ``paths`` (folders, zips, or folders/zips of submissions, one per student).

    Zips are extracted into ``workdir``. A folder given directly is one submission if it (or its
    ``exercises/`` folder) holds exercise files; otherwise each sub-folder or zip in it is one student.
    A student's folder or zip that cannot be read (a damaged archive, an undecodable name, a symbolic link
    where a folder should be) becomes a submission with no files and a note saying why: it costs only its
    owner. Names that are not valid UTF-8 are shown with U+FFFD in their place.
    """
    workdir = Path(workdir)
    found: list[Submission] = []
    for given in paths:
        path = Path(given)
        if not path.exists():
            raise FileNotFoundError(f"no such submission: {path}")
        name = _printable(path.stem if path.suffix.lower() == ".zip" and path.is_file() else path.name)
        try:
            root, _, notes = _open(path, workdir)
            located = _locate(root, wrappers=path.is_file())
            if located is not None and path.is_symlink():
                raise _Refused(f"{name} is a symbolic link: refused (submit the files themselves)")
            if located is not None:
                found.append(_read(located, name, _printable(str(path)), notes))
                continue
        except _Refused as refusal:
            found.append(Submission(name, _printable(str(path)), notes=[str(refusal)]))
            continue
        except Exception as error:  # noqa: BLE001 - an unreadable submission given by name costs only its owner
            found.append(Submission(name, _printable(str(path)), notes=[f"could not be read ({type(error).__name__}: {_printable(str(error))[:200]})"]))
            continue
        try:
            children = sorted(
                p for p in root.iterdir()
                if not p.name.startswith((".", "__")) and (p.is_dir() or p.suffix.lower() == ".zip")
            ) if root.is_dir() else []
        except OSError as error:
            found.append(Submission(name, _printable(str(path)), notes=notes + [f"could not be read ({error})"]))
            continue
        if not children:
            found.append(Submission(name, _printable(str(path)), notes=notes + ["no exercise files found"]))
        for child in children:
            if child.is_symlink():  # it could point at the solutions: refused like a symbolic link file
                refusal = f"{_printable(child.name)} is a symbolic link: refused (submit the files themselves)"
                found.append(Submission(_printable(child.stem if child.suffix.lower() == ".zip" else child.name),
                                        _printable(str(child)), notes=notes + [refusal]))
            else:
                found.append(_one(child, workdir, notes, wrappers=True))
    seen: dict[str, int] = {}
    for submission in found:  # unique names
        count = seen.get(submission.name, 0) + 1
        seen[submission.name] = count
        if count > 1:
            submission.name = f"{submission.name}-{count}"
    return found
