"""Effective configuration: defaults < user TOML < project ``.codeassist.toml`` < environment.

Every value remembers where it came from so ``codeassist config`` can explain it. Secrets (the API
token) are not config: they live in ``client/auth.py``.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from codeassist.client import paths

__all__ = ["DEFAULT_SERVER_URL", "Config", "ConfigError", "load_config", "set_user_value", "user_config_file"]

DEFAULT_SERVER_URL = "http://127.0.0.1:8000/v1"
PROJECT_FILE = ".codeassist.toml"


class ConfigError(ValueError):
    pass


@dataclass
class Config:
    server_url: str = DEFAULT_SERVER_URL
    # Served model id; empty means "ask /v1/models and take the first".
    model: str = ""
    # FIM family: auto | qwen | starcoder2 | deepseek | codellama | plain
    family: str = "auto"
    max_tokens: int = 64
    temperature: float = 0.0
    connect_timeout: float = 1.0
    first_token_timeout: float = 5.0
    total_timeout: float = 15.0
    # Prompt budget in tokens for the context engine (1024..4096).
    budget: int = 2048
    # Daemon exits after this many seconds with no editor connected.
    idle_timeout: float = 1800.0
    # Adaptive debounce bounds (ms).
    debounce_min_ms: float = 10.0
    debounce_max_ms: float = 400.0
    # Completion engine: "adaptive" (adaptive debounce, in-flight joining, cache with typing-through,
    # prefetch) or "fixed" (a plain fixed debounce of debounce_fixed_ms, cancel on every keystroke, an
    # exact prompt/position LRU, no typing-through or prefetch: the comparison baseline).
    engine_mode: str = "adaptive"
    debounce_fixed_ms: float = 350.0
    # Completion cache bounds (shared by every editor on the daemon).
    cache_entries: int = 1000
    cache_bytes: int = 4 * 1024 * 1024
    # Endpoints tried in order: names of [endpoints.*] tables, or "default" for server_url.
    fallback: list[str] = field(default_factory=lambda: ["default"])
    tunnel_host: str = ""
    tunnel_remote_port: int = 8000
    tunnel_local_port: int = 18000
    # Extra ssh settings for the tunnel: port (0 = ssh's default), identity file, `-o Key=Value` options.
    tunnel_ssh_port: int = 0
    tunnel_identity: str = ""
    tunnel_ssh_options: list[str] = field(default_factory=list)
    # Named endpoints for `fallback` (name -> base URL); "default" is server_url, "tunnel" the SSH tunnel.
    endpoints: dict[str, str] = field(default_factory=dict)
    # CA bundle (PEM) to trust for HTTPS endpoints besides the system/certifi roots; empty = certifi.
    ca_bundle: str = ""
    # Seconds between background re-probes while no endpoint works (x5 to return to a preferred one).
    probe_interval: float = 2.0
    sources: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "sources"}


def _coerce(name: str, raw: Any, typ: Any) -> Any:
    try:
        if typ in ("int", int):
            return int(raw)
        if typ in ("float", float):
            return float(raw)
        if str(typ).startswith("dict"):
            if isinstance(raw, str):  # environment: "name=url,name2=url2"
                return dict(p.strip().split("=", 1) for p in raw.split(",") if "=" in p)
            return {str(k): str(v) for k, v in dict(raw).items()}
        if str(typ).startswith("list"):
            if isinstance(raw, str):
                return [p.strip() for p in raw.split(",") if p.strip()]
            return list(raw)
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"config key {name!r}: cannot use {raw!r} ({exc})") from None


def user_config_file() -> Path:
    override = os.environ.get("CODEASSIST_CONFIG")
    return Path(override) if override else paths.config_dir() / "config.toml"


def find_project_file(start: Path) -> Path | None:
    for d in (start, *start.parents):
        candidate = d / PROJECT_FILE
        if candidate.is_file():
            return candidate
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def load_config(project_dir: Path | None = None, env: dict[str, str] | None = None) -> Config:
    env = dict(os.environ) if env is None else env
    cfg = Config()
    known = {f.name: f for f in fields(Config) if f.name != "sources"}
    cfg.sources = {name: "default" for name in known}

    def apply(values: dict[str, Any], origin: str) -> None:
        for key, raw in values.items():
            if key not in known:
                continue  # other tables (endpoints, keys) belong to other modules
            setattr(cfg, key, _coerce(key, raw, known[key].type))
            cfg.sources[key] = origin

    ufile = user_config_file()
    if ufile.is_file():
        apply(_read_toml(ufile), str(ufile))
    pfile = find_project_file((project_dir or Path.cwd()).resolve())
    if pfile is not None:
        apply(_read_toml(pfile), str(pfile))
    apply(
        {k: env[f"CODEASSIST_{k.upper()}"] for k in known if f"CODEASSIST_{k.upper()}" in env},
        "environment",
    )
    if not 1024 <= cfg.budget <= 4096:
        raise ConfigError(f"budget must be within 1024..4096 tokens, got {cfg.budget}")
    cfg.server_url = cfg.server_url.rstrip("/")
    return cfg


def replace(cfg: Config, **changes: Any) -> Config:
    new = dataclasses.replace(cfg, **changes)
    new.sources = {**cfg.sources, **{k: "override" for k in changes}}
    return new


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_value(str(k))} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def set_user_value(key: str, value: Any) -> Path:
    """Set one top-level key in the user config file, keeping the rest of the file as it is."""
    known = {f.name for f in fields(Config) if f.name != "sources"}
    if key not in known:
        raise ConfigError(f"unknown config key {key!r}")
    path = user_config_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    new_line = f"{key} = {_toml_value(value)}"
    first_table = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("[")), len(lines))
    for i, ln in enumerate(lines[:first_table]):
        if ln.split("=", 1)[0].strip() == key:
            lines[i] = new_line
            break
    else:
        lines.insert(first_table, new_line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _read_toml(path)  # refuse to leave a broken file unnoticed
    return path
