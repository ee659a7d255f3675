"""A local webhook receiver: an HTTP(S) server on 127.0.0.1 (stdlib, in a thread) that records
every request and answers as told: fail the first N, redirect, answer slowly, or answer with a
large body. `tls_pair` makes a throwaway CA and a certificate for a host name (and for no IP
address), so a test can deliver over HTTPS with the certificate checked against that name.
`end_with_callback` puts a job in the state a delivery starts from."""

from __future__ import annotations

import asyncio
import datetime
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shared.store.keys import QueueKeys


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lower-case
    body: bytes


@dataclass
class Behaviour:
    fail_first: int = 0  # answer `fail_status` to the first N requests
    fail_status: int = 500
    status: int = 204  # the answer once the failures are used up
    redirect_to: str | None = None  # answer 302 with this Location instead
    delay_s: float = 0.0  # wait before answering
    body_bytes: int = 0  # length of the answer's body (the letter x)


@dataclass
class WebhookReceiver:
    behaviour: Behaviour = field(default_factory=Behaviour)
    requests: list[ReceivedRequest] = field(default_factory=list)
    body_bytes_written: int = 0
    max_concurrent: int = 0
    _concurrent: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    tls: bool = False

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    def start(self, tls_context: ssl.SSLContext | None = None) -> WebhookReceiver:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        if tls_context is not None:
            server.socket = tls_context.wrap_socket(server.socket, server_side=True)
            self.tls = True
        self._server = server
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    async def wait_for(self, count: int, timeout_s: float = 15.0) -> list[ReceivedRequest]:
        """The requests once at least `count` arrived; AssertionError after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while len(self.requests) < count:
            assert time.monotonic() < deadline, f"{len(self.requests)} of {count} requests came"
            await asyncio.sleep(0.02)
        return list(self.requests)

    def _answer(self) -> tuple[int, dict[str, str]]:
        with self._lock:
            number = len(self.requests)
        if self.behaviour.redirect_to is not None:
            return 302, {"Location": self.behaviour.redirect_to}
        if number <= self.behaviour.fail_first:
            return self.behaviour.fail_status, {}
        return self.behaviour.status, {}


def _handler_for(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            with receiver._lock:
                receiver._concurrent += 1
                receiver.max_concurrent = max(receiver.max_concurrent, receiver._concurrent)
            try:
                self._record_and_answer()
            finally:
                with receiver._lock:
                    receiver._concurrent -= 1

        def _record_and_answer(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            with receiver._lock:
                receiver.requests.append(ReceivedRequest("POST", self.path, headers, body))
            time.sleep(receiver.behaviour.delay_s)
            status, extra = receiver._answer()
            size = receiver.behaviour.body_bytes
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(size))
            self.send_header("Connection", "close")
            self.end_headers()
            self._write_body(size)

        def _write_body(self, size: int) -> None:
            chunk, written = b"x" * 65536, 0
            try:
                while written < size:
                    part = chunk[: size - written]
                    self.wfile.write(part)
                    written += len(part)
            except OSError:
                pass  # the sender stopped reading and closed the connection
            finally:
                with receiver._lock:
                    receiver.body_bytes_written += written

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@dataclass(frozen=True)
class TlsPair:
    server: ssl.SSLContext  # presents a certificate for the host name
    client: ssl.SSLContext  # trusts only the throwaway CA


def tls_pair(host: str, directory: Path) -> TlsPair:
    """A CA and a certificate for `host` signed by it (PEM files written to `directory`)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "webhook test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(host)]  # the name only, no IP address
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    (directory / "cert.pem").write_bytes(cert.public_bytes(pem))
    (directory / "key.pem").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    client = ssl.create_default_context(cafile=str(directory / "ca.pem"))
    return TlsPair(server=server, client=client)


def end_with_callback(
    direct: redis.Redis,
    keys: QueueKeys,
    job_id: str,
    *,
    now_ms: int,
    status: str = "completed",
    due_ms: int | None = None,
    retention_ms: int = 86_400_000,
) -> None:
    """Put an enqueued job (with a callbackUrl) in the state the queue's end-of-job scripts leave
    it in: finished, its delivery pending and due at `due_ms` (default now)."""
    fields: dict[str, str | int] = {
        "status": status,
        "finishedAt": now_ms,
        "updatedAt": now_ms,
        "webhook": '{"status":"pending","attempts":0,"lastError":null}',
    }
    if status == "completed":
        fields["result"] = '{"ok":true}'
    direct.zrem(keys.ready, job_id)
    direct.hset(keys.job(job_id), mapping=fields)
    direct.pexpire(keys.job(job_id), retention_ms)
    direct.zadd(keys.webhooks, {job_id: now_ms if due_ms is None else due_ms})
