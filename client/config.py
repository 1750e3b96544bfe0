"""Effective configuration: defaults < user TOML < project ``.codeassist.toml`` < environment.

Every value remembers where it came from so ``codeassist config`` can explain it. Secrets (the API
token) are not config: they live in ``client/auth.py``.

A project file comes from whatever repository the user opened, so it is read as hostile input: only
``PROJECT_KEYS`` apply unless the user trusts the file (``client/trust.py``), ``TRUSTED_PROJECT_KEYS``
need that trust, and the daemon-wide keys (tunnel, idle timeout, debounce, cache) come from the user's
own config and environment only. Files other users could have written are never read.
"""

from __future__ import annotations

import dataclasses
import os
import stat
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from codeassist.client import paths, trust

__all__ = [
    "DEFAULT_SERVER_URL",
    "PROJECT_KEYS",
    "TRUSTED_PROJECT_KEYS",
    "Config",
    "ConfigError",
    "ProjectFile",
    "find_project_file",
    "load_config",
    "project_file_between",
    "read_project_file",
    "set_user_value",
    "unsafe_file_reason",
    "user_config_file",
]

DEFAULT_SERVER_URL = "http://127.0.0.1:8000/v1"
PROJECT_FILE = ".codeassist.toml"
MAX_CONFIG_BYTES = 256 * 1024

# What an untrusted repository may set: shapes the prompt and the answer, never where they go.
PROJECT_KEYS = frozenset({"family", "max_tokens", "temperature", "budget", "exclude"})
# Where code and keys go: only from a project file the user trusts (`codeassist trust`).
TRUSTED_PROJECT_KEYS = frozenset(
    {
        "server_url",
        "model",
        "endpoints",
        "fallback",
        "ca_bundle",
        "connect_timeout",
        "first_token_timeout",
        "total_timeout",
    }
)


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
    # On a slow llama-server (the built-in local model on a CPU) ask at each keystroke, no debounce: ghost text
    # ~200 ms sooner, ~4x the requests (busy cores while typing). false: the adaptive debounce there too.
    eager: bool = True
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
    # gitignore-style globs the context engine never reads (on top of the built-in secret patterns).
    exclude: list[str] = field(default_factory=list)
    # Send the API key over plain http:// to a host that is not loopback (user config only; off by default).
    allow_insecure_http: bool = False
    # Send aggregate acceptance counts (never code, file names or prompts) to a team gateway that collects them
    # (user config only).
    telemetry: bool = True
    sources: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    # key -> why a value for it was not used (untrusted project file, unsafe file, ...); `codeassist config`
    ignored: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    warnings: list[str] = field(default_factory=list, compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _META}


_META = frozenset({"sources", "ignored", "warnings"})


def _coerce(name: str, raw: Any, typ: Any) -> Any:
    try:
        if typ in ("bool", bool):
            if isinstance(raw, str):
                return raw.strip().lower() in ("1", "true", "yes", "on")
            return bool(raw)
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


def unsafe_file_reason(path: Path) -> str | None:
    """Why ``path`` must not be read as this user's config, or None when it is safe to read."""
    try:
        st = path.lstat()
    except OSError as exc:
        return f"cannot stat it ({exc.strerror})"
    if stat.S_ISLNK(st.st_mode):
        return "it is a symbolic link"
    if not stat.S_ISREG(st.st_mode):
        return "it is not a regular file"
    if st.st_uid != os.geteuid():
        return f"it is owned by uid {st.st_uid}, not by you"
    if st.st_mode & 0o022:
        return "other users can write it (chmod go-w)"
    return None


def find_project_file(start: Path, boundary: Path | None = None) -> Path | None:
    """The nearest ``.codeassist.toml`` from ``start`` up to ``boundary`` (the workspace root).

    Without a boundary (the CLI) the search stops at the repository root (a directory holding ``.git``)
    or at ``$HOME``; outside both it looks in ``start`` only, so a file in a shared directory above the
    project (another user's ``/tmp/.codeassist.toml``) never applies.
    """
    if boundary is None:
        home = Path.home().resolve()
        stops = (d for d in (start, *start.parents) if d == home or (d / ".git").exists())
        boundary = next(stops, start)  # the nearer of the repo root and $HOME
    found = project_file_between(str(start), str(boundary))
    return Path(found) if found is not None else None


def project_file_between(directory: str, boundary: str) -> str | None:
    """The nearest project file from ``directory`` up to ``boundary`` (inclusive), on plain strings with one
    lstat per level: the daemon runs this on every completion request."""
    d = directory
    while True:
        candidate = os.path.join(d, PROJECT_FILE)
        try:
            os.lstat(candidate)  # a symlink counts as found (and is then refused, with a warning)
            return candidate
        except OSError:
            pass
        parent = os.path.dirname(d)
        if d == boundary or parent == d or not d.startswith(boundary):
            return None
        d = parent


