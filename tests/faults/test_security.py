"""Security basics: the emulator listens on loopback unless told otherwise, TLS is always
verified, credentials in a base URL never reach a log line, an error or a file, and no
symbol can steer a path outside the dataset."""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import logging
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from dccd_testing import run_cli
from fault_kit import FAST_FAILURE, settings
from hypothesis import given
from hypothesis import strategies as st
from typer.main import get_command

from dccd_cli.cli.app import app
from dccd_cli.emulator import EmulatorServer, serve
from dccd_cli.errors import NetworkError, OutputPathError
from dccd_cli.net.client import AsyncHTTPClient
from dccd_cli.net.keepalive import KeepAliveTransport
from dccd_cli.net.transport import HttpxTransport, make_transport
from dccd_cli.run.download import run_download
from dccd_cli.run.request import DownloadRequest
from dccd_cli.storage import SeriesKey

PACKAGE = Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-Pa55"

# -- the emulator listens on loopback ----------------------------------------------------


def test_the_emulator_binds_loopback_by_default() -> None:
    assert inspect.signature(EmulatorServer).parameters["host"].default == "127.0.0.1"
    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"
    with EmulatorServer(settings()) as server:
        assert server.host == "127.0.0.1"
        assert server._sock is not None and server._sock.getsockname()[0] == "127.0.0.1"
    host = next(p for p in get_command(app).commands["emulator"].params  # type: ignore[attr-defined]
                if p.name == "host")
    assert host.default == "127.0.0.1"


def _listening(port: int) -> list[str]:
    """Local addresses (hex, as in /proc/net/tcp*) listening on ``port``."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, _, state = row.split()[1:4]
            address, hex_port = local.split(":")
            if int(hex_port, 16) == port and state == "0A":  # 0A: LISTEN
                found.append(address)
    return found


def test_dccd_emulator_listens_on_loopback_only() -> None:
    if not Path("/proc/net/tcp").exists():
        pytest.skip("needs /proc/net/tcp to see what a process listens on")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "dccd_cli", "emulator", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not _listening(port):
            assert proc.poll() is None, "the emulator exited"
            assert time.monotonic() < deadline, "the emulator did not start listening"
            time.sleep(0.05)
        assert _listening(port) == ["0100007F"]  # 127.0.0.1, nothing else
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# -- TLS is verified -----------------------------------------------------------------------


def test_tls_verification_is_on_in_both_transports(monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = KeepAliveTransport()._ssl_context()
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # httpx's own client, for proxies
    proxied = make_transport()
    assert isinstance(proxied, HttpxTransport)
    for transport in [proxied.client._transport, *proxied.client._mounts.values()]:
        assert isinstance(transport, httpx.AsyncHTTPTransport)
        pool_ctx = transport._pool._ssl_context  # type: ignore[attr-defined]
        assert pool_ctx.verify_mode == ssl.CERT_REQUIRED and pool_ctx.check_hostname


def test_no_code_turns_verification_off() -> None:
    risky = re.compile(r"verify\s*=\s*False|CERT_NONE|check_hostname\s*=\s*False|"
                       r"_create_unverified_context|PYTHONHTTPSVERIFY")
    for path in [*PACKAGE.joinpath("dccd_cli").rglob("*.py"), *PACKAGE.joinpath("adapters").rglob("*.py")]:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            assert not risky.search(line), f"{path}:{n}: {line.strip()}"


@pytest.fixture
def self_signed_server(tmp_path: Path) -> Iterator[int]:
    """An HTTPS server on loopback whose certificate nobody signed."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    sock.settimeout(0.2)
    stop = False

    def accept() -> None:
        while not stop:
            try:
                conn, _ = sock.accept()
            except (TimeoutError, OSError):
                continue
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1024)
                    tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            except (ssl.SSLError, OSError):
                conn.close()  # the client refused the certificate: as it should

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop = True
        thread.join(timeout=5)
        sock.close()


