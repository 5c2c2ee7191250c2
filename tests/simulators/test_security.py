"""Security options that must really work: OPC UA username + SignAndEncrypt, MQTT TLS + password."""

from __future__ import annotations

import datetime as dt
import ipaddress
import subprocess
from pathlib import Path

import pytest
from asyncua import Client, ua
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from simulators.fleet import Fleet
from simulators.mqtt_presses import MqttOptions
from tests.servers import Mosquitto, free_port, require_binary
from tests.simulators.conftest import kiln_scenario, press_scenario, unique

pytestmark = pytest.mark.integration


async def test_opcua_encrypt_only_with_username(tmp_path: Path, standard_space) -> None:
    fleet = Fleet(
        kiln_scenario(),
        speed=600,
        opcua_base_port=0,
        security=("encrypt",),
        opcua_username="operator",
        opcua_password="kiln-4-ever",
        state_dir=tmp_path / "state",
        standard_space=standard_space,
    )
    key, cert = tmp_path / "k.pem", tmp_path / "c.der"
    uri = "urn:kilnworks-test:client"
    await setup_self_signed_certificate(
        key,
        cert,
        uri,
        "localhost",
        [ExtendedKeyUsageOID.CLIENT_AUTH],
        {"commonName": "test client"},
    )
    async with fleet:
        m = fleet.manifest()["opcua"][0]
        state_id = m["kilns"][0]["nodes"]["state"]
        # discovery (GetEndpoints) is open to anyone; it lists the one secure endpoint only
        eps = await Client(m["endpoint"]).connect_and_get_server_endpoints()
        assert {(e.SecurityPolicyUri.rsplit("#", 1)[-1], e.SecurityMode) for e in eps} == {
            ("Basic256Sha256", ua.MessageSecurityMode.SignAndEncrypt)
        }
        assert all(
            t.TokenType == ua.UserTokenType.UserName for e in eps for t in e.UserIdentityTokens
        )

        async def connect(password: str) -> str:
            c = Client(m["endpoint"])
            c.application_uri = uri
            c.set_user("operator")
            c.set_password(password)
            await c.set_security_string(f"Basic256Sha256,SignAndEncrypt,{cert},{key}")
            async with c:
                return await c.get_node(state_id).read_value()

        assert await connect("kiln-4-ever") in ("idle", "heating", "soaking", "cooling")
        with pytest.raises(Exception):  # noqa: B017 - asyncua raises BadUserAccessDenied variants
            await connect("wrong")
        with pytest.raises(Exception):  # noqa: B017 - no None endpoint
            async with Client(m["endpoint"]) as anonymous:
                await anonymous.get_node(state_id).read_value()
    first = (fleet.state_dir / "xinghai" / "server_cert.der").read_bytes()
    gateway = fleet.gateways["xinghai"]
    await gateway._certificate()  # a second start reuses the certificate made on the first
    assert (fleet.state_dir / "xinghai" / "server_cert.der").read_bytes() == first


def _tls_files(d: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it."""
    now = dt.datetime.now(dt.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kilnworks test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = d / "ca.pem", d / "server.pem", d / "server.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return ca_path, cert_path, key_path


async def test_mqtt_tls_with_username_and_password(tmp_path: Path) -> None:
    ca, cert, key = _tls_files(tmp_path)
    pw = tmp_path / "passwd"
    subprocess.run(
        [
            require_binary("mosquitto_passwd", "mosquitto"),
            "-b",
            "-c",
            str(pw),
            "press-gw",
            "s3cret",
        ],
        check=True,
        capture_output=True,
    )
    pw.chmod(0o600)
    tls_port = free_port()
    (tmp_path / "broker").mkdir()
    broker = Mosquitto(
        tmp_path / "broker",
        extra_config=(
            f"password_file {pw}\nlistener {tls_port} 127.0.0.1\n"
            f"cafile {ca}\ncertfile {cert}\nkeyfile {key}\n"
        ),
    )
    broker.start()
    try:

        def fleet(password: str) -> Fleet:
            opts = MqttOptions(
                url=f"mqtts://127.0.0.1:{tls_port}",
                username="press-gw",
                password=password,
                tls_ca=str(ca),
                protocol=311,
            )
            return Fleet(
                press_scenario(),
                speed=600,
                connect_timeout_s=0.5,
                mqtt=opts,
                topic_root=unique("tls"),
                sparkplug_group=unique("tls"),
            )

        async with fleet("s3cret") as good:
            await good.wait_connected(15)
            assert good.edge_nodes["xinghai"].births >= 1  # NBIRTH went out over TLS
        bad = fleet("wrong")
        try:
            await bad.start()
            with pytest.raises(TimeoutError):
                await bad.wait_connected(1.5)
        finally:
            await bad.stop()
    finally:
        broker.close()


async def test_a_port_in_use_fails_start_cleanly(standard_space) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        fleet = Fleet(
            kiln_scenario(), opcua_base_port=port, security=("none",), standard_space=standard_space
        )
        with pytest.raises(OSError):
            await fleet.start()
        assert not fleet._tasks and fleet.gateways["xinghai"].server is None