def parse_toml(data: bytes, path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def read_config_bytes(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(0, "not a regular file")
        data = os.read(fd, MAX_CONFIG_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_CONFIG_BYTES:
        raise OSError(0, f"larger than {MAX_CONFIG_BYTES} bytes")
    return data


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return parse_toml(read_config_bytes(path), path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror})") from None


@dataclass
class ProjectFile:
    """One project file as read: the values that apply and the ones that were ignored, with why."""

    path: Path
    trusted: bool = False
    values: dict[str, Any] = field(default_factory=dict)
    ignored: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def read_project_file(path: Path) -> ProjectFile:
    """Read a project file as untrusted input; raises ConfigError only for bad TOML in a trusted file."""
    pf = ProjectFile(path)
    if (why := unsafe_file_reason(path)) is not None:
        pf.warnings.append(f"codeassist: ignoring {path}: {why}")
        return pf
    try:
        data = read_config_bytes(path)
    except OSError as exc:
        pf.warnings.append(f"codeassist: ignoring {path}: cannot read it ({exc.strerror})")
        return pf
    pf.trusted = trust.is_trusted(path, data)
    values = parse_toml(data, path)
    known = {f.name for f in fields(Config) if f.name not in _META}
    for key, raw in values.items():
        if key not in known:
            continue  # other tables (endpoints, keys) belong to other modules
        if key in PROJECT_KEYS or (pf.trusted and key in TRUSTED_PROJECT_KEYS):
            pf.values[key] = raw
        elif key in TRUSTED_PROJECT_KEYS:
            pf.ignored[key] = "the project file is not trusted"
        else:
            pf.ignored[key] = "only your own config or environment may set it"
    untrusted = [k for k, why in pf.ignored.items() if why.startswith("the project")]
    if untrusted:
        pf.warnings.append(
            f"codeassist: {path} is not trusted, so its {', '.join(untrusted)} "
            f"{'is' if len(untrusted) == 1 else 'are'} ignored; if you trust this repository: "
            f"codeassist trust {path.parent}"
        )
    user_only = [k for k, why in pf.ignored.items() if not why.startswith("the project")]
    if user_only:
        pf.warnings.append(
            f"codeassist: {path} may not set {', '.join(user_only)}: "
            "set it in your own config (codeassist config) instead"
        )
    return pf


def load_config(
    project_dir: Path | None = None, env: dict[str, str] | None = None, boundary: Path | None = None
) -> Config:
    """User config, then the project file of ``project_dir`` (none when None), then the environment.

    The daemon passes no ``project_dir``: it serves many repositories and resolves each one's project
    file per request (``client/project.py``).
    """
    env = dict(os.environ) if env is None else env
    cfg = Config()
    known = {f.name: f for f in fields(Config) if f.name not in _META}
    cfg.sources = {name: "default" for name in known}

    def apply(values: dict[str, Any], origin: str) -> None:
        for key, raw in values.items():
            if key not in known:
                continue  # other tables (endpoints, keys) belong to other modules
            setattr(cfg, key, _coerce(key, raw, known[key].type))
            cfg.sources[key] = origin

    ufile = Path(env["CODEASSIST_CONFIG"]) if env.get("CODEASSIST_CONFIG") else user_config_file()
    if ufile.exists() or ufile.is_symlink():
        if (why := unsafe_file_reason(ufile)) is None:
            apply(_read_toml(ufile), str(ufile))
        else:
            cfg.warnings.append(f"codeassist: ignoring {ufile}: {why}")
    apply(
        {k: env[f"CODEASSIST_{k.upper()}"] for k in known if f"CODEASSIST_{k.upper()}" in env},
        "environment",
    )
    validate(cfg)
    pfile = find_project_file(project_dir.resolve(), boundary) if project_dir is not None else None
    return cfg if pfile is None else with_project(cfg, read_project_file(pfile))


def with_project(base: Config, project: ProjectFile) -> Config:
    """``base`` (user config + environment, as loaded) with a project file's values on top, below the
    environment: the daemon's per-document config, without reading the user's file again."""
    known = {f.name: f for f in fields(Config) if f.name not in _META}
    cfg = dataclasses.replace(base)
    cfg.sources = dict(base.sources)
    cfg.ignored = {**base.ignored, **{k: f"{project.path}: {why}" for k, why in project.ignored.items()}}
    cfg.warnings = [*base.warnings, *project.warnings]
    for key, raw in project.values.items():
        if key in known and base.sources.get(key) != "environment":
            setattr(cfg, key, _coerce(key, raw, known[key].type))
            cfg.sources[key] = str(project.path)
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    if not 1024 <= cfg.budget <= 4096:
        raise ConfigError(f"budget must be within 1024..4096 tokens, got {cfg.budget}")
    if not 1 <= cfg.max_tokens <= 1024:
        raise ConfigError(f"max_tokens must be within 1..1024, got {cfg.max_tokens}")
    cfg.server_url = cfg.server_url.rstrip("/")


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
    known = {f.name for f in fields(Config) if f.name not in _META}
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
