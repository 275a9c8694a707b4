"""HTTPS for booths on the LAN (issue 13, kiosk/tls.py, web/tls_page.py).

The certificate authority and server certificate `artbooth serve` makes are checked as a browser and
an installer read them (names, constraints, key usage, validity, file modes, when they are issued
again). Then the real service serves HTTPS with them on loopback under a LAN-like name, which
Chromium maps to 127.0.0.1 (--host-resolver-rules). Chromium trusts the generated CA because it is in
the NSS database of the browser's HOME (~/.pki/nssdb), put there with `certutil` (Debian's
libnss3-tools) as on a Linux booth; no flag ignores certificate errors. (Chromium also honours
--ignore-certificate-errors-spki-list, Playwright giving it a --user-data-dir, but a pinned key skips
the chain's checks: a certificate with the wrong names or a broken CA would pass.) There a paired
booth gets its camera and completes a capture, and a booth that opens the service over plain HTTP
under such a name tells the visitor its camera is unavailable and reports why.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import os
import re
import shutil
import socket
import ssl
import subprocess

import aiohttp
import ifaddr
import numpy as np
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.abc import AbstractResolver
from aiohttp.test_utils import unused_port
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from yarl import URL

from api_helpers import CHEAP_HASHES, OPERATOR, add_staff
from booth_helpers import pair, pairing_link
from cli_helpers import run
from fakecamera import CHROMIUM, CHROMIUM_ARGS, fake_camera_args, visitor_in_room, write_y4m
from imagefiles import encoded
from kiosk import tls
from kiosk.settings import Settings, SettingsError
from servers import loopback_settings, running
from web import phone_http
from web.keys import BOOTHS_KEY, SETTINGS_KEY, STORAGE_KEY
from web.kiosk import BOOTH_COOKIE, BOOTH_HEADER
from web.visitor_text import BOOTH_SCRIPT_TEXT

BOOTH_HOST = "booth.museum.test"  # the name booths open the HTTPS server by
PLAIN_HOST = "plain.museum.test"  # the service on the LAN over plain HTTP
ARTWORK = "demo-golden-meadow"
# Small: the test is about the page's secure context, and every frame is encoded, sent and rendered.
CAMERA_SIZE = (320, 240)
CERTUTIL = shutil.which("certutil")


def _settings(tmp_path, **environ: str) -> Settings:
    return Settings.load(environ={"ARTBOOTH_DATA_DIR": str(tmp_path), **environ})


def _load(path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _names(certificate: x509.Certificate) -> tuple[set[str], set[str]]:
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName)), {str(a) for a in san.get_values_for_type(x509.IPAddress)}


def _this_machines_addresses() -> set[str]:
    found = set()
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            address = ipaddress.ip_address(ip.ip[0] if isinstance(ip.ip, tuple) else ip.ip)
            if not address.is_loopback and not (address.version == 6 and address.is_link_local):
                found.add(str(address))
    return found


# --- the certificates, without a browser -------------------------------------------------------------


def test_a_lan_server_gets_a_ca_and_a_server_certificate_naming_its_lan_names_and_addresses(tmp_path):
    settings = _settings(
        tmp_path,
        ARTBOOTH_HOST="0.0.0.0",
        ARTBOOTH_PUBLIC_URL="https://photos.museum.test:8443",
        ARTBOOTH_TLS_EXTRA_NAMES="Booth.Museum.Lan, 10.9.8.7",
    )
    assert settings.serves_tls
    context = tls.server_context(settings)
    assert isinstance(context, ssl.SSLContext)

    folder = tmp_path / "tls"
    ca, server = _load(folder / "ca.crt"), _load(folder / "server.crt")
    # The CA: a CA that may sign server certificates only (no CA under it), for ten years.
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    assert not usage.value.digital_signature and not usage.value.key_encipherment
    assert ca.issuer == ca.subject
    assert ca.not_valid_after_utc - ca.not_valid_before_utc > datetime.timedelta(days=9 * 365)

    # The server certificate: the CA's, for a TLS server only, within Apple's 825 days.
    server.verify_directly_issued_by(ca)
    constraints = server.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and not constraints.value.ca
    usage = server.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign
    assert list(server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert server.not_valid_after_utc - server.not_valid_before_utc <= datetime.timedelta(days=825)
    assert server.not_valid_before_utc < datetime.datetime.now(datetime.timezone.utc)

    dns_names, addresses = _names(server)
    hostname = socket.gethostname().lower()
    short = hostname.split(".")[0]
    assert {hostname, f"{short}.local", "photos.museum.test", "booth.museum.lan"} <= dns_names
    assert _this_machines_addresses() | {"10.9.8.7"} == addresses
    assert not any(ipaddress.ip_address(a).is_loopback for a in addresses) and "localhost" not in dns_names

    # Private keys for the owner alone; the certificates readable.
    assert (folder / "ca.key").stat().st_mode & 0o777 == 0o600
    assert (folder / "server.key").stat().st_mode & 0o777 == 0o600
    assert (folder / "ca.crt").stat().st_mode & 0o777 == 0o644
    key = serialization.load_pem_private_key((folder / "server.key").read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.public_key() == server.public_key()


def test_the_server_certificate_is_issued_again_when_names_change_or_it_nears_its_end_the_ca_never(tmp_path):
    settings = _settings(tmp_path, ARTBOOTH_HOST="0.0.0.0", ARTBOOTH_TLS_EXTRA_NAMES="booth.museum.lan")
    folder = tmp_path / "tls"
    tls.server_context(settings)
    ca_pem, first = (folder / "ca.crt").read_bytes(), (folder / "server.crt").read_bytes()

    tls.server_context(settings)  # the next start, nothing changed
    assert (folder / "server.crt").read_bytes() == first

    renamed = dataclasses.replace(settings, tls_extra_names="kiosk.museum.lan")
    tls.server_context(renamed)  # a name added, one gone
    second = (folder / "server.crt").read_bytes()
    assert second != first
    dns_names, _ = _names(_load(folder / "server.crt"))
    assert "kiosk.museum.lan" in dns_names and "booth.museum.lan" not in dns_names

    late = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=tls.SERVER_VALID_DAYS - 10)
    tls.server_context(renamed, now=late)  # a start in its last month
    assert (folder / "server.crt").read_bytes() != second
    assert _load(folder / "server.crt").not_valid_after_utc > late + datetime.timedelta(days=300)

    (folder / "server.key").unlink()  # a lost key
    tls.server_context(renamed)
    _load(folder / "server.crt").verify_directly_issued_by(_load(folder / "ca.crt"))
    assert (folder / "ca.crt").read_bytes() == ca_pem  # booths never install anything again


def test_loopback_stays_plain_http_and_the_settings_say_when_https_is_served(tmp_path):
    loopback = _settings(tmp_path)
    assert not loopback.serves_tls and tls.server_context(loopback) is None
    assert loopback.resolved_public_url.startswith("http://localhost:")
    assert not (tmp_path / "tls").exists()
    # On the LAN: HTTPS with the generated certificate for booths, and phones' download links on the
    # plain phone port (port + 1 unless set), since phones do not trust our CA.
    lan = _settings(tmp_path, ARTBOOTH_HOST="0.0.0.0", ARTBOOTH_PORT="8080")
    assert lan.serves_tls and lan.serves_phone_http and lan.resolved_public_url.endswith(":8081")
    assert lan.resolved_public_url.startswith("http://")
    # Pairing and set-up links carry one-time codes: they name the HTTPS port, never the phones' one.
    assert lan.resolved_service_url.startswith("https://") and lan.resolved_service_url.endswith(":8080")
    moved = _settings(tmp_path, ARTBOOTH_HOST="0.0.0.0", ARTBOOTH_PORT="8080", ARTBOOTH_PHONE_HTTP_PORT="9000")
    assert moved.resolved_public_url.endswith(":9000")
    behind_proxy = _settings(tmp_path, ARTBOOTH_HOST="0.0.0.0", ARTBOOTH_TLS="off")
    assert not behind_proxy.serves_tls and tls.server_context(behind_proxy) is None and not behind_proxy.serves_phone_http
    forced = _settings(tmp_path, ARTBOOTH_TLS="on")
    assert forced.resolved_public_url == f"http://localhost:{forced.port + 1}"
    own = _settings(tmp_path, ARTBOOTH_TLS_CERTIFICATE="/etc/a.crt", ARTBOOTH_TLS_PRIVATE_KEY="/etc/a.key")
    assert not own.serves_phone_http and own.resolved_public_url.startswith("https://")  # a certificate phones trust
    for environ, message in (
        ({"ARTBOOTH_TLS": "yes"}, "tls must be one of auto, on, off"),
        ({"ARTBOOTH_TLS_CERTIFICATE": "/etc/a.crt"}, "tls_certificate and tls_private_key go together"),
        ({"ARTBOOTH_TLS_EXTRA_NAMES": "booth museum"}, "neither a DNS name"),
        ({"ARTBOOTH_PORT": "8080", "ARTBOOTH_PHONE_HTTP_PORT": "8080"}, "phone_http_port must be a port"),
    ):
        with pytest.raises(SettingsError, match=message):
            _settings(tmp_path, **environ)


def test_a_given_certificate_is_served_as_it_is_and_a_broken_one_is_named(tmp_path):
    issued = _settings(tmp_path / "elsewhere", ARTBOOTH_HOST="0.0.0.0")
    tls.server_context(issued)
    certificate, key = tmp_path / "elsewhere" / "tls" / "server.crt", tmp_path / "elsewhere" / "tls" / "server.key"
    given = _settings(tmp_path, ARTBOOTH_TLS_CERTIFICATE=str(certificate), ARTBOOTH_TLS_PRIVATE_KEY=str(key))
    assert given.serves_tls  # on loopback too: the certificate says so
    assert isinstance(tls.server_context(given), ssl.SSLContext)
    assert not (tmp_path / "tls").exists()  # no CA of its own
    wrong = dataclasses.replace(given, tls_private_key=certificate)
    with pytest.raises(tls.TLSError, match=str(certificate)):
        tls.server_context(wrong)


def test_artbooth_tls_ca_makes_the_ca_and_prints_its_path_and_fingerprint(settings, env):
    env = env | {"ARTBOOTH_HOST": "0.0.0.0"}
    shown = run(["tls", "ca"], env)
    assert shown.returncode == 0, shown.stderr
    ca = tls.local_ca(settings)
    assert f"certificate authority: {ca.certificate_path}" in shown.stdout
    assert f"SHA-256 fingerprint:   {ca.fingerprint}" in shown.stdout and len(ca.fingerprint) == 32 * 3 - 1


# --- the service over HTTPS ----------------------------------------------------------------------------


class _LanNames(AbstractResolver):
    """Resolves the test's LAN names to 127.0.0.1, as Chromium's --host-resolver-rules does."""

    async def resolve(self, host, port=0, family=socket.AF_INET):
        return [{"hostname": host, "host": "127.0.0.1", "port": port, "family": socket.AF_INET, "proto": 0, "flags": 0}]

    async def close(self) -> None:
        pass


def _lan_client(ca_file=None, **headers: str) -> aiohttp.ClientSession:
    """A client that opens the LAN names, trusting ``ca_file`` only (else the system's CAs)."""
    context = ssl.create_default_context(cafile=ca_file)
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=_LanNames(), ssl=context), headers=headers)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def secure_server(tmp_path_factory, models_dir):
    """The service over HTTPS with its generated certificate, its public URL the LAN name booths open."""
    settings = loopback_settings(
        tmp_path_factory.mktemp("data"),
        models_dir,
        ARTBOOTH_KIOSK_COUNTDOWN_SECONDS="0",
        # The live preview is not what is tested here: one thread, no colour refits, leave the
        # capture a core (the capture's own look is unchanged).
        ARTBOOTH_PREVIEW_THREADS="1",
        ARTBOOTH_PREVIEW_COLOUR="false",
        **CHEAP_HASHES,
    )
    settings = dataclasses.replace(
        settings, tls="on", public_url=f"https://{BOOTH_HOST}:{settings.port}", phone_http_port=unused_port()
    )
    async with running(settings, ssl_context=tls.server_context(settings)) as server:
        await add_staff(server)
        yield server


