"""Prompts are versioned files: `NAME-vN.toml` with `version`, `system` and `user`.

Every answer records the prompt's version and the sha256 of its file, so an edit that forgot
to bump the version still shows up in the trace.
"""
from __future__ import annotations

import functools
import hashlib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from rag.errors import RagError

PROMPTS_DIR = Path(__file__).parent


@dataclass(frozen=True)
class Prompt:
    version: str
    sha: str
    system: str
    user: str

    def render(self, **values: str) -> list[dict]:
        """Fill `{name}` placeholders by plain replacement (document text may hold braces)."""
        # One pass, so a placeholder-like string inside a document is never filled in.
        user = re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), self.user)
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]


@functools.lru_cache(maxsize=None)
def load_prompt(version: str) -> Prompt:
    path = PROMPTS_DIR / f"{version}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PROMPTS_DIR.glob("*.toml")))
        raise RagError(f"unknown prompt version {version!r}; available: {known}")
    raw = path.read_bytes()
    data = tomllib.loads(raw.decode("utf-8"))
    if data.get("version") != version:
        raise RagError(f"{path} declares version {data.get('version')!r}; the file name says {version!r}")
    return Prompt(version, hashlib.sha256(raw).hexdigest()[:12], data["system"].strip(), data["user"].strip())


def available() -> list[str]:
    return sorted(p.stem for p in PROMPTS_DIR.glob("*.toml"))
