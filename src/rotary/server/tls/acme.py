"""Certificates from an ACME CA (Let's Encrypt) for ``http_server.tls_autocert``, as Centrifugo's
autocert does it: issued on demand for the names clients ask for, cached, renewed before expiry.

Centrifugo (Go's autocert) obtains a certificate inside the first TLS handshake that asks for a
host, holding that handshake until the CA answers. Python's SNI callback cannot wait, so here the
first handshake for a host without a certificate starts the order and fails; the handshakes after
the order completes are served with the new certificate. Cached certificates (``cache_dir``) are
loaded at once, so a restart serves them without the CA. The challenge is HTTP-01, answered on
``http_addr``; Centrifugo's other challenge, TLS-ALPN-01 (``http: false``), needs a handshake
that Python's ``ssl`` cannot steer on the client's ALPN, and is refused at validation.

The cache keeps autocert's layout: the file named after the host holds the certificate's key
then its chain (PEM), and ``acme_account+key`` the account key, so a cache directory carries over
from Centrifugo. Centrifugo has no setting for the CA; rotary reads ``ROTARY_ACME_DIRECTORY_URL``
(default: Let's Encrypt) so that staging CAs and test CAs can be used.
See https://centrifugal.dev/docs/server/tls#automatic-certificates
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests
from acme import challenges, client, crypto_util, errors, messages
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from josepy import errors as josepy_errors
from josepy.jwa import ES256
from josepy.jwk import JWKEC

from rotary.server.config.schema_transports import TLSAutocertConfig
from rotary.server.server_header import send_no_server_header
from rotary.server.tls.context import HTTP_ALPN, load_key_pair
from rotary.server.tls.listeners import split_http_addr

log = logging.getLogger("rotary.server.acme")

DIRECTORY_ENV = "ROTARY_ACME_DIRECTORY_URL"
"""rotary's own variable (Centrifugo has none): the ACME directory to order certificates from."""
LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
RENEW_BEFORE = datetime.timedelta(days=30)
"""autocert's default: a certificate is renewed once it has less than this left."""
RENEW_CHECK_INTERVAL = 3600.0
"""Seconds between two looks for certificates due for renewal."""
RETRY_AFTER_FAILURE = 60.0
"""Seconds during which handshakes for a host whose order failed start no new order, so that a
CA refusing (or rate-limiting) a name is not asked again on every connection attempt."""
ORDER_TIMEOUT = datetime.timedelta(seconds=90)
ACCOUNT_KEY_FILE = "acme_account+key"

Clock = Callable[[], float]
ORDER_FAILURES = (errors.Error, josepy_errors.Error, requests.RequestException, ValueError, OSError)
"""What an order can end with when the CA refuses it, answers nonsense or cannot be reached."""


@dataclass(frozen=True, slots=True)
class Issued:
    host: str
    key_pem: bytes
    chain_pem: bytes
    not_after: float
    """Expiry as a Unix time."""


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey, fmt: serialization.PrivateFormat) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


def _issued(host: str, key_pem: bytes, chain_pem: bytes) -> Issued:
    leaf = x509.load_pem_x509_certificate(chain_pem)
    return Issued(host, key_pem, chain_pem, leaf.not_valid_after_utc.timestamp())