def _on(server, host: str, path: str) -> URL:
    """``path`` on ``server``, opened by ``host`` (a LAN name)."""
    return URL.build(scheme=server.scheme, host=host, port=server.port, path=path)


_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.mark.asyncio(loop_scope="module")
async def test_the_ca_certificate_is_public_and_signed_in_staff_see_how_to_install_it(secure_server):
    ca = tls.local_ca(secure_server.app[SETTINGS_KEY])
    async with _lan_client() as untrusting:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):  # a device that did not install the CA
            await untrusting.get(_on(secure_server, BOOTH_HOST, "/tls/ca.crt"))
    async with _lan_client(ca.certificate_path) as client:
        async with client.get(_on(secure_server, BOOTH_HOST, "/tls/ca.crt")) as response:
            assert response.status == 200
            assert response.content_type == "application/x-x509-ca-cert"
            assert response.headers["Content-Disposition"] == 'attachment; filename="artbooth-ca.crt"'
            assert await response.read() == ca.pem

        async with client.get(_on(secure_server, BOOTH_HOST, "/staff/tls"), allow_redirects=False) as response:
            assert response.status == 303 and response.headers["Location"].startswith("/staff/login")
        async with client.get(_on(secure_server, BOOTH_HOST, "/staff/login")) as response:
            token = _CSRF_FIELD.search(await response.text()).group(1)
        form = {"csrf_token": token, "username": OPERATOR[0], "password": OPERATOR[1]}
        async with client.post(_on(secure_server, BOOTH_HOST, "/staff/login"), data=form, allow_redirects=False) as response:
            assert response.status == 303, await response.text()
        async with client.get(_on(secure_server, BOOTH_HOST, "/staff/tls")) as response:
            assert response.status == 200
            page = await response.text()
    shown = re.search(r'<code id="ca-fingerprint">(.*?)</code>', page, re.S).group(1)
    assert shown.replace("<br>", ":") == ca.fingerprint
    assert 'id="ca-download" href="/tls/ca.crt"' in page
    assert f"<code>{BOOTH_HOST}</code>" in page  # the name booths open, in the server's certificate
    for platform in ("Windows", "macOS", "Linux", "Android", "iPhone"):
        assert platform in page
    assert "PRIVATE KEY" not in page


