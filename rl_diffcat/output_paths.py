"""Output paths checked before a long run starts, and a model saved somewhere when its path fails.

A run that trains for hours and then cannot write its model (its folder is a file, the disk is
full) must not lose the model: ``train`` and ``compare`` check their output paths up front, and
the final save falls back to a path it prints.
"""

from __future__ import annotations

import os
import tempfile
from typing import Callable, Optional


def _first_existing(path: str) -> str:
    """``path`` or its nearest existing ancestor folder."""
    path = os.path.abspath(path)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def check_writable_folder(folder: str, what: str, named: Optional[str] = None) -> None:
    """Raise ``ValueError`` unless ``folder`` is, or can be created as, a writable folder.

    :param folder: the folder a run will write into (it need not exist yet).
    :param what: how the user named it, for the message (``--results``, say).
    :param named: the path the user gave, when ``folder`` was derived from it.
    """
    existing = _first_existing(folder)
    if not os.path.isdir(existing):
        raise ValueError(f"{what} {named or folder}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{what} {named or folder}: {existing} is not writable")


def check_writable_file(path: str, what: str) -> None:
    """Raise ``ValueError`` unless a file can be written at ``path`` (its folder may not exist yet).

    :param path: the file a run will write.
    :param what: how the user named it, for the message (``--save-path``, say).
    """
    if os.path.isdir(path):
        raise ValueError(f"{what} {path} is a folder: give a file path")
    check_writable_folder(os.path.dirname(os.path.abspath(path)), what, named=path)


def save_with_fallback(save: Callable[[str], None], path: str, log: Optional[Callable[[str], None]] = print) -> str:
    """``save(path)``; when that fails with an ``OSError`` (a file where a folder should be, a full
    disk, no permission), ``save`` into the temporary folder instead and say where.

    :param save: writes the file at the path it is given (``model.save``, say).
    :param path: where the file should go; its folder is created.
    :param log: prints the one-line notice of the fallback.
    :return: the path the file was written to.
    """
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        save(path)
        return path
    except OSError as error:
        handle, fallback = tempfile.mkstemp(prefix="rl-diffcat-rescued-", suffix=f"-{os.path.basename(path)}")
        os.close(handle)
        try:
            save(fallback)
        except OSError as second:
            os.remove(fallback)
            raise OSError(f"could not save to {path} ({error}) nor to the fallback {fallback} ({second})") from error
        if log is not None:
            log(f"could not save to {path} ({error.strerror or error}); saved to {fallback} instead")
        return fallback
