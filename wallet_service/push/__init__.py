"""Pass-update pushes through APNs (spec §4): the ``PushClient`` adapter and its implementations.

Typical use (the app builds one client at start-up and hands it to the push worker)::

    client = ApnsPushClient(
        topic="pass.com.example.loyalty",
        auth=CertificateAuth(certificate=cert_pem_or_path, private_key=key_pem_or_path),
    )
    for result in client.send(tokens):
        if result.outcome is Outcome.INVALID_TOKEN: ...   # delete the registration
        elif result.outcome is Outcome.RETRY: ...         # again later, backoff_delay(...)
        elif result.outcome is Outcome.FAILED: ...        # configuration problem: alert
    client.close()

``NullPushClient`` stands in when no Apple credentials are configured; ``RecordingPushClient``
is the fake for tests of code that sends pushes.
"""

from ._apns import APNS_URL
from ._apns import ApnsPushClient
from ._auth import CertificateAuth
from ._auth import TokenAuth
from ._fakes import NullPushClient
from ._fakes import RecordingPushClient
from ._fakes import ScriptedReply
from ._model import Outcome
from ._model import PushClient
from ._model import PushResult
from ._model import backoff_delay
from ._model import classify

__all__ = [
    "APNS_URL",
    "ApnsPushClient",
    "CertificateAuth",
    "NullPushClient",
    "Outcome",
    "PushClient",
    "PushResult",
    "RecordingPushClient",
    "ScriptedReply",
    "TokenAuth",
    "backoff_delay",
    "classify",
]
