"""Provider shapes: one JSON file per provider in editor_service/providers/ (or a lab's own file), loaded
and checked for unknown keys and the backend it serves (`Profile`); the backends and their default providers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

BACKENDS = ("openai-images", "openai-chat-image")
DEFAULT_PROVIDER = {"openai-images": "openai", "openai-chat-image": "openrouter"}
PROVIDERS_DIR = Path(__file__).resolve().parents[1] / "providers"
PROFILE_KEYS = {"name", "title", "backend", "source", "path", "models_path", "models_check", "auth", "query",
                "request_id_headers", "fields", "images", "prompt", "size", "options", "stream", "refusal",
                "takes_seed", "body", "reply"}


@dataclass
class Profile:
    """One provider's shape (a JSON file in providers/; the keys are described in providers/README.md)."""

    data: dict

    @classmethod
    def load(cls, name_or_path: str, backend: str) -> "Profile":
        path = Path(name_or_path)
        if not (path.suffix == ".json" and path.is_file()):
            path = PROVIDERS_DIR / f"{name_or_path}.json"
        if not path.is_file():
            known = sorted(p.stem for p in PROVIDERS_DIR.glob("*.json"))
            raise ValueError(f"--provider {name_or_path!r}: no such provider (known: {', '.join(known)}; or a path "
                             "to a provider's .json file)")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"--provider {path}: cannot read it ({exc})") from None
        unknown = sorted(set(data) - PROFILE_KEYS)
        if unknown:
            raise ValueError(f"--provider {path}: unknown key(s) {', '.join(unknown)}")
        if data.get("backend") != backend:
            raise ValueError(f"--provider {data.get('name', path.stem)} is a {data.get('backend')} provider, "
                             f"not {backend} (--backend)")
        return cls(data)

    def __getitem__(self, key):
        return self.data[key]

    def get(self, key, default=None):
        return self.data.get(key, default)

    @property
    def name(self) -> str:
        return self.data["name"]

    def field(self, name: str) -> str | None:
        return (self.data.get("fields") or {}).get(name)
