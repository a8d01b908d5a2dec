"""Per-process settings, read once from ``BRANDLOOP_*`` environment variables.

Per-run knobs (budget, count, model) travel with each request instead; see ``brandloop.agent.context``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import math
import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Final, Literal, TypeVar
from urllib.parse import unquote, unquote_plus, urlsplit

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    Strict,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from brandloop.errors import BadInputError, utf8_problem
from brandloop.policy_files import one_line

_PLACEHOLDER_SECRETS = {"changeme", "change-me", "your-key-here", "sk-...", "xxx", "secret"}
#: A key sent as ``Authorization: Bearer <key>``: printable ASCII, no blank at either end.
_BEARER_SAFE = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")
#: The longest retention age (``BRANDLOOP_ARTIFACT_RETENTION_DAYS``, ``gc --older-than``): a
#: century; past it no image is old enough to go anyway.
MAX_RETENTION_DAYS = 36_500
#: A tenant id (``BRANDLOOP_TENANT``, ``--tenant``, an API key's tenant): 1-64 ASCII letters,
#: digits, '-' or '_', exact (case kept). Data stored under any other id no key could reach.
TENANT_PATTERN: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TENANT_RULE: Final = "1-64 ASCII letters, digits, '-' or '_'"
#: The providers ``BRANDLOOP_PROVIDER_LIMITS`` may name: those the factory builds and wraps in
#: the resilience layer (a plugin provider brings its own).
LIMITED_PROVIDERS: Final = ("openai", "stability", "a1111", "comfyui", "procedural")
#: Each per-provider limit (``tools/providers/resilience.py`` ``ProviderLimits``): whether it is
#: a whole number, its least value and whether that value is allowed, its most.
PROVIDER_LIMIT_RULES: Final[dict[str, tuple[bool, float, bool, float]]] = {
    "concurrency": (True, 1, True, 256),
    "requests_per_minute": (False, 0, True, math.inf),
    "burst": (True, 1, True, 10_000),
    "max_attempts": (True, 1, True, 10),
    "backoff_initial_s": (False, 0, True, math.inf),
    "backoff_max_s": (False, 0, True, math.inf),
    "max_retry_after_s": (False, 0, True, math.inf),
    "breaker_failures": (True, 1, True, math.inf),
    "breaker_reset_s": (False, 0, True, math.inf),
    "deadline_s": (False, 0, False, math.inf),
}


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's members, refused (ValueError) when a key is given twice: the later
    would silently win."""
    keys = [key for key, _ in pairs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ValueError(f"{', '.join(map(repr, repeated))} given more than once")
    return dict(pairs)


class Settings(BaseSettings):
    """Everything a brandloop process needs to know about its environment."""

    model_config = SettingsConfigDict(env_prefix="BRANDLOOP_", extra="ignore", allow_inf_nan=False)

    data_dir: Path = Path(".brandloop")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file in the data dir"
    )
    chroma_path: Path | None = Field(default=None, description="default: <data_dir>/chroma")
    chroma_host: str | None = Field(
        default=None,
        description="a Chroma server's bare host name or IP address ([::1] for IPv6); "
        "default: the on-disk store",
    )
    chroma_port: int = Field(default=8000, ge=1, le=65535)
    artifacts_root: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("BRANDLOOP_ARTIFACTS_DIR", "artifacts_root"),
        description="a shared directory for artifacts; default: <data_dir>/artifacts",
    )

    # Scale-out (docs/runbook.md): the job queue, its broker and the job lease.
    queue: Literal["inprocess", "celery"] = "inprocess"
    redis_url: str = "redis://127.0.0.1:6379/0"
    celery_visibility_timeout_s: int = Field(default=3600, ge=1)
    job_lease_seconds: float = Field(default=30.0, gt=0)
    #: how often a Celery worker looks for a cancel of a job it runs (at most a third of the
    #: lease period): one primary-key read per running job each time
    job_cancel_poll_seconds: float = Field(default=1.0, gt=0)
    #: a review verdict's claim on the run it finishes (``agent/review_claims.py``): renewed
    #: every third of it while the verdict is applied; once it has lapsed (the process applying
    #: the verdict died), the next verdict or an API process's sweep finishes the run
    review_lease_seconds: float = Field(default=30.0, gt=0)
    #: ``brandloop serve`` and ``brandloop worker`` load the models at start, before taking
    #: work (``api/warmup.py``; ``/readyz`` says ``warming`` meanwhile); off: on first use
    warm_up: bool = Field(
        default=True, description="load the models at start (serve, worker), not on first use"
    )

    catalog_path: Path | None = Field(
        default=None,
        description="a model catalog YAML replacing the shipped one; default: "
        "<data_dir>/catalog.yaml when it exists, else the shipped catalog",
    )
    allow_preview: bool = Field(
        default=False,
        description="plan the procedural preview renderer even when a real provider is configured",
    )
    procedural_accent_chance: float = Field(
        default=0.35,
        ge=0.0,
        le=1.0,
        description="how often the procedural renderer adds an off-palette accent to a seed, as "
        "a real model misses a palette; 0 for a demo or a test that must not see a miss",
    )

    # Retention (agent/retention.py, `brandloop gc`): the newest checkpoints a finished run
    # keeps (0: none; its trace, attempts and result live in the registry, and nothing resumes
    # a finished run), and the age in days past which a tenant's unneeded images go, by tenant
    # ("*": every other one), e.g. BRANDLOOP_ARTIFACT_RETENTION_DAYS='{"acme": 30, "*": 90}'.
    # A file in the artifact store that no row names (its process killed inside the
    # transaction that would have recorded it) goes once it is older than this many seconds,
    # so a call being settled right now, its file written and its row not yet committed,
    # keeps it (BRANDLOOP_STRAY_GRACE_SECONDS, at least a minute, default an hour).
    checkpoint_keep: int = Field(default=0, ge=0, le=1000)
    # a JSON object read here (NoDecode), so a repeated tenant is refused, not the last kept;
    # each age a number (Strict: `true` was 1 day, "30" 30 days)
    artifact_retention_days: Annotated[dict[str, Annotated[float, Strict()]], NoDecode] = Field(
        default_factory=dict
    )
    stray_grace_seconds: float = Field(
        default=3600.0, ge=60.0, le=MAX_RETENTION_DAYS * 86400.0, allow_inf_nan=False
    )

    default_budget_usd: float = Field(default=0.50, ge=0)
    default_size: str = "1024x1024"
    max_iterations: int = Field(default=4, ge=1, le=20)
    tenant: str = "default"

    openai_api_key: SecretStr | None = None
    openai_base_url: str = "https://api.openai.com/v1"
    # Hosted text and image moderation, run in addition to the offline layers (off by default):
    # "openai" speaks POST {base}/moderations; key and base URL default to the OpenAI ones.
    moderation_provider: Literal["openai"] | None = None
    moderation_model: str = "omni-moderation-latest"
    moderation_api_key: SecretStr | None = None
    moderation_base_url: str | None = None
    stability_api_key: SecretStr | None = None
    stability_base_url: str = "https://api.stability.ai"
    a1111_base_url: str | None = None
    a1111_api_auth: SecretStr | None = Field(
        default=None, description="user:password when the WebUI runs with --api-auth"
    )
    comfyui_base_url: str | None = None
    comfyui_workflow: Path | None = Field(
        default=None, description="API-format workflow JSON with $prompt, $seed, ... slots"
    )
    comfyui_poll_interval_s: float = Field(default=1.0, gt=0)

    # Provider calls: timeouts, limits, retries and the circuit breaker. Each value is the
    # default for every provider; ``provider_limits`` overrides them per provider, e.g.
    # BRANDLOOP_PROVIDER_LIMITS='{"openai": {"concurrency": 8, "requests_per_minute": 50}}'.
    provider_connect_timeout_s: float = Field(default=10.0, gt=0)
    provider_timeout_s: float = Field(default=120.0, gt=0, description="read timeout per call")
    provider_deadline_s: float = Field(
        default=300.0, gt=0, description="one call's total time, retries and waits included"
    )
    provider_concurrency: int = Field(default=16, ge=1, le=256)
    provider_requests_per_minute: float = Field(default=0.0, ge=0, description="0: no limit")
    provider_max_attempts: int = Field(default=4, ge=1, le=10)
    provider_backoff_initial_s: float = Field(default=0.5, ge=0)
    provider_backoff_max_s: float = Field(default=20.0, ge=0)
    provider_breaker_failures: int = Field(default=5, ge=1)
    provider_breaker_reset_s: float = Field(default=30.0, ge=0)
    provider_limits: dict[str, dict[str, float]] = Field(default_factory=dict)

    # Content Credentials (docs/provenance.md). With none of the signer settings, images are
    # signed by a development CA made in the data dir on first use and reported untrusted.
    # A production signer is a certificate chain (PEM, signing certificate first) with either
    # the private key file or a remote HTTP signer that holds the key.
    c2pa_cert_chain: Path | None = None
    c2pa_private_key: Path | None = None
    c2pa_remote_url: str | None = Field(
        default=None, description="HTTP signer: POST the bytes to sign, answer the signature"
    )
    c2pa_remote_token: SecretStr | None = Field(
        default=None, description="bearer token for the remote signer"
    )
    c2pa_remote_timeout_s: float = Field(default=10.0, gt=0)
    c2pa_signing_alg: Literal["es256", "es384", "es512", "ps256", "ps384", "ps512", "ed25519"] = (
        "es256"
    )
    c2pa_tsa_url: str | None = Field(default=None, description="RFC 3161 time-stamping authority")
    c2pa_trust_anchors: Path | None = Field(
        default=None, description="PEM bundle of the root certificates verify trusts"
    )

    @field_validator("artifact_retention_days", mode="before")
    @classmethod
    def _one_age_per_tenant(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value, object_pairs_hook=_no_repeated_keys)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON: {exc.msg}") from None

    @field_validator("artifact_retention_days")
    @classmethod
    def _positive_ages(cls, value: dict[str, float]) -> dict[str, float]:
        # a key no tenant can have would keep that tenant's images for good, silently
        unknown = sorted(t for t in value if t != "*" and not TENANT_PATTERN.fullmatch(t))
        if unknown:
            raise ValueError(
                f"retention ages are per tenant id ({TENANT_RULE}) or '*' (every other), "
                f"not {unknown}"
            )
        bad = [tenant for tenant, days in value.items() if not 0 < days <= MAX_RETENTION_DAYS]
        if bad:
            raise ValueError(
                f"retention ages must be more than 0 days and at most {MAX_RETENTION_DAYS} "
                f"(not for {bad})"
            )
        return value

    @field_validator("provider_limits")
    @classmethod
    def _known_limits(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for provider, limits in value.items():
            if provider not in LIMITED_PROVIDERS:
                raise ValueError(
                    f"unknown provider {provider!r} (limits apply to "
                    f"{', '.join(LIMITED_PROVIDERS)})"
                )
            for name, number in limits.items():
                rule = PROVIDER_LIMIT_RULES.get(name)
                if rule is None:
                    raise ValueError(
                        f"{provider}: unknown limit {name!r} (known: "
                        f"{', '.join(PROVIDER_LIMIT_RULES)})"
                    )
                whole, least, least_allowed, most = rule
                fits = (number >= least if least_allowed else number > least) and number <= most
                if not math.isfinite(number) or not fits or (whole and number != int(number)):
                    kind = "a whole number" if whole else "a number"
                    bound = f"at least {least:g}" if least_allowed else f"more than {least:g}"
                    top = f" and at most {most:g}" if math.isfinite(most) else ""
                    raise ValueError(
                        f"{provider}.{name} must be {kind} {bound}{top}, not {number:g}"
                    )
        return value

    @field_validator(
        "openai_base_url",
        "stability_base_url",
        "a1111_base_url",
        "comfyui_base_url",
        "moderation_base_url",
        "c2pa_remote_url",
        "c2pa_tsa_url",
    )
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        problem = http_url_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("chroma_host")
    @classmethod
    def _chroma_host(cls, value: str | None) -> str | None:
        """A bare host: Chroma's client reads a scheme, a port, a path or a user into the URL
        it calls (or into nothing), and every message and record naming the server
        (``the Chroma server at HOST:PORT``) would hold a password given in it."""
        if value is None or not value.strip():
            return None
        problem = chroma_host_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        """A URL SQLAlchemy can open: one it cannot parse or whose database kind it does not
        know is refused here, naming the variable; the URL (its password) is never repeated."""
        if value is None:
            return None
        problem = database_url_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("data_dir")
    @classmethod
    def _data_dir(cls, value: Path) -> Path:
        """A directory, or a path one can be made at: not a file, nor below one."""
        for path in (value, *value.parents):
            if path.exists():
                if not path.is_dir():
                    where = "is" if path == value else f"is below {str(path)!r}, which is"
                    raise ValueError(f"{str(value)!r} {where} a file, not a directory")
                break
        return value

    @field_validator("tenant")
    @classmethod
    def _tenant_id(cls, value: str) -> str:
        utf8_text_setting(value)  # bytes that are not UTF-8 are named as such first
        if not TENANT_PATTERN.fullmatch(value):
            raise ValueError(f"tenant {value!r} must be {TENANT_RULE}")
        return value

    @field_validator("*")
    @classmethod
    def _utf8_text(cls, value: Any) -> Any:
        """Text settings are UTF-8 (paths may be any bytes the file system takes)."""
        return utf8_text_setting(value)

    @field_validator(
        "openai_api_key",
        "stability_api_key",
        "a1111_api_auth",
        "c2pa_remote_token",
        "moderation_api_key",
    )
    @classmethod
    def _no_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            return None  # `BRANDLOOP_OPENAI_API_KEY=` unsets a key; it does not configure one
        if value is not None and value.get_secret_value().strip().lower() in _PLACEHOLDER_SECRETS:
            raise ValueError("is a placeholder, not a real credential")
        return value

    @field_validator(
        "openai_api_key", "stability_api_key", "c2pa_remote_token", "moderation_api_key"
    )
    @classmethod
    def _header_safe(cls, value: SecretStr | None) -> SecretStr | None:
        """A key sent as a bearer token is printable ASCII: one with a line break, a control or
        a non-ASCII character could never be sent, and every call would fail. The value is
        never repeated in the message."""
        if value is not None and not _BEARER_SAFE.fullmatch(value.get_secret_value()):
            raise ValueError(
                "must be printable ASCII with no blank at either end (it holds a line break, a "
                "control or a non-ASCII character, or starts or ends with a blank)"
            )
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'brandloop.db').resolve()}"

    @property
    def resolved_chroma_path(self) -> Path:
        return self.chroma_path or self.data_dir / "chroma"

    @property
    def artifacts_dir(self) -> Path:
        return self.artifacts_root or self.data_dir / "artifacts"

    @property
    def thumbs_dir(self) -> Path:
        """The studio's thumbnails, made from the artifacts and removed with them."""
        return self.data_dir / "thumbs"

    @property
    def checkpoints_path(self) -> Path:
        return self.data_dir / "checkpoints.sqlite"


