"""Self-signed certificates are made once and kept; bad files give clear errors."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from server.http.tls import TlsError, server_context


def test_self_signed_pair_is_made_once_and_kept(tmp_path: Path) -> None:
    context, cert = server_context(cert="", key="", state_dir=tmp_path)
    assert isinstance(context, ssl.SSLContext)
    assert cert == tmp_path / "tls" / "cert.pem"
    key = tmp_path / "tls" / "key.pem"
    assert key.stat().st_mode & 0o777 == 0o600
    first = cert.read_bytes()
    _, again = server_context(cert="", key="", state_dir=tmp_path)
    assert again.read_bytes() == first  # kept: a phone accepts it once
    # The certificate names this machine's loopback address and localhost.
    info = ssl._ssl._test_decode_cert(str(cert))  # type: ignore[attr-defined]
    alt = {value for _, value in info["subjectAltName"]}
    assert "localhost" in alt and "127.0.0.1" in alt


def test_given_files_are_used_and_checked(tmp_path: Path) -> None:
    server_context(cert="", key="", state_dir=tmp_path)
    cert, key = tmp_path / "tls" / "cert.pem", tmp_path / "tls" / "key.pem"
    _, used = server_context(cert=str(cert), key=str(key), state_dir=tmp_path / "other")
    assert used == cert
    assert not (tmp_path / "other").exists()
    with pytest.raises(TlsError, match="go together"):
        server_context(cert=str(cert), key="", state_dir=tmp_path)
    with pytest.raises(TlsError, match="not found"):
        server_context(cert=str(tmp_path / "nope.pem"), key=str(key), state_dir=tmp_path)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(TlsError, match=r"garbage\.pem"):
        server_context(cert=str(garbage), key=str(key), state_dir=tmp_path)
