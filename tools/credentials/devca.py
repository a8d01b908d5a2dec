"""The embedded development signer: a local CA and an ES256 signing certificate it issues,
made in ``<data_dir>/c2pa/`` on first use and reused after.

Nothing trusts this CA: ``verify`` labels whatever it signed as signed by brandloop's
development CA, untrusted, even when someone adds it to a trust list. It exists so that every
image carries a manifest with no setup; a deployment configures a production signer
(``docs/provenance.md``), and then this one is never used.
"""

from __future__ import annotations

import datetime as dt
import fcntl
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from brandloop.artifacts import atomic_write

DEV_CA_ORG: Final = "brandloop development CA (untrusted)"
DEV_CA_NAME: Final = "brandloop development root"
DEV_SIGNER_NAME: Final = "brandloop development signer"
CA_FILE: Final = "dev-ca.pem"
CHAIN_FILE: Final = "dev-signer-chain.pem"
KEY_FILE: Final = "dev-signer.key"


@dataclass(frozen=True)
class DevCredentials:
    """PEM texts: the signer's chain (signing certificate, then the CA) and its private key."""

    chain_pem: str
    key_pem: str
    ca_pem: str


def _name(common_name: str, org: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
        ]
    )


def _usage(*, sign: bool, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def make_dev_credentials(
    *,
    org: str = DEV_CA_ORG,
    ca_name: str = DEV_CA_NAME,
    signer_name: str = DEV_SIGNER_NAME,
    now: dt.datetime | None = None,
) -> DevCredentials:
    """A fresh CA (P-256, ten years) and a signing certificate (P-256, ES256, two years) with
    the e-mail-protection EKU that the C2PA trust model accepts for signers. The names are
    parameters so tests can make a CA that is not the development one."""
    start = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    issuer = _name(ca_name, org)
    ca = (
        x509.CertificateBuilder()
        .subject_name(issuer)
        .issuer_name(issuer)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(sign=False, ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(signer_name, org))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=730))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(sign=True, ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )

    def pem(cert: x509.Certificate) -> str:
        return cert.public_bytes(serialization.Encoding.PEM).decode()

    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return DevCredentials(chain_pem=pem(leaf) + pem(ca), key_pem=key_pem, ca_pem=pem(ca))


def _load(directory: Path) -> DevCredentials | None:
    paths = [directory / name for name in (CHAIN_FILE, KEY_FILE, CA_FILE)]
    if not all(path.is_file() for path in paths):
        return None
    chain, key, ca = (path.read_text() for path in paths)
    return DevCredentials(chain_pem=chain, key_pem=key, ca_pem=ca)


def _write(path: Path, text: str, mode: int) -> None:
    atomic_write(path, text.encode(), mode=mode)  # the key is never readable under its name


def dev_credentials(data_dir: Path) -> DevCredentials:
    """The data dir's development credentials, made on first use. Processes starting together
    make them once (a file lock); each file is written atomically and the set only counts as
    present when all three are, so a reader never takes a half-made set."""
    directory = data_dir / "c2pa"
    found = _load(directory)
    if found is not None:
        return found
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = _load(directory)
        if found is not None:
            return found
        made = make_dev_credentials()
        _write(directory / KEY_FILE, made.key_pem, 0o600)
        _write(directory / CA_FILE, made.ca_pem, 0o644)
        _write(directory / CHAIN_FILE, made.chain_pem, 0o644)
        return made