#: a host name: dot-separated labels of ASCII letters, digits, '-' and '_' (a container's
#: service name may hold one), neither end a '-'; an IPv4 address is one too
_HOST_NAME = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
    r"(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*"
)


def chroma_host_problem(host: str) -> str | None:
    """Why ``host`` is not a Chroma server's host (``BRANDLOOP_CHROMA_HOST``): a bare host
    name, an IPv4 address or a bracketed IPv6 one (``[::1]``), or None.

    The answer never repeats the value: one given as ``user:PASSWORD@host`` or with a
    ``?token=`` holds a credential, and the message reaches a terminal, a log or a CI
    transcript."""
    if _HOST_NAME.fullmatch(host):
        return None
    if host.startswith("[") and host.endswith("]"):
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(host[1:-1]).version == 6:
                return None
    return (
        "must be a bare host name or IP address, e.g. 127.0.0.1 or chroma.internal ([::1] "
        "for IPv6): no scheme, user, password, port, path or query (the port is "
        "BRANDLOOP_CHROMA_PORT)"
    )


def http_url_problem(url: str) -> str | None:
    """Why ``url`` is not a base URL a provider can be called at (``http`` or ``https`` with
    a host and no userinfo), or None. ``127.0.0.1:8000/v1`` - a URL missing its scheme - is the
    usual slip. Userinfo (``https://user:PASSWORD@gateway/v1``) is refused: httpx would send it
    as ``Authorization: Basic``, in place of the provider's configured key.

    The answer says what is wrong without repeating the URL or any part of it: a base URL may
    hold a password (``https://user:KEY@gateway/v1``) or a key in its query (``?api_key=``),
    and the message reaches a terminal, a log or a CI transcript."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError as exc:
        what = (
            "its IPv6 host is not closed by ']'"
            if "IPv6" in str(exc)
            else "its port is not a number from 0 to 65535"
        )
        return f"is not a URL: {what}"
    if parts.scheme not in ("http", "https"):
        found = "it has no scheme" if not parts.scheme else "it has another scheme"
        return (
            f"must be an http:// or https:// URL with a host ({found}; e.g. "
            "http://127.0.0.1:8080/v1)"
        )
    if not parts.hostname:
        return "must be an http:// or https:// URL with a host (it has none)"
    if "@" in parts.netloc:
        return (
            "must not hold a user name or password (a provider's key goes in its own setting, "
            "e.g. BRANDLOOP_OPENAI_API_KEY or BRANDLOOP_A1111_API_AUTH)"
        )
    return None


def database_url_problem(url: str) -> str | None:
    """Why ``url`` is not a database URL SQLAlchemy can open, or None; never repeats it."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return (
            "not a database URL (e.g. postgresql+psycopg://user:password@host/brandloop, "
            "sqlite:///path/brandloop.db)"
        )
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        return (
            f"unknown database kind {parsed.drivername!r} (use postgresql+psycopg:// or sqlite:///)"
        )
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        return f"the driver of {parsed.drivername!r} is not installed ({exc.name or exc})"
    return None