@pytest.mark.asyncio(loop_scope="module")
async def test_phones_open_their_download_pages_over_plain_http_and_nothing_else_is_served_there(secure_server):
    settings = secure_server.app[SETTINGS_KEY]
    saved = await secure_server.app[STORAGE_KEY].save(
        encoded(np.full((120, 160, 3), 90, np.uint8)), {"framing": "half-body", "people": 1}, artwork_id=ARTWORK
    )
    site = phone_http.phone_site(secure_server.runner, settings)  # as `artbooth serve` adds it beside HTTPS
    await site.start()
    plain = f"http://127.0.0.1:{settings.resolved_phone_http_port}"
    token_path = URL(saved.url).path
    try:
        async with aiohttp.ClientSession() as phone:  # a visitor's phone: it never installed our CA
            async with phone.get(plain + token_path) as response:
                assert response.status == 200 and "Download" in await response.text()
            async with phone.get(plain + token_path + "/download") as response:
                assert response.status == 200 and response.content_type == "image/jpeg"
            async with phone.get(plain + "/tls/ca.crt") as response:
                assert response.status == 200
            # The booth, staff sign-in and the API only over HTTPS: passwords and credentials never go in clear.
            for method, path in (("GET", "/staff/login"), ("POST", "/staff/login"), ("GET", "/kiosk/booth-1"), ("GET", "/api/v1/artworks"), ("GET", "/")):
                async with phone.request(method, plain + path, allow_redirects=False) as response:
                    assert response.status == 308, (method, path)
                    assert response.headers["Location"] == f"https://127.0.0.1:{settings.port}{path}"
    finally:
        await site.stop()


