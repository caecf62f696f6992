"""Host-side fixtures for the host-key tests: signers built with
``cryptography`` (P-256 with DER signatures, Ed25519), a dict-backed
credential store, and a transport and log sink that record everything the SDK
hands them, so the tests can prove that no private key byte ever reached
edrlink. None of this code comes from edrlink: it stands in for the Secure
Enclave, Android Keystore or a TPM."""

from __future__ import annotations

import base64
import itertools
import json
import os
import pathlib
import threading
import time
from typing import Any, Dict, Iterable, List, Optional, Tuple

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

import edrlink

_ids = itertools.count(1)


class HostSigner(edrlink.HostKeys):  # type: ignore[misc]
    """A platform keystore: private keys live in this object only. ``mode``
    makes ``sign`` misbehave on purpose:

    - ``"ok"``: a correct signature (DER for P-256, like Java/Apple/OpenSSL);
    - ``"raw"``: P-256 as raw ``r || s`` (64 bytes, like WebCrypto);
    - ``"raise"``: an unexpected exception (``RuntimeError``);
    - ``"declared"``: ``edrlink.HostError.Failed``;
    - ``"short"``: a signature of the wrong length;
    - ``"garbage"``: random bytes of a plausible length;
    - ``"other_key"``: a valid signature, but by another key;
    - ``"slow"``: a correct signature after ``delay`` seconds.
    """

    def __init__(self, algorithm: str) -> None:
        assert algorithm in ("p256", "ed25519")
        self.algorithm = algorithm
        self.lock = threading.Lock()
        self.keys: Dict[str, object] = {}
        # Public keys by handle (kept after deletion, for the checks).
        self.public: Dict[str, bytes] = {}
        # Keys removed by delete_key, kept only for the no-private-key scan.
        self.retired: Dict[str, object] = {}
        self.created: List[str] = []
        self.deleted: List[str] = []
        self.signed = 0
        self.mode = "ok"
        self.create_fails: Optional[BaseException] = None
        self.delay = 0.0

    # -- the edrlink.HostKeys interface

    def create_key(self) -> edrlink.HostKey:
        if self.create_fails is not None:
            raise self.create_fails
        handle = f"{self.algorithm}-key-{next(_ids)}"
        if self.algorithm == "p256":
            key: object = ec.generate_private_key(ec.SECP256R1())
            public = key.public_key().public_bytes(  # type: ignore[attr-defined]
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        else:
            key = ed25519.Ed25519PrivateKey.generate()
            public = key.public_key().public_bytes(  # type: ignore[attr-defined]
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
        with self.lock:
            self.keys[handle] = key
            self.public[handle] = public
            self.created.append(handle)
        return edrlink.HostKey(handle=handle, public_key=public)

    def sign(self, handle: str, message: bytes) -> bytes:
        with self.lock:
            self.signed += 1
            key = self.keys.get(handle)
            mode = self.mode
        if key is None:
            raise edrlink.HostError.Failed(reason=f"no key named {handle}")
        if mode == "raise":
            raise RuntimeError("keystore locked (device not unlocked since boot)")
        if mode == "declared":
            raise edrlink.HostError.Failed(reason="user cancelled the biometric prompt")
        if mode == "short":
            return self._sign(key, message)[:10]
        if mode == "garbage":
            return os.urandom(64 if self.algorithm == "ed25519" else 71)
        if mode == "other_key":
            return self._sign(self._fresh_key(), message)
        if mode == "slow":
            time.sleep(self.delay)
        sig = self._sign(key, message)
        if mode == "raw" and self.algorithm == "p256":
            r, s = decode_dss_signature(sig)
            sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return sig

    def delete_key(self, handle: str) -> None:
        with self.lock:
            self.deleted.append(handle)
            key = self.keys.pop(handle, None)
            if key is not None:
                self.retired[handle] = key

    # -- helpers for the tests

    def _fresh_key(self) -> object:
        if self.algorithm == "p256":
            return ec.generate_private_key(ec.SECP256R1())
        return ed25519.Ed25519PrivateKey.generate()

    @staticmethod
    def _sign(key: object, message: bytes) -> bytes:
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(message, ec.ECDSA(hashes.SHA256()))  # DER (X9.62)
        return key.sign(message)  # type: ignore[attr-defined]

    def private_material(self) -> List[bytes]:
        """Every private key this signer ever held (deleted ones too), in its
        raw and DER forms."""
        with self.lock:
            keys = list(self.keys.values()) + list(self.retired.values())
        return [form for key in keys for form in private_forms(key)]


def private_forms(key: object) -> List[bytes]:
    """The private key as bytes: Raw / the private scalar, PKCS#8 DER and
    (P-256) the SEC1 DER."""
    der = key.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    if isinstance(key, ec.EllipticCurvePrivateKey):
        scalar = key.private_numbers().private_value.to_bytes(32, "big")
        sec1 = key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
        return [scalar, der, sec1]
    raw = key.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return [raw, der]


def encodings(secret: bytes) -> List[bytes]:
    """The ways a secret could be written down: raw, hex, base64 (standard
    and URL-safe, padded or not) and, for a 32-byte scalar, its decimal value."""
    b64 = base64.b64encode(secret)
    url = base64.urlsafe_b64encode(secret)
    out = [secret, secret.hex().encode(), secret.hex().upper().encode(), b64, url, b64.rstrip(b"="), url.rstrip(b"=")]
    if len(secret) == 32:
        out.append(str(int.from_bytes(secret, "big")).encode())
    return out


def leaks(secrets: Iterable[bytes], blobs: Iterable[bytes]) -> List[str]:
    """Which secrets (by index and form) occur in any blob: empty when none."""
    forms = [(i, f) for i, s in enumerate(secrets) for f in encodings(s)]
    found = []
    for n, blob in enumerate(blobs):
        for i, f in forms:
            if f in blob:
                found.append(f"secret {i} ({len(f)} bytes form) in blob {n}")
    return found


class DictStore(edrlink.CredentialStore):  # type: ignore[misc]
    """The host's credential store: a dict (standing in for the Keychain).
    Keeps every JSON it was given, for the scan."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.data: Dict[str, str] = {}
        self.saved: List[str] = []
        self.loads = 0
        self.deletes = 0
        self.fail: Optional[BaseException] = None

    def load(self) -> Optional[str]:
        with self.lock:
            self.loads += 1
            if self.fail is not None:
                raise self.fail
            return self.data.get("credential")

    def save(self, json_text: str) -> None:
        with self.lock:
            if self.fail is not None:
                raise self.fail
            self.saved.append(json_text)
            self.data["credential"] = json_text

    def delete(self) -> None:
        with self.lock:
            if self.fail is not None:
                raise self.fail
            self.deletes += 1
            self.data.pop("credential", None)

    def credential(self) -> Dict[str, object]:
        with self.lock:
            return json.loads(self.data["credential"])


class RecordingTransport(edrlink.Transport):  # type: ignore[misc]
    """Decorates the native transport and keeps every request the SDK made
    (URL, headers, body) with the response it got."""

    def __init__(self) -> None:
        self.native = edrlink.native_transport()
        self.lock = threading.Lock()
        self.requests: List[edrlink.TransportRequest] = []
        self.exchanges: List[Tuple[edrlink.TransportRequest, edrlink.TransportResponse]] = []

    def send(self, request: edrlink.TransportRequest) -> edrlink.TransportResponse:
        with self.lock:
            self.requests.append(request)
        response = self.native.send(request)
        with self.lock:
            self.exchanges.append((request, response))
        return response

    def blobs(self) -> List[bytes]:
        with self.lock:
            out = []
            for r in self.requests:
                out.append(r.url.encode())
                out.extend(f"{h.name}: {h.value}".encode() for h in r.headers)
                out.append(bytes(r.body))
            return out

    def ingest_bodies(self) -> List[bytes]:
        with self.lock:
            return [bytes(r.body) for r in self.requests if r.url.endswith("/v1/ingest")]

    def accepted_events(self) -> List[Dict[str, Any]]:
        """The events of every batch the service acknowledged as newly stored
        (``status: accepted``; a re-sent duplicate is not counted twice)."""
        out: List[Dict[str, Any]] = []
        with self.lock:
            exchanges = list(self.exchanges)
        for req, resp in exchanges:
            if not req.url.endswith("/v1/ingest") or resp.status != 200:
                continue
            if json.loads(bytes(resp.body)).get("status") != "accepted":
                continue
            env = json.loads(bytes(req.body))
            out.extend(json.loads(base64.b64decode(env["payload"]))["events"])
        return out


class RecordingLog(edrlink.LogSink):  # type: ignore[misc]
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: List[str] = []

    def log(self, level: object, message: str) -> None:
        with self.lock:
            self.messages.append(message)

    def blobs(self) -> List[bytes]:
        with self.lock:
            return [m.encode() for m in self.messages]


def files_under(path: Optional[pathlib.Path]) -> List[bytes]:
    if path is None:
        return []
    return [p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()]


def dsse_pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding, written from the DSSE spec (not
    edrlink's ``pae``): ``DSSEv1 SP LEN(type) SP type SP LEN(body) SP body``."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)