def utf8_text_setting(value: Any) -> Any:
    """``value`` (a parsed setting) unless it holds text that is not UTF-8: an environment
    variable's bytes that are not UTF-8 reach Python as surrogate escapes, which no database,
    HTTP header or JSON document takes."""
    texts: list[str] = []
    if isinstance(value, str):
        texts = [value]
    elif isinstance(value, SecretStr):
        texts = [value.get_secret_value()]
    elif isinstance(value, dict):
        texts = [key for key in value if isinstance(key, str)]
    elif isinstance(value, list):
        texts = [item for item in value if isinstance(item, str)]
    for text in texts:
        problem = utf8_problem(text)
        if problem is not None:
            raise ValueError(problem)
    return value


#: A configured credential shorter than this is not looked for in what users type: ordinary
#: text holds a short word or number by chance, and refusing it would say what the secret is.
MIN_CREDENTIAL_CHARS = 8
#: A URL's query parameter that carries a credential (``?api_key=``, ``?token=``, ``?sig=``);
#: the others (``?sslmode=``, ``?application_name=``) are ordinary words a brief may hold.
_SECRET_QUERY = re.compile(r"key|token|secret|pass|pwd|sig|auth|cred", re.IGNORECASE)


def url_credentials(url: str) -> list[str]:
    """The credentials a URL holds: its password and its credential-named query values, each
    as written in the URL and, where that differs, decoded (a server may echo either)."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return []
    found = [parts.password or ""]
    if parts.password:
        found.append(unquote(parts.password))
    for pair in parts.query.split("&"):
        raw_key, _, raw_value = pair.partition("=")
        if _SECRET_QUERY.search(unquote_plus(raw_key)):
            found += [raw_value, unquote_plus(raw_value)]
    return list(dict.fromkeys(value for value in found if value))


def _credentials(sources: Iterable[BaseSettings]) -> Iterator[tuple[str, str]]:
    """(value, variable) for every credential ``sources`` hold, however short."""
    for source in sources:
        prefix = str(source.model_config.get("env_prefix", ""))
        for name in type(source).model_fields:
            value = getattr(source, name)
            variable = f"{prefix}{name}".upper()
            if isinstance(value, SecretStr):
                secret = value.get_secret_value()
                yield secret, variable
                if name.endswith("_auth") and ":" in secret:
                    yield secret.split(":", 1)[1], variable
            elif isinstance(value, str) and name.endswith("_url"):
                for secret in url_credentials(value):
                    yield secret, variable


def configured_credentials(*sources: BaseSettings) -> dict[str, str]:
    """Every credential ``sources`` hold, each with the variable that holds it: each
    ``SecretStr`` setting (an ``A1111_API_AUTH``'s password on its own too), and the password
    and credential-named query values of each ``*_URL`` setting
    (``postgresql://user:PASSWORD@...``, ``https://gateway/v1?api_key=KEY``). What a user types is checked against them
    (:func:`credential_in`) before anything stores it or sends it to a provider; those shorter
    than :data:`MIN_CREDENTIAL_CHARS` are left out (:func:`credentials_to_redact` keeps them)."""
    found: dict[str, str] = {}
    for value, variable in _credentials(sources):
        if len(value) >= MIN_CREDENTIAL_CHARS:
            found.setdefault(value, variable)
    return found


def credentials_to_redact(*sources: BaseSettings) -> tuple[str, ...]:
    """The same credentials as :func:`configured_credentials`, short ones included: what is
    taken out of everything a provider sends back (``tools/providers/_http.py`` ``redact``)."""
    return tuple(dict.fromkeys(value for value, _ in _credentials(sources) if value))


def credential_in(text: str, credentials: dict[str, str]) -> str | None:
    """The variable whose credential ``text`` holds (whole), or None.

    Only a whole credential counts: a refusal for a part of one would let whoever types text
    find a key a few characters at a time."""
    for value, variable in credentials.items():
        if value in text:
            return variable
    return None


#: The most one LLM writer call may take by default, its retries included.
DEFAULT_WRITER_TIMEOUT_S = 20.0


class WriterSettings(BaseSettings):
    """The optional LLM prompt writer (``agent/writer.py``): off unless ``PROVIDER`` is set.
    Read, and refused when malformed, with the process's settings (:func:`get_settings`), so
    every command names a bad ``BRANDLOOP_WRITER_*`` variable, not only the ones that run."""

    model_config = SettingsConfigDict(
        env_prefix="BRANDLOOP_WRITER_", extra="ignore", allow_inf_nan=False
    )

    provider: Literal["openai", "ollama"] | None = None
    model: str = Field(default="", validate_default=True)
    base_url: str | None = None
    api_key: SecretStr | None = None
    temperature: float = Field(default=0.7, ge=0, le=2)
    #: The most one writer call may take, its retries included: a stalled writer cannot hold
    #: a run for minutes.
    timeout_s: float = Field(default=DEFAULT_WRITER_TIMEOUT_S, gt=0, le=300)
    #: Retries of a failed call by the client library (within ``timeout_s``).
    max_retries: int = Field(default=1, ge=0, le=5)

    @field_validator("model")
    @classmethod
    def _model_with_provider(cls, value: str, info: ValidationInfo) -> str:
        value = value.strip()
        if info.data.get("provider") is not None and not value:
            raise ValueError("is required with BRANDLOOP_WRITER_PROVIDER")
        return value

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        problem = http_url_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("model", "base_url", "api_key", mode="before")
    @classmethod
    def _utf8_text(cls, value: Any) -> Any:
        return utf8_text_setting(value)


S = TypeVar("S", bound=BaseSettings)


def load_settings(model: type[S]) -> S:
    """``model`` read from its environment variables; a value that does not parse or fit is
    one :class:`BadInputError` naming the variable, e.g. ``BRANDLOOP_PROVIDER_LIMITS: not
    valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)``."""
    prefix = str(model.model_config.get("env_prefix", ""))

    def variable(field: str) -> str:
        return field if field.upper().startswith(prefix.upper()) else f"{prefix}{field}".upper()

    try:
        return model()
    except SettingsError as exc:  # a JSON value (a mapping, a list) that is not JSON
        named = re.search(r'field "([^"]+)"', str(exc))
        where = variable(named.group(1)) if named else "a setting"
        cause = exc.__cause__
        parsing = str(exc).startswith("error parsing") and cause is not None
        detail = (
            f"not valid JSON: {cause}" if parsing else f"{exc}" + (f": {cause}" if cause else "")
        )
        raise BadInputError(f"{where}: {one_line(detail)}") from None
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        loc = [str(part) for part in first["loc"]]
        where = ".".join([variable(loc[0]), *loc[1:]]) if loc else "settings"
        message = one_line(str(first["msg"]).removeprefix("Value error, "))
        extra = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise BadInputError(f"{where}: {message}{extra}") from None


@lru_cache
def get_settings() -> Settings:
    """This process's settings; a malformed ``BRANDLOOP_*`` variable is a
    :class:`BadInputError` naming it (exit 2 in the CLI). The LLM writer's settings are read
    (and refused) here too, though only a run uses them."""
    settings = load_settings(Settings)
    get_writer_settings()
    return settings


def get_writer_settings() -> WriterSettings:
    """The LLM writer's settings (``BRANDLOOP_WRITER_*``); malformed: :class:`BadInputError`."""
    return load_settings(WriterSettings)
