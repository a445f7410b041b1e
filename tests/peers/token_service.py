"""A registry token service for the tests: it issues the JWTs docker-registry checks.

It answers both grants of the distribution token spec:
- GET /token?service=..&scope=.. with HTTP basic credentials (USER:PASSWORD), as skopeo asks;
- POST /token with the OAuth2 refresh-token grant (an identity token), as docker and
  containers/image exchange one.
Tokens are ES256, signed by a self-signed certificate it writes to CERT (the registry's
rootcertbundle) and names in the x5c header. Each request is logged to LOG as one JSON line.

usage: token_service.py CERT PORT_FILE LOG USER:PASSWORD REFRESH_TOKEN
"""

import base64
import datetime
import http.server
import json
import os
import sys
import time
import urllib.parse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

SERVICE = "vouch-test"
ISSUER = "vouch-test"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_certificate(path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vouch test token service")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    with open(path, "wb") as out:
        out.write(certificate.public_bytes(serialization.Encoding.PEM))
    return key, certificate.public_bytes(serialization.Encoding.DER)


def access_of(scopes):
    access = []
    for scope in scopes:
        parts = scope.split(":")
        if len(parts) >= 3 and parts[0] == "repository":
            actions = parts[-1].split(",")
            access.append({"type": "repository", "name": ":".join(parts[1:-1]), "actions": actions})
    return access


def issue(key, der, subject, scopes):
    header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(der).decode()]}
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": subject,
        "aud": SERVICE,
        "exp": now + 300,
        "nbf": now - 10,
        "iat": now,
        "jti": b64url(os.urandom(12)),
        "access": access_of(scopes),
    }
    signed = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    r, s = decode_dss_signature(key.sign(signed.encode(), ec.ECDSA(hashes.SHA256())))
    return signed + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def main():
    cert_path, port_file, log_path, basic, refresh_token = sys.argv[1:6]
    key, der = make_certificate(cert_path)
    log = open(log_path, "a", buffering=1)

    class Handler(http.server.BaseHTTPRequestHandler):
        def answer(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
            given = self.headers.get("Authorization", "")
            expected = "Basic " + base64.b64encode(basic.encode()).decode()
            ok = given == expected
            log.write(json.dumps({"method": "GET", "basic": ok, "scope": query.get("scope", [])}) + "\n")
            if not ok:
                return self.answer(401, {"details": "bad credentials"})
            token = issue(key, der, basic.split(":")[0], query.get("scope", []))
            self.answer(200, {"token": token, "access_token": token, "expires_in": 300})

        def body(self):
            # containers/image sends its form chunked, without a Content-Length.
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                data = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return data
                    data += self.rfile.read(size)
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length", "0")))

        def do_POST(self):
            form = urllib.parse.parse_qs(self.body().decode())
            grant = form.get("grant_type", [""])[0]
            ok = grant == "refresh_token" and form.get("refresh_token", [""])[0] == refresh_token
            log.write(
                json.dumps(
                    {
                        "method": "POST",
                        "grant_type": grant,
                        "refresh_token_ok": ok,
                        "service": form.get("service", [""])[0],
                        "client_id": form.get("client_id", [""])[0],
                        "scope": form.get("scope", []),
                    }
                )
                + "\n"
            )
            if not ok:
                return self.answer(401, {"error": "invalid_grant"})
            scopes = " ".join(form.get("scope", [])).split()
            token = issue(key, der, "identity-token-user", scopes)
            self.answer(200, {"access_token": token, "expires_in": 300, "scope": " ".join(scopes)})

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(port_file + ".tmp", "w") as out:
        out.write(str(server.server_address[1]))
    os.rename(port_file + ".tmp", port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