async def _paired_page(chromium, server, kiosk_id: str):
    """A booth screen in Chromium, paired through the pairing link opened under BOOTH_HOST."""
    page = await chromium.new_page(viewport={"width": 1280, "height": 800})
    response = await page.goto(str(URL(await pairing_link(server, kiosk_id)).with_host(BOOTH_HOST)))
    assert response.ok
    await page.click("#pair")
    # Not the load event: that waits for the artworks' first thumbnails, made meanwhile.
    await page.wait_for_url(f"**/kiosk/{kiosk_id}", wait_until="domcontentloaded")
    return page, response


async def _plain_http_booth(chromium, server, kiosk_id: str, ca: tls.LocalCA):
    """A booth screen in Chromium that opens the same service over plain HTTP under PLAIN_HOST (a
    second, plain listener), with the credential a pairing gave it: its cookies are Secure (the
    service's public URL is HTTPS), which a browser would not store from plain HTTP."""
    port = unused_port()
    site = web.TCPSite(server.runner, "127.0.0.1", port)
    await site.start()
    async with _lan_client(ca.certificate_path, **{BOOTH_HEADER: "1"}) as screen:
        await pair(screen, str(URL(await pairing_link(server, kiosk_id)).with_host(BOOTH_HOST)))
        credential = screen.cookie_jar.filter_cookies(_on(server, BOOTH_HOST, f"/kiosk/{kiosk_id}"))[BOOTH_COOKIE].value
    context = await chromium.new_context(viewport={"width": 1280, "height": 800})
    await context.add_cookies(
        [
            {"name": BOOTH_COOKIE, "value": credential, "domain": PLAIN_HOST, "path": path}
            for path in (f"/kiosk/{kiosk_id}", f"/api/kiosks/{kiosk_id}")
        ]
    )
    page = await context.new_page()
    assert (await page.goto(f"http://{PLAIN_HOST}:{port}/kiosk/{kiosk_id}")).ok
    return page, site


