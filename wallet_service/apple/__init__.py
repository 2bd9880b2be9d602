"""Apple Wallet store cards: frozen inputs in, ``pass.json`` and ``.pkpass`` out.

Typical use (the service loads templates and credentials once through
:mod:`wallet_service.apple.assets`)::

    template = assets.load_template("points")
    signer = assets.load_signer(...)
    design = Design(organization_name="Example Coffee", description="Example Coffee card")
    content = CardContent(serial_number=..., pass_type_identifier=..., ...)
    data = build_pkpass(template, design, content, signer)   # serve as PKPASS_MEDIA_TYPE

Nothing here imports Flask or SQLAlchemy or opens connections; only
:mod:`wallet_service.apple.assets` (templates and certificates) reads and writes files.
"""

from .content import build_pass_json
from .content import localize_fields
from .content import localized_strings
from .content import w3c_timestamp
from .images import IMAGE_SPECS
from .images import MAX_IMAGE_BYTES
from .images import MAX_IMAGE_PIXELS
from .images import prepare_image
from .images import stamp_strip
from .model import BARCODE_FORMATS
from .model import IMAGE_FILENAMES
from .model import IMAGE_KINDS
from .model import MAX_LOCATIONS
from .model import CardContent
from .model import Design
from .model import MerchantContact
from .model import PassTemplate
from .model import StoreLocation
from .model import TemplateFile
from .package import PKPASS_MEDIA_TYPE
from .package import build_pkpass
from .package import manifest_bytes
from .signing import SignerCredentials
from .signing import certificate_identity
from .signing import sign_manifest
from .strings import decode_strings
from .strings import encode_strings

__all__ = [
    "BARCODE_FORMATS",
    "IMAGE_FILENAMES",
    "IMAGE_KINDS",
    "IMAGE_SPECS",
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_PIXELS",
    "MAX_LOCATIONS",
    "PKPASS_MEDIA_TYPE",
    "CardContent",
    "Design",
    "MerchantContact",
    "PassTemplate",
    "SignerCredentials",
    "StoreLocation",
    "TemplateFile",
    "build_pass_json",
    "build_pkpass",
    "certificate_identity",
    "decode_strings",
    "encode_strings",
    "localize_fields",
    "localized_strings",
    "manifest_bytes",
    "prepare_image",
    "sign_manifest",
    "stamp_strip",
    "w3c_timestamp",
]
