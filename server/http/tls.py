"""HTTPS and WSS on the server's one port.

Browsers give a page the camera only in a secure context, so `/camera` on a
phone needs HTTPS. The certificate comes from config, or ganvj makes a
self-signed one on first start and keeps it, so a phone accepts it once.
`cryptography` is already here: aiortc uses it for DTLS.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import socket
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

logger = logging.getLogger(__name__)

VALID_DAYS = 3650


class TlsError(RuntimeError):
    """A certificate or key that cannot be used; the message names the file."""


def local_names() -> tuple[list[str], list[str]]:
    """Host names and IPv4 addresses this machine answers to, for the certificate."""
    names = {"localhost", socket.gethostname()}
    addresses = {"127.0.0.1"}
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            addresses.add(str(info[4][0]))
    except OSError:
        pass
    return sorted(names), sorted(addresses)


def make_self_signed(
    cert_path: Path, key_path: Path, *, names: list[str], addresses: list[str]
) -> None:
    """Write a new self-signed certificate and its key (0600), each atomically."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"ganvj {names[0]}")])
    now = datetime.datetime.now(datetime.UTC)
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    alt_names += [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_atomic(key_path, key_bytes, mode=0o600)
    _write_atomic(cert_path, certificate.public_bytes(serialization.Encoding.PEM), mode=0o644)


def _write_atomic(path: Path, data: bytes, *, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def server_context(*, cert: str, key: str, state_dir: Path) -> tuple[ssl.SSLContext, Path]:
    """An SSL context for the server; makes and keeps a self-signed pair when none is given.

    Returns the context and the certificate file it uses.
    """
    if bool(cert) != bool(key):
        raise TlsError("server.tls_cert and server.tls_key go together: give both or neither")
    if cert:
        cert_path, key_path = Path(cert).expanduser(), Path(key).expanduser()
    else:
        cert_path = state_dir / "tls" / "cert.pem"
        key_path = state_dir / "tls" / "key.pem"
        if not (cert_path.is_file() and key_path.is_file()):
            names, addresses = local_names()
            make_self_signed(cert_path, key_path, names=names, addresses=addresses)
            logger.info(
                "made a self-signed certificate for %s at %s",
                ", ".join(names + addresses),
                cert_path,
            )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_path, key_path)
    except FileNotFoundError as exc:
        raise TlsError(f"certificate or key not found: {exc.filename}") from exc
    except (ssl.SSLError, ValueError) as exc:
        raise TlsError(f"cannot use certificate {cert_path} with key {key_path}: {exc}") from exc
    return context, cert_path