@pytest.mark.skipif(CERTUTIL is None, reason="needs certutil (Debian's libnss3-tools) to make Chromium trust the CA")
@pytest.mark.asyncio(loop_scope="module")
async def test_chromium_trusting_the_ca_captures_over_https_and_a_plain_http_booth_says_its_camera_is_unavailable(
    secure_server, tmp_path, grace_hopper
):
    from playwright.async_api import async_playwright

    # The CA in the NSS database of the browser's HOME, as a Linux booth's user installs it.
    nssdb = tmp_path / "home" / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    ca = tls.local_ca(secure_server.app[SETTINGS_KEY])
    for command in (["-N", "--empty-password"], ["-A", "-t", "C,,", "-n", "ArtBooth CA", "-i", str(ca.certificate_path)]):
        subprocess.run([CERTUTIL, "-d", f"sql:{nssdb}", *command], check=True, capture_output=True, timeout=30)
    camera = write_y4m(tmp_path / "visitor.y4m", visitor_in_room(grace_hopper, size=CAMERA_SIZE, frames=4))

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                *CHROMIUM_ARGS,
                *fake_camera_args(camera),
                f"--host-resolver-rules=MAP {BOOTH_HOST} 127.0.0.1, MAP {PLAIN_HOST} 127.0.0.1",
            ],
            env={**os.environ, "HOME": str(tmp_path / "home")},
        )
        try:
            booth, opened = await _paired_page(chromium, secure_server, "tls-booth")
            security = await opened.security_details()
            assert security["issuer"].startswith("ArtBooth local CA") and security["subjectName"]
            assert await booth.evaluate("window.isSecureContext")
            await booth.click("#attract")
            await booth.click(f'#carousel [data-artwork="{ARTWORK}"]')
            await booth.wait_for_function("document.getElementById('camera').videoWidth > 0", timeout=30_000)
            assert await booth.evaluate("document.body.dataset.camera") == "ok"
            await booth.click("#shoot")
            await booth.click("#agree")
            async with booth.expect_response(lambda r: URL(r.url).path.endswith("/capture"), timeout=120_000) as captured:
                await booth.click('#look [data-look="realistic"]')
            answer = await (await captured.value).json()
            await booth.wait_for_selector("#result.active", timeout=30_000)
            qr = await booth.wait_for_selector("#result-qr")
            await booth.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=qr, timeout=30_000)
            await booth.screenshot(path="/tmp/tls_booth_result.png")
            # The QR code's link is the HTTPS name, and a phone that trusts the CA opens it.
            assert answer["download_url"].startswith(f"https://{BOOTH_HOST}:{secure_server.port}/p/")
            phone = await chromium.new_page(viewport={"width": 390, "height": 844})
            assert (await phone.goto(answer["download_url"])).status == 200

            plain, plain_site = await _plain_http_booth(chromium, secure_server, "plain-booth", ca)
            await plain.wait_for_function("document.body.dataset.camera === 'insecure'", timeout=30_000)
            assert not await plain.evaluate("window.isSecureContext")
            await plain.click("#attract")
            await plain.click(f'#carousel [data-artwork="{ARTWORK}"]')
            await plain.wait_for_selector("#problem.active", timeout=30_000)
            assert await plain.text_content("#problem-title") == BOOTH_SCRIPT_TEXT["camera_unavailable_title"]
            await plain.screenshot(path="/tmp/tls_plain_booth.png")
            await plain_site.stop()
        finally:
            await chromium.close()
    # Staff learn why (the Kiosks page shows it): the booth's heartbeat reported it.
    assert secure_server.app[BOOTHS_KEY].status("plain-booth").camera == "insecure"
