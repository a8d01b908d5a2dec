"""What Content Credentials add per accepted 1024×1024 image (issue 16: under 30 ms).

Measured steps, each on the same receipt and image:

- ``receipt chunk only``: what finalize did before signing existed (the receipt ``iTXt``).
- ``brandloop signing``: ``sign_image`` - receipt chunk + XMP packet + C2PA manifest signed
  ES256 with the development signer (a local key). *Added by signing* = this minus the above.
- ``c2pa by the book`` (the baseline): what a user writes from c2pa-python's docs - the same
  manifest, a ``Signer.from_info`` and a ``Builder`` with the library's default settings
  (which embed a thumbnail and re-verify after signing).
- ``perceptual hash``: finalize also records a pHash of the signed file so a stripped copy can
  be traced; not signing, but on the same path, so it is shown too.
- ``remote signer`` (``--remote``): ``sign_image`` through the HTTP signer protocol against a
  local fake signer on 127.0.0.1 (network latency in production is on top).

Images: the procedural studio renderer at 1024×1024 (3 briefs) and a 1024×1024 noise image,
the worst case for PNG size (~3 MB). Wall-clock median and p90 over ``--runs`` after warm-up,
and the median CPU time of the process (``benchmarks/timing.py``).

Usage: .venv/bin/python benchmarks/c2pa_signing.py [--runs 30] [--remote] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.timing import measure  # noqa: E402 - after the path is set

BRIEFS = ("autumn-sale.txt", "morning-ritual.txt", "summit-launch.txt")


def _images() -> dict[str, bytes]:
    import numpy as np
    from PIL import Image

    from brandloop.providers import ImageRequest
    from brandloop.tools.providers.procedural import ProceduralProvider

    images = {}
    for name in BRIEFS:
        brief = (ROOT / "examples/briefs" / name).read_text().strip()
        request = ImageRequest(model="studio", prompt=brief, seed=7, width=1024, height=1024)
        images[name.removesuffix(".txt")] = (
            asyncio.run(ProceduralProvider().generate(request)).images[0].data
        )
    noise = np.random.default_rng(0).integers(0, 255, (1024, 1024, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG", compress_level=1)
    images["noise"] = buffer.getvalue()
    return images


def _receipt() -> dict[str, Any]:
    from brandloop.domain import AcceptanceRule, Receipt
    from brandloop.tools.credentials import digital_source_type

    return Receipt(
        run_id="run_0123456789abcdef",
        attempt_id="cand-1",
        template="brand-hero@1",
        prompt="strict palette: teal, cream, espresso; a hero banner for the autumn sale",
        negative_prompt="blurry",
        model="procedural/studio",
        model_version="1",
        provider="procedural",
        seed_requested=7,
        seed_returned=7,
        width=1024,
        height=1024,
        scores={"palette": 0.91, "sharpness": 0.8, "exposure": 0.9},
        composite=0.87,
        cost_usd=0.04,
        acceptance=AcceptanceRule(accept_composite=0.6, require_all_signals=True),
        digital_source_type=digital_source_type("procedural", []),
    ).model_dump(mode="json")


def _by_the_book(chain: str, key: str) -> Callable[[bytes, dict[str, Any]], bytes]:
    import c2pa

    from brandloop.tools.credentials.manifest import manifest_definition, new_manifest_label

    def sign(data: bytes, receipt: dict[str, Any]) -> bytes:
        info = c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain.encode(), key.encode(), None)
        definition = manifest_definition(
            receipt, fmt="png", label=new_manifest_label(), title="a.png"
        )
        output = io.BytesIO()
        with c2pa.Signer.from_info(info) as signer, c2pa.Builder(definition) as builder:
            builder.sign(signer, "image/png", io.BytesIO(data), output)
        return output.getvalue()

    return sign


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--remote", action="store_true", help="also time the HTTP signer")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from brandloop.artifacts import RECEIPT_KEY, png_with_text
    from brandloop.reproduce import perceptual_hash
    from brandloop.tools.credentials import KeyFileSigner, RemoteSigner, sign_image
    from brandloop.tools.credentials.devca import dev_credentials

    receipt = _receipt()
    receipt_json = json.dumps(receipt, sort_keys=True)
    with tempfile.TemporaryDirectory() as tmp:
        dev = dev_credentials(Path(tmp))
    signer = KeyFileSigner(
        chain_pem=dev.chain_pem, key_pem=dev.key_pem, alg="es256", kind="development"
    )
    book = _by_the_book(dev.chain_pem, dev.key_pem)
    remote_ctx = None
    if args.remote:
        import httpx
        from pydantic import SecretStr

        from tests.fakes.provider_server import serve
        from tests.fakes.remote_signer import FakeRemoteSigner

        app = FakeRemoteSigner(key_pem=dev.key_pem)
        remote_ctx = serve(app, prefix="")  # type: ignore[arg-type]
        base = remote_ctx.__enter__()
        remote = RemoteSigner(
            url=f"{base}/sign",
            chain_pem=dev.chain_pem,
            alg="es256",
            client=httpx.Client(timeout=10),
            token=SecretStr(app.token),
        )
    results: dict[str, dict[str, Any]] = {}
    try:
        for name, data in _images().items():
            signed = sign_image(data, "png", receipt, signer).data
            row: dict[str, Any] = {
                "png_bytes": len(data),
                "receipt chunk only": measure(
                    lambda d=data: png_with_text(d, RECEIPT_KEY, receipt_json), args.runs
                ),
                "brandloop signing": measure(
                    lambda d=data: sign_image(d, "png", receipt, signer), args.runs
                ),
                "c2pa by the book": measure(lambda d=data: book(d, receipt), args.runs),
                "perceptual hash": measure(lambda s=signed: perceptual_hash(s), args.runs),
            }
            if args.remote:
                row["remote signer"] = measure(
                    lambda d=data: sign_image(d, "png", receipt, remote), args.runs
                )
            row["added by signing (median ms)"] = round(
                row["brandloop signing"]["median_ms"] - row["receipt chunk only"]["median_ms"], 2
            )
            results[name] = row
    finally:
        if remote_ctx is not None:
            remote_ctx.__exit__(None, None, None)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"per 1024x1024 PNG, {args.runs} runs each (wall median / p90, cpu median; ms)")
    for name, row in results.items():
        print(f"\n{name} ({row['png_bytes']:,} bytes)")
        for step, figures in row.items():
            if isinstance(figures, dict):
                print(
                    f"  {step:22s} {figures['median_ms']:8.2f} {figures['p90_ms']:8.2f} {figures['cpu_median_ms']:8.2f}"
                )
        print(f"  added by signing: {row['added by signing (median ms)']:.2f} ms (target < 30 ms)")


if __name__ == "__main__":
    main()
