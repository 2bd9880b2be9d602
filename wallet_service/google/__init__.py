"""Google Wallet loyalty cards (spec: Google Wallet LoyaltyClass / LoyaltyObject).

Typical use (the app builds one client at start-up; a worker calls it after point changes)::

    client = GoogleWalletClient.from_service_account_file(
        settings["GOOGLE_CREDENTIALS"], base_url=settings["GOOGLE_API_URL"], rate=15,
        budget=shared_rate)             # optional: a RequestBudget every process shares
    client.upsert_class(loyalty_class(issuer_id, program))          # once per program change
    with client.urgent():               # a customer tapped the save link: goes first
        client.upsert_object(loyalty_object(issuer_id, program, card))
    client.patch_object(object_id(issuer_id, card.serial),
                        object_patch(program, card), notify=budget_allows)
    url = client.save_url([object_id(issuer_id, card.serial)], ["https://cards.example.com"])

    event = verify_callback(request.get_data(), issuer_id=issuer_id,
                            root_keys=GoogleRootKeys())   # then de-duplicate on event.nonce

Every payload can be checked with ``validate(kind, payload)`` against the vendored
walletobjects v1 Discovery document (the client does so before sending).
"""

from ._callbacks import MAX_INTERMEDIATE_SIGNATURES
from ._callbacks import PROTOCOL_VERSION
from ._callbacks import ROOT_KEYS_URL
from ._callbacks import SENDER_ID
from ._callbacks import CallbackEvent
from ._callbacks import GoogleRootKeys
from ._callbacks import RootKey
from ._callbacks import parse_root_keys
from ._callbacks import signed_bytes
from ._callbacks import verify_callback
from ._client import DEFAULT_API_URL
from ._client import DEFAULT_RATE
from ._client import SCOPE
from ._client import GoogleWalletClient
from ._client import load_credentials
from ._errors import CallbackRejected
from ._errors import GoogleApiError
from ._errors import GoogleAuthError
from ._errors import GoogleConflict
from ._errors import GoogleInvalidRequest
from ._errors import GoogleNotFound
from ._errors import GoogleRateLimited
from ._errors import GoogleUnavailable
from ._errors import GoogleWalletError
from ._errors import NotificationQuotaExceeded
from ._errors import SchemaViolation
from ._images import LOGO_SIZE
from ._images import square_logo
from ._jwt import MAX_SAVE_JWT_LENGTH
from ._jwt import SAVE_URL_PREFIX
from ._jwt import save_claims
from ._jwt import save_jwt
from ._jwt import save_url
from ._mapping import BALANCE_LABELS
from ._mapping import BARCODE_TYPES
from ._mapping import MESSAGES_PER_OBJECT
from ._mapping import GoogleCard
from ._mapping import GoogleDetail
from ._mapping import GoogleMoney
from ._mapping import GoogleProgram
from ._mapping import GoogleStore
from ._mapping import class_id
from ._mapping import kept_messages
from ._mapping import loyalty_class
from ._mapping import loyalty_message
from ._mapping import loyalty_object
from ._mapping import object_design
from ._mapping import object_id
from ._mapping import object_patch
from ._mapping import sanitize_suffix
from ._protocol import NullWalletObjects
from ._protocol import WalletObjects
from ._retry import ErrorKind
from ._retry import RequestBudget
from ._retry import TokenBucket
from ._retry import backoff_delay
from ._retry import classify_error
from ._schema import DISCOVERY_FILE
from ._schema import DISCOVERY_REVISION
from ._schema import discovery_document
from ._schema import validate

__all__ = [
    "BALANCE_LABELS",
    "BARCODE_TYPES",
    "DEFAULT_API_URL",
    "DEFAULT_RATE",
    "DISCOVERY_FILE",
    "DISCOVERY_REVISION",
    "LOGO_SIZE",
    "MAX_INTERMEDIATE_SIGNATURES",
    "MAX_SAVE_JWT_LENGTH",
    "MESSAGES_PER_OBJECT",
    "PROTOCOL_VERSION",
    "ROOT_KEYS_URL",
    "SAVE_URL_PREFIX",
    "SCOPE",
    "SENDER_ID",
    "CallbackEvent",
    "CallbackRejected",
    "ErrorKind",
    "GoogleApiError",
    "GoogleAuthError",
    "GoogleCard",
    "GoogleDetail",
    "GoogleMoney",
    "GoogleConflict",
    "GoogleInvalidRequest",
    "GoogleNotFound",
    "GoogleProgram",
    "GoogleRateLimited",
    "GoogleRootKeys",
    "GoogleStore",
    "GoogleUnavailable",
    "GoogleWalletClient",
    "GoogleWalletError",
    "NotificationQuotaExceeded",
    "NullWalletObjects",
    "RequestBudget",
    "RootKey",
    "SchemaViolation",
    "TokenBucket",
    "WalletObjects",
    "backoff_delay",
    "class_id",
    "classify_error",
    "discovery_document",
    "kept_messages",
    "load_credentials",
    "loyalty_class",
    "loyalty_message",
    "loyalty_object",
    "object_design",
    "object_id",
    "object_patch",
    "parse_root_keys",
    "sanitize_suffix",
    "save_claims",
    "save_jwt",
    "save_url",
    "signed_bytes",
    "square_logo",
    "validate",
    "verify_callback",
]
