"""Secrets a process reads from its environment: a comma-separated variable, or a file of one
per line (blank lines and ``#`` comments skipped) named by another variable; never both.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SecretSource:
    inline_env: str
    file_env: str
    #: What the entries are, as errors name them ("encryption key", "codec server token").
    what: str
    error: type[Exception]

    def entries(self, environ: Mapping[str, str] | None = None) -> tuple[list[str], str] | None:
        """The configured entries, stripped, and where they came from; None when neither is set."""
        environ = os.environ if environ is None else environ
        inline = environ.get(self.inline_env, "").strip()
        file_name = environ.get(self.file_env, "").strip()
        if inline and file_name:
            raise self.error(f"Both {self.inline_env} and {self.file_env} are set: keep only one of them.")
        if inline:
            return [entry.strip() for entry in inline.split(",") if entry.strip()], self.inline_env
        if not file_name:
            return None
        try:
            text = Path(file_name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            reason = getattr(err, "strerror", None) or "not UTF-8 text"
            raise self.error(f"Cannot read the {self.what} file {file_name} ({reason}): fix {self.file_env}.") from None
        lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        return lines, f"the {self.what} file {file_name}"
