"""Content Credentials: C2PA manifests signed onto every accepted image, and their verification.

``sign_image`` puts the receipt, the IPTC digital source type (XMP) and a signed manifest into
an image; ``verify_image`` checks one; ``signer_from_settings`` picks the signer
(``docs/provenance.md``).
"""

from brandloop.tools.credentials.errors import SignerConfigError, SigningError
from brandloop.tools.credentials.formats import transcode
from brandloop.tools.credentials.manifest import (
    ALGORITHMIC,
    COMPOSITE_TRAINED,
    FIT_EDITS,
    RECEIPT_LABEL,
    TRAINED,
    TRANSCODED,
    digital_source_type,
    receipt_assertion,
)
from brandloop.tools.credentials.sign import SignedImage, sign_image
from brandloop.tools.credentials.signers import (
    ContentSigner,
    KeyFileSigner,
    RemoteSigner,
    production_signer,
    signer_from_settings,
    trust_anchors_pem,
)
from brandloop.tools.credentials.verify import (
    CredentialReport,
    shown_name,
    summary_line,
    verify_image,
)

__all__ = [
    "ALGORITHMIC",
    "COMPOSITE_TRAINED",
    "FIT_EDITS",
    "RECEIPT_LABEL",
    "TRAINED",
    "TRANSCODED",
    "ContentSigner",
    "CredentialReport",
    "KeyFileSigner",
    "RemoteSigner",
    "SignedImage",
    "SignerConfigError",
    "SigningError",
    "digital_source_type",
    "production_signer",
    "receipt_assertion",
    "shown_name",
    "sign_image",
    "signer_from_settings",
    "summary_line",
    "transcode",
    "trust_anchors_pem",
    "verify_image",
]
