"""Who signs the manifests: the development CA by default, a certificate chain with its key
file, or a remote HTTP signer that holds the key (e.g. a small service in front of a KMS).

Settings choose (``BRANDLOOP_C2PA_*``, ``docs/provenance.md``): a private key file means a
local signer, a remote URL a remote one, neither the development signer, both an error. The
chain (``BRANDLOOP_C2PA_CERT_CHAIN``, signing certificate first) is needed by both production
signers; the development signer is never used once either is configured.

Remote signing protocol: ``POST <url>`` with the bytes to sign as
``application/octet-stream`` (and ``Authorization: Bearer <token>`` when a token is set); a
200 answer's body is the signature (for ECDSA either DER or the raw ``r||s``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, Protocol

import c2pa
import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

from brandloop.domain import SignerKind
from brandloop.settings import Settings
from brandloop.tools.credentials.devca import dev_credentials
from brandloop.tools.credentials.errors import SignerConfigError

SigningAlg = Literal["es256", "es384", "es512", "ps256", "ps384", "ps512", "ed25519"]
_ALGS: Final[dict[str, c2pa.C2paSigningAlg]] = {
    "es256": c2pa.C2paSigningAlg.ES256,
    "es384": c2pa.C2paSigningAlg.ES384,
    "es512": c2pa.C2paSigningAlg.ES512,
    "ps256": c2pa.C2paSigningAlg.PS256,
    "ps384": c2pa.C2paSigningAlg.PS384,
    "ps512": c2pa.C2paSigningAlg.PS512,
    "ed25519": c2pa.C2paSigningAlg.ED25519,
}


@dataclass
class NativeSigner:
    """One c2pa signer for one signing, and what went wrong inside its callback (if any)."""

    signer: c2pa.Signer
    failures: list[str] = field(default_factory=list)


class ContentSigner(Protocol):
    """The seam the signing step uses; ``name`` is the signing certificate's subject."""

    kind: SignerKind
    name: str

    def native(self) -> NativeSigner: ...


def _certificates(chain_pem: str, source: str) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(chain_pem.encode())
    except ValueError as exc:
        raise SignerConfigError(f"{source} is not a PEM certificate chain") from exc
    if not certs:
        raise SignerConfigError(f"{source} holds no certificate")
    return certs


def subject_name(cert: x509.Certificate) -> str:
    """The certificate's common name, else its organisation, else the whole subject."""
    for oid in (NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME):
        values = cert.subject.get_attributes_for_oid(oid)
        if values:
            return str(values[0].value)
    return cert.subject.rfc4514_string()


def _same_key(key: PrivateKeyTypes, cert: x509.Certificate) -> bool:
    """Whether ``key`` is the private half of ``cert``'s public key."""
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return bool(key.public_key().public_bytes(*spki) == cert.public_key().public_bytes(*spki))


class KeyFileSigner:
    """Signs with a private key this process holds (the development signer, or a deployment's
    own key file)."""

    def __init__(
        self,
        *,
        chain_pem: str,
        key_pem: str,
        alg: SigningAlg,
        kind: SignerKind,
        tsa_url: str | None = None,
        source: str = "the certificate chain",
    ) -> None:
        certs = _certificates(chain_pem, source)
        try:
            key: PrivateKeyTypes = serialization.load_pem_private_key(key_pem.encode(), None)
        except (ValueError, TypeError) as exc:
            raise SignerConfigError(
                "the private key is not an unencrypted PEM key (PKCS#8 or traditional)"
            ) from exc
        if not _same_key(key, certs[0]):
            raise SignerConfigError(
                f"the private key does not belong to the first certificate of {source}"
            )
        self.kind: SignerKind = kind
        self.name = subject_name(certs[0])
        self._chain, self._key, self._alg, self._tsa = chain_pem, key_pem, alg, tsa_url

    def native(self) -> NativeSigner:
        info = c2pa.C2paSignerInfo(
            _ALGS[self._alg], self._chain.encode(), self._key.encode(), self._tsa
        )
        return NativeSigner(c2pa.Signer.from_info(info))