class AcmeOrders:
    """Talks to the CA (blocking; run in a thread): one account, one order per certificate.

    ``challenges`` maps an HTTP-01 path to the answer the challenge server gives while an order
    is being validated."""

    def __init__(self, directory_url: str, email: str, account_key: ec.EllipticCurvePrivateKey) -> None:
        self._directory_url = directory_url
        self._email = email
        self._account_key = JWKEC(key=account_key)
        self._client: client.ClientV2 | None = None
        self.challenges: dict[str, str] = {}

    def _account(self) -> client.ClientV2:
        if self._client is not None:
            return self._client
        net = client.ClientNetwork(self._account_key, alg=ES256, user_agent="rotary")
        directory = client.ClientV2.get_directory(self._directory_url, net)
        acme = client.ClientV2(directory, net)
        registration = messages.NewRegistration.from_data(
            email=self._email or None, terms_of_service_agreed=True
        )
        try:
            acme.new_account(registration)
        except errors.ConflictError as existing:  # the key has an account already (a cached key)
            found = messages.RegistrationResource(body=messages.Registration(), uri=existing.location)
            net.account = acme.query_registration(found)
        self._client = acme
        return acme

    def order(self, host: str) -> Issued:
        """A certificate for ``host``, validated over HTTP-01. Raises ``acme.errors.Error`` or
        ``requests`` errors when the CA refuses or cannot be reached."""
        acme = self._account()
        key = _new_key()
        csr = crypto_util.make_csr(_key_pem(key, serialization.PrivateFormat.PKCS8), [host])
        order = acme.new_order(csr)
        paths = []
        try:
            for authorization in order.authorizations:
                if authorization.body.status == messages.STATUS_VALID:
                    continue
                challenge = next(
                    (c for c in authorization.body.challenges if isinstance(c.chall, challenges.HTTP01)), None
                )
                if challenge is None:
                    raise errors.Error(f"the CA offers no http-01 challenge for {host}")
                response, validation = challenge.response_and_validation(self._account_key)
                self.challenges[challenge.path] = validation
                paths.append(challenge.path)
                acme.answer_challenge(challenge, response)
            deadline = datetime.datetime.now() + ORDER_TIMEOUT
            done = acme.poll_and_finalize(order, deadline)
        finally:
            for path in paths:
                self.challenges.pop(path, None)
        key_pem = _key_pem(key, serialization.PrivateFormat.TraditionalOpenSSL)
        return _issued(host, key_pem, done.fullchain_pem.encode())


class CertCache:
    """``cache_dir`` in autocert's layout; without a directory nothing outlives the process."""

    def __init__(self, directory: str) -> None:
        self._directory = Path(directory) if directory else None

    def account_key(self) -> ec.EllipticCurvePrivateKey:
        if self._directory is not None:
            path = self._directory / ACCOUNT_KEY_FILE
            if path.is_file():
                loaded = serialization.load_pem_private_key(path.read_bytes(), None)
                if isinstance(loaded, ec.EllipticCurvePrivateKey):
                    return loaded
        key = _new_key()
        self._write(ACCOUNT_KEY_FILE, _key_pem(key, serialization.PrivateFormat.TraditionalOpenSSL))
        return key

    def load(self, host: str) -> Issued | None:
        if self._directory is None or "/" in host or host.startswith("."):
            return None
        path = self._directory / host
        if not path.is_file():
            return None
        data = path.read_bytes()
        start = data.find(b"-----BEGIN CERTIFICATE-----")
        if start <= 0:
            return None
        try:
            return _issued(host, data[:start], data[start:])
        except ValueError:
            return None

    def store(self, issued: Issued) -> None:
        self._write(issued.host, issued.key_pem + issued.chain_pem)

    def _write(self, name: str, data: bytes) -> None:
        if self._directory is None:
            return
        self._directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = self._directory / f".{name}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        temporary.replace(self._directory / name)