@pytest.mark.parametrize("proxy_env", [False, True], ids=["stream-transport", "httpx-transport"])
def test_an_unverified_certificate_is_refused(self_signed_server: int, proxy_env: bool,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    if proxy_env:  # httpx's transport, as used behind a proxy; no proxy for loopback itself
        monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")

    async def fetch() -> None:
        async with AsyncHTTPClient("binance", f"https://127.0.0.1:{self_signed_server}",
                                   max_retries=0) as client:
            await client.get("/api/v3/time")

    with pytest.raises(NetworkError, match="(?i)certificate"):
        asyncio.run(fetch())


# -- no secret in logs, errors or files -------------------------------------------------


def test_credentials_in_a_base_url_are_sent_as_a_header_only() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"serverTime": 0})

    async def fetch() -> str:
        async with AsyncHTTPClient("binance", f"https://alice:{SECRET}@example.test/api",
                                   transport=httpx.MockTransport(handler)) as client:
            return (await client.get("/v3/time")).url

    url = asyncio.run(fetch())
    assert SECRET not in url and SECRET not in str(seen[0].url)
    assert seen[0].headers["authorization"].startswith("Basic ")


def test_credentials_never_reach_logs_errors_or_files(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    out, cache = tmp_path / "out", Path(os.environ["DCCD_CACHE_DIR"])
    # Every data request of the second half fails, so errors (with URLs) land in the
    # summary, on stderr and in the ledger.
    with EmulatorServer(settings(faults={"binance": "5xx@6-/klines"})) as server:
        url = server.venue_url("binance").replace("http://", f"http://alice:{SECRET}@")
        r = run_cli("ohlc", "binance", "BTC-USDT", "--span", "1m", "--start", "2024-01-01",
                    "--end", "2024-01-07", "--base-url", url, "--out", str(out), "--json",
                    env=FAST_FAILURE)
        assert r.code == 1, r.stderr
        assert "127.0.0.1" in r.stdout  # the URLs are there, without what was in them
        server.faults.configure({"binance": "5xx@1-/aggTrades"})
        caplog.set_level(logging.DEBUG)  # everything any logger says, httpx's included
        caplog.set_level(logging.DEBUG, logger="dccd")  # dccd.http logs each request it sends
        monkeypatch.setattr(logging.getLogger("dccd"), "propagate", True)  # as a CLI run set it
        req = DownloadRequest(kind="trades", exchange="binance", symbols=["BTC-USDT"],
                              start="2024-01-01T00:00", end="2024-01-01T01:00", out=out, base_url=url)
        for name, value in FAST_FAILURE.items():
            monkeypatch.setenv(name, value)
        result = asyncio.run(run_download(req))
    assert result.exit_code == 1
    assert "HTTP Request" in caplog.text or "GET" in caplog.text
    for text in (r.stdout, r.stderr, caplog.text, str(result.to_json())):
        assert SECRET not in text and "alice" not in text
    for path in [*out.rglob("*"), *cache.rglob("*")]:
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


# -- symbols cannot steer paths ------------------------------------------------------------


@given(symbol=st.text(max_size=60), exchange=st.text(max_size=20), span=st.text(max_size=8))
def test_no_series_key_leaves_the_dataset(symbol: str, exchange: str, span: str) -> None:
    root = Path("dataset-root")  # only computed with, never touched
    for kind, s in (("ohlc", span), ("trades", None)):
        try:
            key = SeriesKey(kind, exchange, symbol, s)  # type: ignore[arg-type]
        except OutputPathError:
            continue
        directory = key.dir(root)
        assert os.path.normpath(directory) == str(directory)  # no "..", no "//", no "."
        assert directory.is_relative_to(root / kind)
        assert len(directory.relative_to(root).parts) == (4 if kind == "ohlc" else 3)


@pytest.mark.parametrize("symbol", ["../../etc", "BTC/../../USDT", "..-..", "BTC-USDT/..", "/abs-x"])
def test_path_symbols_are_refused_as_series(symbol: str) -> None:
    with pytest.raises(OutputPathError):
        SeriesKey("trades", "binance", symbol)