class RemoteSigner:
    """Signs through an HTTP signer; the key never enters this process. The c2pa library calls
    :meth:`_sign` from the signing thread, so the client is a synchronous ``httpx.Client``
    (injected, or one per signer URL for the process)."""

    kind: SignerKind = "remote"

    def __init__(
        self,
        *,
        url: str,
        chain_pem: str,
        alg: SigningAlg,
        client: httpx.Client | None = None,
        timeout_s: float = 10.0,
        token: SecretStr | None = None,
        tsa_url: str | None = None,
        source: str = "the certificate chain",
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise SignerConfigError("BRANDLOOP_C2PA_REMOTE_URL must be an http(s) URL")
        self.name = subject_name(_certificates(chain_pem, source)[0])
        self._url, self._chain, self._alg, self._tsa = url, chain_pem, alg, tsa_url
        self._client, self._timeout, self._token = client, timeout_s, token

    def _sign(self, data: bytes, failures: list[str]) -> bytes:
        headers = {"Content-Type": "application/octet-stream", "X-Signing-Alg": self._alg}
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        client = self._client or _remote_client(self._url, self._timeout)
        try:
            response = client.post(self._url, content=data, headers=headers)
        except httpx.HTTPError as exc:
            failures.append(f"remote signer unreachable ({type(exc).__name__})")
            raise
        if response.status_code != 200 or not response.content:
            failures.append(f"remote signer answered HTTP {response.status_code}")
            raise RuntimeError(failures[-1])
        return response.content

    def native(self) -> NativeSigner:
        failures: list[str] = []
        signer = c2pa.Signer.from_callback(
            lambda data: self._sign(data, failures), _ALGS[self._alg], self._chain, self._tsa
        )
        return NativeSigner(signer, failures)


def _read(path: Path, setting: str) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise SignerConfigError(f"{setting}: cannot read {path} ({type(exc).__name__})") from exc


_remote_clients: dict[tuple[str, float], httpx.Client] = {}
_remote_lock = threading.Lock()


def _remote_client(url: str, timeout_s: float) -> httpx.Client:
    """One client per remote signer per process (its connections are reused across runs)."""
    with _remote_lock:
        client = _remote_clients.get((url, timeout_s))
        if client is None:
            client = httpx.Client(timeout=timeout_s)
            _remote_clients[(url, timeout_s)] = client
        return client


def production_signer(
    settings: Settings, *, client: httpx.Client | None = None
) -> ContentSigner | None:
    """The production signer the settings configure, None when they configure none.

    Raises SignerConfigError for incomplete or contradictory settings and unusable files;
    makes no connection and writes nothing, so it doubles as a check before a run starts."""
    key, remote = settings.c2pa_private_key, settings.c2pa_remote_url
    chain = settings.c2pa_cert_chain
    if key is not None and remote is not None:
        raise SignerConfigError(
            "BRANDLOOP_C2PA_PRIVATE_KEY and BRANDLOOP_C2PA_REMOTE_URL are both set; "
            "choose one signer"
        )
    if key is None and remote is None:
        if chain is not None:
            raise SignerConfigError(
                "BRANDLOOP_C2PA_CERT_CHAIN needs BRANDLOOP_C2PA_PRIVATE_KEY or "
                "BRANDLOOP_C2PA_REMOTE_URL"
            )
        return None
    if chain is None:
        raise SignerConfigError("a production signer needs BRANDLOOP_C2PA_CERT_CHAIN (PEM)")
    chain_pem = _read(chain, "BRANDLOOP_C2PA_CERT_CHAIN")
    source = f"BRANDLOOP_C2PA_CERT_CHAIN ({chain})"
    if key is not None:
        return KeyFileSigner(
            chain_pem=chain_pem,
            key_pem=_read(key, "BRANDLOOP_C2PA_PRIVATE_KEY"),
            alg=settings.c2pa_signing_alg,
            kind="local",
            tsa_url=settings.c2pa_tsa_url,
            source=source,
        )
    return RemoteSigner(
        url=remote or "",
        chain_pem=chain_pem,
        alg=settings.c2pa_signing_alg,
        client=client,
        timeout_s=settings.c2pa_remote_timeout_s,
        token=settings.c2pa_remote_token,
        tsa_url=settings.c2pa_tsa_url,
        source=source,
    )


def signer_from_settings(
    settings: Settings, *, client: httpx.Client | None = None
) -> ContentSigner:
    """The production signer the settings configure, else the development signer (made in
    the data dir on first use). See the module docstring for the choice."""
    signer = production_signer(settings, client=client)
    if signer is not None:
        return signer
    dev = dev_credentials(settings.data_dir)
    return KeyFileSigner(
        chain_pem=dev.chain_pem, key_pem=dev.key_pem, alg="es256", kind="development"
    )


def trust_anchors_pem(settings: Settings) -> str | None:
    """The PEM bundle of roots verify trusts (``BRANDLOOP_C2PA_TRUST_ANCHORS``), or None."""
    if settings.c2pa_trust_anchors is None:
        return None
    text = _read(settings.c2pa_trust_anchors, "BRANDLOOP_C2PA_TRUST_ANCHORS")
    _certificates(text, f"BRANDLOOP_C2PA_TRUST_ANCHORS ({settings.c2pa_trust_anchors})")
    return text