class Autocert:
    """The TLS context of listeners under ``tls_autocert``: picks each host's certificate by SNI,
    orders missing ones and renews those near expiry.

    ``clock`` (Unix seconds) decides renewals; tests move it instead of waiting for expiry."""

    def __init__(
        self,
        config: TLSAutocertConfig,
        *,
        directory_url: str | None = None,
        clock: Clock = time.time,
    ) -> None:
        self._config = config
        self._clock = clock
        self._cache = CertCache(config.cache_dir)
        url = directory_url or os.environ.get(DIRECTORY_ENV) or LETS_ENCRYPT
        self.orders = AcmeOrders(url, config.email, self._cache.account_key())
        self._certificates: dict[str, tuple[Issued, ssl.SSLContext]] = {}
        self._ordering: dict[str, asyncio.Task[None]] = {}
        self._failed_at: dict[str, float] = {}
        self._renewing: asyncio.Task[None] | None = None
        self._challenge_runner: web.AppRunner | None = None
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.context.set_alpn_protocols(list(HTTP_ALPN))
        self.context.sni_callback = self._select
        for host in config.host_whitelist:
            cached = self._cache.load(host)
            if cached is not None:
                self._install(cached)

    def allowed(self, host: str) -> bool:
        whitelist = self._config.host_whitelist
        return bool(host) and (not whitelist or host in whitelist)

    def _select(
        self, conn: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: ssl.SSLContext
    ) -> int | None:
        """The SNI callback: switches the handshake to the host's context, or fails it (starting
        an order when the host may have a certificate)."""
        host = (server_name or self._config.server_name).lower().rstrip(".")
        if not self.allowed(host):
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        known = self._certificates.get(host)
        if known is None:
            cached = self._cache.load(host)
            if cached is not None:
                known = self._install(cached)
        if known is not None:
            conn.context = known[1]
            return None
        failed_at = self._failed_at.get(host)
        if failed_at is None or self._clock() - failed_at >= RETRY_AFTER_FAILURE:
            self.obtain(host)
        return ssl.ALERT_DESCRIPTION_INTERNAL_ERROR

    def obtain(self, host: str) -> asyncio.Task[None]:
        """The order of ``host``'s certificate, started unless one is under way."""
        running = self._ordering.get(host)
        if running is None:
            running = asyncio.get_running_loop().create_task(self._order(host))
            self._ordering[host] = running
            running.add_done_callback(lambda _: self._ordering.pop(host, None))
        return running

    async def _order(self, host: str) -> None:
        try:
            issued = await asyncio.to_thread(self.orders.order, host)
        except ORDER_FAILURES as exc:  # the CA said no or is unreachable: asked again later
            self._failed_at[host] = self._clock()
            log.error("acme: cannot obtain a certificate for %s: %s", host, exc)
            return
        self._failed_at.pop(host, None)
        self._cache.store(issued)
        self._install(issued)
        log.info("acme: certificate for %s obtained, valid until %s", host, _utc(issued.not_after))

    def _install(self, issued: Issued) -> tuple[Issued, ssl.SSLContext]:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols(list(HTTP_ALPN))
        load_key_pair(context, issued.chain_pem, issued.key_pem)
        entry = (issued, context)
        self._certificates[issued.host] = entry
        return entry

    def pending(self, host: str) -> asyncio.Task[None] | None:
        """The order of ``host`` under way, if any."""
        return self._ordering.get(host)

    def certificate(self, host: str) -> Issued | None:
        known = self._certificates.get(host)
        return known[0] if known else None

    async def renew_due(self) -> None:
        """Renews every certificate with less than ``RENEW_BEFORE`` left by the clock."""
        due_at = self._clock() + RENEW_BEFORE.total_seconds()
        due = [host for host, (issued, _) in self._certificates.items() if issued.not_after <= due_at]
        for host in due:
            await self.obtain(host)

    async def _renew_forever(self) -> None:
        while True:
            await self.renew_due()
            await asyncio.sleep(RENEW_CHECK_INTERVAL)

    async def start(self) -> None:
        """Starts the renewals and, with ``http: true``, the HTTP-01 challenge server on
        ``http_addr``. Raises OSError when that address cannot be bound."""
        if self._config.http:
            host, port = split_http_addr(self._config.http_addr)
            runner = web.AppRunner(challenge_app(self.orders.challenges), access_log=None)
            await runner.setup()
            try:
                await web.TCPSite(runner, host or None, port).start()
            except OSError:
                await runner.cleanup()
                raise
            self._challenge_runner = runner
            log.info("serving ACME http_01 challenge on %s", self._config.http_addr)
        self._renewing = asyncio.get_running_loop().create_task(self._renew_forever())

    async def close(self) -> None:
        tasks = [t for t in (self._renewing, *self._ordering.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._challenge_runner is not None:
            await self._challenge_runner.cleanup()


def challenge_app(answers: dict[str, str]) -> web.Application:
    """HTTP-01 answers under /.well-known/acme-challenge/; like autocert's handler, any other GET
    or HEAD is redirected to https and anything else is refused."""

    async def handle(request: web.Request) -> web.StreamResponse:
        answer = answers.get(request.path)
        if answer is not None:
            return web.Response(text=answer, content_type="text/plain")
        if request.method not in ("GET", "HEAD"):
            return web.Response(status=400, text="Use HTTPS")
        host = request.host.rsplit(":", 1)[0] if not request.host.endswith("]") else request.host
        raise web.HTTPFound(f"https://{host}{request.path_qs}")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    send_no_server_header(app)
    return app


def _utc(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).isoformat()
