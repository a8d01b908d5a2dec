"""A configured credential typed into text the CLI would store or send on (a brief, a note, a
template body, a campaign brief, a brand kit) is refused as bad input (README, docs/provenance.md):
exit 2 and one line naming the argument or the file's field and the variable, never the value;
nothing is stored, and what was stored before stays. Before, ``generate "a cup with the label
$BRANDLOOP_OPENAI_API_KEY on it"`` put the key word for word into the signed PNG's receipt
chunk, receipt.json, the registry, the stored artifact and brand memory (tester25d, defect 3)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from brandloop.registry.db import Database
from brandloop.settings import Settings, get_settings
from tests.api.test_cli import BRANDS, data_snapshot, run_cli
from tests.databases import stored_anywhere

KIT = str(BRANDS / "acme-coffee.yaml")
OPENAI_KEY = "sk-test-t25dSecretValue9876"
SIGNER_TOKEN = "signer-token-t25d-0123456789"
WRITER_KEY = "writer-key-t25d-0123456789"


@pytest.fixture
def settings(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("BRANDLOOP_OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("BRANDLOOP_C2PA_REMOTE_TOKEN", SIGNER_TOKEN)
    monkeypatch.setenv("BRANDLOOP_WRITER_API_KEY", WRITER_KEY)  # no provider: the writer is off
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def _files(tmp_path: Path, secret: str) -> dict[str, Path]:
    campaign = tmp_path / "campaign.yaml"
    campaign.write_text(
        yaml.safe_dump(
            {
                "name": "autumn",
                "brand": KIT,
                "assets": [
                    {"id": "hero", "brief": "a coffee cup", "formats": ["64x64"]},
                    {"id": "leak", "brief": f"a cup labelled {secret}", "formats": ["64x64"]},
                ],
            }
        ),
        encoding="utf-8",
    )
    template = tmp_path / "template.yaml"
    template.write_text(yaml.safe_dump({"body": f"{{{{ brief }}}}, stamped {secret}"}))
    kit = yaml.safe_load(Path(KIT).read_text(encoding="utf-8"))
    kit["forbidden_terms"] = [*kit.get("forbidden_terms", []), secret]
    brand = tmp_path / "brand.yaml"
    brand.write_text(yaml.safe_dump(kit), encoding="utf-8")
    kit["name"] = "Leaky Kit Brand"  # not stored yet: the campaign would add it from the file
    kitted = tmp_path / "kitted-brand.yaml"
    kitted.write_text(yaml.safe_dump(kit), encoding="utf-8")
    kitted_campaign = tmp_path / "kitted-campaign.yaml"
    kitted_campaign.write_text(
        yaml.safe_dump(
            {
                "name": "kitted",
                "brand": kitted.name,  # a kit path relative to the campaign file
                "assets": [{"id": "hero", "brief": "a coffee cup", "formats": ["64x64"]}],
            }
        ),
        encoding="utf-8",
    )
    return {
        "campaign": campaign,
        "template": template,
        "brand": brand,
        "kitted campaign": kitted_campaign,
    }


def _commands(tmp_path: Path, secret: str) -> dict[str, tuple[list[str], str]]:
    """argv, and what the one line names."""
    files = _files(tmp_path, secret)
    brief = f"a cup with the label {secret} on it"
    return {
        "generate brief": (
            ["generate", brief, "--brand", KIT, "--providers", "procedural", "--no-memory"],
            "'brief'",
        ),
        "style note": (
            ["memory", "add", f"always print {secret}", "--brand", "Acme Coffee"],
            "'text'",
        ),
        "review note": (["review", "approve", "run_0123456789abcdef", "--note", secret], "--note"),
        "template file": (
            ["templates", "create", "leaky", "--file", str(files["template"]), "--as", "ana"],
            "body",
        ),
        "campaign file": (["campaign", "run", str(files["campaign"])], "assets.1.brief"),
        "brand kit": (["brands", "add", str(files["brand"])], "forbidden_terms"),
        # the kit a campaign file names was once stored with the credential in it
        "campaign's brand kit": (
            ["campaign", "run", str(files["kitted campaign"])],
            "kitted-brand.yaml: forbidden_terms",
        ),
    }


CASES = [
    "brand kit",
    "campaign file",
    "campaign's brand kit",
    "generate brief",
    "review note",
    "style note",
    "template file",
]
VARIABLES = {
    OPENAI_KEY: "BRANDLOOP_OPENAI_API_KEY",
    SIGNER_TOKEN: "BRANDLOOP_C2PA_REMOTE_TOKEN",
    WRITER_KEY: "BRANDLOOP_WRITER_API_KEY",
}


@pytest.mark.parametrize(
    ("case", "secret"),
    [(case, OPENAI_KEY) for case in CASES]
    + [("generate brief", SIGNER_TOKEN), ("generate brief", WRITER_KEY)],
)
def test_a_configured_credential_in_typed_text_is_exit_2_and_nothing_is_stored(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    db: Database,
    data_dir: Path,
    tmp_path: Path,
    case: str,
    secret: str,
) -> None:
    code, _, err = run_cli(capsys, "brands", "add", KIT)
    assert code == 0, err
    code, _, err = run_cli(
        capsys, "generate", "a cup", "--brand", KIT, "--providers", "procedural", "--no-memory"
    )
    assert code == 0, err
    before = data_snapshot(data_dir)
    argv, names = _commands(tmp_path, secret)[case]
    code, out, err = run_cli(capsys, *argv)
    assert (code, out) == (2, ""), (code, out, err)
    assert err.startswith("brandloop: error: ") and err.count("\n") == 1, err
    assert names in err and VARIABLES[secret] in err and "configured credential" in err, err
    assert secret not in err
    assert data_snapshot(data_dir) == before  # nothing added, nothing lost
    database = db.engine.dialect.name
    assert stored_anywhere(db, secret, data_dir if database == "sqlite" else None) == []
