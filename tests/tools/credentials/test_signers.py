"""Which signer the settings choose, the development CA made once per data dir, a production
key file, and the remote HTTP signer against a local fake signer (and a fake TSA)."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path

import httpx
import pytest

from brandloop.settings import Settings
from brandloop.tools.credentials import (
    KeyFileSigner,
    RemoteSigner,
    SignerConfigError,
    SigningError,
    sign_image,
    signer_from_settings,
    trust_anchors_pem,
    verify_image,
)
from brandloop.tools.credentials.devca import dev_credentials
from tests.fakes.provider_server import serve
from tests.fakes.remote_signer import FakeRemoteSigner, FakeTimestampAuthority
from tests.tools.credentials.conftest import encode, picture, receipt_dict, write_pem


def test_with_no_signer_settings_the_development_ca_is_made_once_in_the_data_dir(
    settings: Settings,
) -> None:
    signer = signer_from_settings(settings)
    assert signer.kind == "development" and signer.name == "brandloop development signer"
    directory = settings.data_dir / "c2pa"
    key = directory / "dev-signer.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    first = key.read_text()
    assert signer_from_settings(settings).name == signer.name
    assert key.read_text() == first  # reused, not remade


def _make(directory: str) -> str:
    return dev_credentials(Path(directory)).key_pem


def test_processes_starting_together_make_one_development_ca(tmp_path: Path) -> None:
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        keys = pool.map(_make, [str(tmp_path)] * 8)
    assert len(set(keys)) == 1
    assert keys[0] == (tmp_path / "c2pa" / "dev-signer.key").read_text()


def test_a_production_key_file_is_used_and_the_development_ca_never_made(
    settings: Settings, tmp_path: Path, acme_ca
) -> None:
    chain = write_pem(tmp_path, "chain.pem", acme_ca.chain_pem)
    key = write_pem(tmp_path, "signer.key", acme_ca.key_pem)
    configured = settings.model_copy(update={"c2pa_cert_chain": chain, "c2pa_private_key": key})
    signer = signer_from_settings(configured)
    assert isinstance(signer, KeyFileSigner) and signer.kind == "local"
    assert signer.name == "Acme Content Signer"
    assert not (settings.data_dir / "c2pa").exists()
    signed = sign_image(encode(picture()), "png", receipt_dict(), signer).data
    anchors = write_pem(tmp_path, "roots.pem", acme_ca.ca_pem)
    trust = trust_anchors_pem(settings.model_copy(update={"c2pa_trust_anchors": anchors}))
    report = verify_image(signed, trust_pem=trust)
    assert report.status == "valid" and report.trust == "trusted" and not report.development_signer


@pytest.mark.parametrize(
    ("update", "message"),
    [
        (
            {"c2pa_private_key": "k", "c2pa_remote_url": "http://127.0.0.1:1/sign"},
            "choose one signer",
        ),
        (
            {"c2pa_cert_chain": "chain"},
            "needs BRANDLOOP_C2PA_PRIVATE_KEY or BRANDLOOP_C2PA_REMOTE_URL",
        ),
        ({"c2pa_private_key": "k"}, "needs BRANDLOOP_C2PA_CERT_CHAIN"),
        ({"c2pa_remote_url": "http://127.0.0.1:1/sign"}, "needs BRANDLOOP_C2PA_CERT_CHAIN"),
        ({"c2pa_cert_chain": "missing.pem", "c2pa_private_key": "k"}, "cannot read"),
        ({"c2pa_cert_chain": "junk", "c2pa_private_key": "k"}, "not a PEM certificate chain"),
        ({"c2pa_cert_chain": "chain", "c2pa_private_key": "other"}, "does not belong"),
        ({"c2pa_cert_chain": "chain", "c2pa_private_key": "junk"}, "not an unencrypted PEM key"),
        ({"c2pa_cert_chain": "chain", "c2pa_remote_url": "ftp://signer/sign"}, "http(s) URL"),
    ],
)
def test_bad_signer_settings_are_a_clear_error(
    settings: Settings, tmp_path: Path, acme_ca, dev, update: dict, message: str
) -> None:
    files = {
        "chain": write_pem(tmp_path, "chain.pem", acme_ca.chain_pem),
        "k": write_pem(tmp_path, "k.pem", acme_ca.key_pem),
        "other": write_pem(tmp_path, "other.pem", dev.key_pem),
        "junk": write_pem(tmp_path, "junk.pem", "not pem at all"),
        "missing.pem": tmp_path / "missing.pem",
    }
    values = {k: (files[v] if k != "c2pa_remote_url" else v) for k, v in update.items()}
    with pytest.raises(
        SignerConfigError, match=message.replace("(", r"\(").replace(")", r"\)")
    ) as caught:
        signer_from_settings(settings.model_copy(update=values))
    assert "BEGIN" not in str(caught.value)  # never a key or certificate in an error
    assert not (settings.data_dir / "c2pa").exists()  # and no fallback to the development CA


def test_a_trust_list_that_is_not_pem_is_a_clear_error(settings: Settings, tmp_path: Path) -> None:
    junk = write_pem(tmp_path, "roots.pem", "nothing here")
    with pytest.raises(SignerConfigError, match="BRANDLOOP_C2PA_TRUST_ANCHORS"):
        trust_anchors_pem(settings.model_copy(update={"c2pa_trust_anchors": junk}))


@pytest.fixture
def remote(acme_ca):
    app = FakeRemoteSigner(key_pem=acme_ca.key_pem)
    with serve(app, prefix="") as base:
        yield app, base


def _remote_settings(
    settings: Settings, tmp_path: Path, chain_pem: str, url: str, token: str
) -> Settings:
    chain = write_pem(tmp_path, "chain.pem", chain_pem)
    return Settings.model_validate(
        {
            **settings.model_dump(),
            "c2pa_cert_chain": chain,
            "c2pa_remote_url": url,
            "c2pa_remote_token": token,
        }
    )


def test_the_remote_signer_signs_through_the_http_signer(
    settings: Settings, tmp_path: Path, acme_ca, remote
) -> None:
    app, base = remote
    configured = _remote_settings(settings, tmp_path, acme_ca.chain_pem, f"{base}/sign", app.token)
    signer = signer_from_settings(configured)
    assert isinstance(signer, RemoteSigner) and signer.kind == "remote"
    signed = sign_image(encode(picture()), "png", receipt_dict(), signer).data
    assert len(app.requests) == 1
    seen = app.requests[0]
    assert seen.headers["authorization"] == f"Bearer {app.token}"
    assert seen.headers["content-type"] == "application/octet-stream" and seen.body
    report = verify_image(signed, trust_pem=acme_ca.ca_pem)
    assert report.status == "valid" and report.trust == "trusted"
    assert report.signer == "Acme Content Signer"
    assert not (settings.data_dir / "c2pa").exists()


@pytest.mark.parametrize("failure", ["500", "bad-token", "down"])
def test_a_failing_remote_signer_is_a_signing_error_without_the_token(
    settings: Settings, tmp_path: Path, acme_ca, remote, failure: str
) -> None:
    app, base = remote
    url, token = f"{base}/sign", app.token
    if failure == "500":
        app.fail_with = 500
    elif failure == "bad-token":
        token = "wrong-token-0002"
    else:
        url = "http://127.0.0.1:9/sign"  # nothing listens on the discard port
    client = httpx.Client(timeout=2)
    signer = signer_from_settings(
        _remote_settings(settings, tmp_path, acme_ca.chain_pem, url, token), client=client
    )
    with pytest.raises(SigningError, match="remote signer") as caught:
        sign_image(encode(picture()), "png", receipt_dict(), signer)
    expected = {"500": "HTTP 500", "bad-token": "HTTP 401", "down": "unreachable"}[failure]
    assert expected in str(caught.value)
    assert token not in str(caught.value)
    client.close()


def test_the_tsa_url_is_asked_for_a_time_stamp(settings: Settings, tmp_path: Path, acme_ca) -> None:
    """A real RFC 3161 answer is not faked here: the fake TSA answers garbage, so signing fails
    with a SigningError - after the TSA got a time-stamp query for this signature."""
    tsa = FakeTimestampAuthority()
    chain = write_pem(tmp_path, "chain.pem", acme_ca.chain_pem)
    key = write_pem(tmp_path, "k.pem", acme_ca.key_pem)
    with serve(tsa, prefix="") as base:
        configured = settings.model_copy(
            update={
                "c2pa_cert_chain": chain,
                "c2pa_private_key": key,
                "c2pa_tsa_url": f"{base}/tsa",
            }
        )
        with pytest.raises(SigningError):
            sign_image(encode(picture()), "png", receipt_dict(), signer_from_settings(configured))
    assert tsa.queries and tsa.queries[0].path == "/tsa"
    assert tsa.queries[0].headers.get("content-type") == "application/timestamp-query"
