"""HTTPS for booths on the museum's LAN (issue 13).

Browsers give a page the camera only in a secure context: HTTPS, or a loopback address. A booth PC
that opens the server by its LAN name or address therefore needs HTTPS, with a certificate it trusts.
`artbooth serve` serves the certificate and key staff give (settings tls_certificate and
tls_private_key), or else, by default when it listens beyond loopback (settings.serves_tls), one it
issues itself from a small local certificate authority made once in ``<data_dir>/tls/``. Staff install
that CA's certificate once on each booth PC and staff phone (/staff/tls, `artbooth tls ca`); every
server certificate the CA issues later is then trusted as well.

The server certificate names what a booth may open: this machine's host name (and its short name
with ".local", its mDNS name), each of its non-loopback addresses, the public URL's host and the
names in tls_extra_names. The CA issues a new one when that list changes (a new DHCP lease), when it
nears its end, or when it no longer matches the CA or its key; the CA itself stays, so booths never
install anything again. Private keys are written 0600 and never served.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import socket
import ssl
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import ifaddr
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kiosk.errors import ArtBoothError, ExitCode
from kiosk.files import write_atomically
from kiosk.settings import Settings, is_certificate_name

log = logging.getLogger(__name__)

# Booth PCs install the CA once: it lasts as long as a booth is likely to.
CA_VALID_DAYS = 10 * 365
# Apple's platforms refuse TLS server certificates valid for more than 825 days, whoever issued them;
# a year, renewed at a start in its last month, keeps well inside that.
SERVER_VALID_DAYS = 365
RENEW_BEFORE_DAYS = 30
# Booth PCs whose clocks run a little behind still accept a certificate issued a moment ago.
BACKDATE = datetime.timedelta(hours=1)
# Common names are at most 64 characters (RFC 5280); the names that count are in the SAN.
MAX_COMMON_NAME = 64

CA_CERTIFICATE = "ca.crt"
CA_KEY = "ca.key"
SERVER_CERTIFICATE = "server.crt"
SERVER_KEY = "server.key"
PRIVATE_KEY_MODE = 0o600
CERTIFICATE_MODE = 0o644

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TLSError(ArtBoothError):
    exit_code = ExitCode.BAD_SETTINGS


@dataclass(frozen=True)
class CertificateNames:
    """What a server certificate names: DNS names and IP addresses (its subject alternative names)."""

    dns_names: frozenset[str]
    addresses: frozenset[IPAddress]

    @classmethod
    def of(cls, names: list[str]) -> CertificateNames:
        dns_names, addresses = set(), set()
        for name in names:
            try:
                addresses.add(ipaddress.ip_address(name))
            except ValueError:
                dns_names.add(name.lower())
        return cls(frozenset(dns_names), frozenset(addresses))

    @classmethod
    def in_certificate(cls, certificate: x509.Certificate) -> CertificateNames:
        try:
            san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return cls(frozenset(), frozenset())
        return cls(frozenset(san.get_values_for_type(x509.DNSName)), frozenset(san.get_values_for_type(x509.IPAddress)))

    def sorted(self) -> list[str]:
        """DNS names, then addresses (IPv4 before IPv6), as staff read them."""
        return sorted(self.dns_names) + [str(a) for a in sorted(self.addresses, key=lambda a: (a.version, a))]


@dataclass(frozen=True)
class LocalCA:
    """The local certificate authority: its certificate (public, what booths install) and key file."""

    certificate: x509.Certificate
    certificate_path: Path
    key_path: Path

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def fingerprint(self) -> str:
        """The SHA-256 fingerprint, as Windows, macOS, Android and `openssl x509 -fingerprint` show it."""
        return fingerprint(self.certificate)

    @property
    def expires(self) -> datetime.datetime:
        return self.certificate.not_valid_after_utc


def fingerprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex(":").upper()


def tls_dir(settings: Settings) -> Path:
    return settings.data_dir / "tls"


def server_context(settings: Settings, *, now: datetime.datetime | None = None) -> ssl.SSLContext | None:
    """The TLS context `artbooth serve` serves with; None for plain HTTP (settings.serves_tls).

    Given files are loaded as they are; otherwise the local CA is made if needed and a server
    certificate for this machine's current names issued if needed (see the module's docstring)."""
    if not settings.serves_tls:
        return None
    if settings.tls_certificate is not None:
        certificate_path, key_path = settings.tls_certificate, settings.tls_private_key
    else:
        ca = ensure_ca(settings, now=now)
        certificate_path, key_path = ensure_server_certificate(settings, ca, server_names(settings), now=now)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certificate_path, key_path)
    except FileNotFoundError as exc:
        raise TLSError(f"cannot serve HTTPS: {exc.filename}: no such file") from None
    except (ssl.SSLError, OSError) as exc:
        raise TLSError(
            f"cannot serve HTTPS with the certificate {certificate_path} and key {key_path}: "
            f"{getattr(exc, 'reason', None) or exc} (both PEM, the key unencrypted and the certificate's own)"
        ) from None
    return context


def local_ca(settings: Settings) -> LocalCA | None:
    """The local CA if it was made, else None (nothing is written)."""
    directory = tls_dir(settings)
    certificate_path, key_path = directory / CA_CERTIFICATE, directory / CA_KEY
    try:
        certificate = x509.load_pem_x509_certificate(certificate_path.read_bytes())
    except FileNotFoundError:
        return None
    except ValueError:
        raise TLSError(
            f"{certificate_path} is not a PEM certificate: restore it from a backup, or delete {directory} for a "
            "new certificate authority (every booth then installs the new one)"
        ) from None
    return LocalCA(certificate, certificate_path, key_path)


def ensure_ca(settings: Settings, *, now: datetime.datetime | None = None) -> LocalCA:
    """The local CA, made now if it was not yet."""
    existing = local_ca(settings)
    if existing is not None:
        if not existing.key_path.is_file():
            raise TLSError(
                f"the certificate authority's key {existing.key_path} is missing: restore it from a backup, or delete "
                f"{existing.certificate_path.parent} for a new certificate authority (every booth then installs the new one)"
            )
        return existing
    now = now or _now()
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ArtBooth"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"ArtBooth local CA, {socket.gethostname()}"[:MAX_COMMON_NAME]),
        ]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=CA_VALID_DAYS))
        # It signs server certificates only, never another CA's.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory = tls_dir(settings)
    # The key first: a certificate on disk always has its key.
    _write(directory / CA_KEY, _key_pem(key), PRIVATE_KEY_MODE)
    _write(directory / CA_CERTIFICATE, certificate.public_bytes(serialization.Encoding.PEM), CERTIFICATE_MODE)
    ca = LocalCA(certificate, directory / CA_CERTIFICATE, directory / CA_KEY)
    log.info("made the local certificate authority %s (SHA-256 %s): install it on each booth", ca.certificate_path, ca.fingerprint)
    return ca


def server_names(settings: Settings) -> CertificateNames:
    """The names booths and phones may open this server by (see the module's docstring)."""
    hostname = socket.gethostname().lower()
    short = hostname.split(".")[0]
    names = [hostname, short, f"{short}.local"]
    names += [str(address) for address in _interface_addresses()]
    names.append(urllib.parse.urlsplit(settings.resolved_public_url).hostname or "")
    if settings.host not in ("0.0.0.0", "::", ""):
        names.append(settings.host)
    names += settings.tls_extra_name_list
    # A host name a certificate cannot carry (an underscore, say) is left out; the addresses remain.
    return CertificateNames.of([name for name in names if name and is_certificate_name(name)])


def served_names(settings: Settings) -> list[str]:
    """The names the server certificate on disk carries (none before the first HTTPS start)."""
    try:
        certificate = x509.load_pem_x509_certificate((tls_dir(settings) / SERVER_CERTIFICATE).read_bytes())
    except (FileNotFoundError, ValueError):
        return []
    return CertificateNames.in_certificate(certificate).sorted()


def _interface_addresses() -> list[IPAddress]:
    """This machine's addresses other than loopback and IPv6 link-local (no browser opens an
    address with a zone, fe80::1%eth0)."""
    addresses = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            address = ipaddress.ip_address(ip.ip[0] if isinstance(ip.ip, tuple) else ip.ip)
            if not address.is_loopback and not (address.version == 6 and address.is_link_local):
                addresses.append(address)
    return addresses


def ensure_server_certificate(
    settings: Settings, ca: LocalCA, names: CertificateNames, *, now: datetime.datetime | None = None
) -> tuple[Path, Path]:
    """The server certificate and key files for ``names``, issued by ``ca`` now unless the ones on
    disk already name exactly these, are the CA's, match their key and are not near their end."""
    now = now or _now()
    directory = tls_dir(settings)
    certificate_path, key_path = directory / SERVER_CERTIFICATE, directory / SERVER_KEY
    reason = _reissue_reason(certificate_path, key_path, ca, names, now)
    if reason is None:
        return certificate_path, key_path
    ca_key = _load_key(ca.key_path)
    key = ec.generate_private_key(ec.SECP256R1())
    alternative_names = [x509.DNSName(name) for name in sorted(names.dns_names)] + [
        x509.IPAddress(address) for address in sorted(names.addresses, key=lambda a: (a.version, a))
    ]
    common_name = (sorted(names.dns_names) or [str(next(iter(names.addresses), "artbooth"))])[0][:MAX_COMMON_NAME]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(min(now + datetime.timedelta(days=SERVER_VALID_DAYS), ca.expires))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.certificate.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write(key_path, _key_pem(key), PRIVATE_KEY_MODE)
    _write(certificate_path, certificate.public_bytes(serialization.Encoding.PEM), CERTIFICATE_MODE)
    log.info("issued a server certificate (%s) for %s", reason, ", ".join(names.sorted()))
    return certificate_path, key_path


def _reissue_reason(
    certificate_path: Path, key_path: Path, ca: LocalCA, names: CertificateNames, now: datetime.datetime
) -> str | None:
    """Why the server certificate on disk will not do, or None when it will."""
    try:
        certificate = x509.load_pem_x509_certificate(certificate_path.read_bytes())
        key = _load_key(key_path)
    except (FileNotFoundError, ValueError, TLSError):
        return "none usable yet"
    if CertificateNames.in_certificate(certificate) != names:
        return "this machine's names changed"
    if certificate.not_valid_after_utc - now < datetime.timedelta(days=RENEW_BEFORE_DAYS):
        return "the last one nears its end"
    try:
        certificate.verify_directly_issued_by(ca.certificate)
    except (ValueError, TypeError, InvalidSignature):
        return "the last one is not the certificate authority's"
    if certificate.public_key() != key.public_key():
        return "the last one does not match its key"
    return None


def _key_usage(**allowed: bool) -> x509.KeyUsage:
    usages = dict.fromkeys(
        (
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ),
        False,
    )
    return x509.KeyUsage(**(usages | allowed))


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise
    except (ValueError, TypeError):
        raise TLSError(f"{path} is not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TLSError(f"{path} is not the elliptic-curve key ArtBooth makes")
    return key


def _write(path: Path, data: bytes, mode: int) -> None:
    write_atomically(path, data)
    os.chmod(path, mode)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)
