"""Drives model-signing (the OMS reference implementation) for vouch's interop tests.

Usage:
  model_signing_peer.py keygen DIR [--curve C] [--format pkcs8|sec1] [--password PW]
                                                         -> DIR/key.pem, DIR/pub.pem
  model_signing_peer.py pki DIR [--curve C]              -> a root CA, an intermediate CA and a
                                                            code-signing leaf, as PEM files
  model_signing_peer.py sign MODEL SIG KEY [--shard-size N] [--algo A]
                                     [--ignore P ...] [--allow-symlinks] [--no-ignore-git-paths]
  model_signing_peer.py verify MODEL SIG PUB            -> verifies with the API, which takes the
                                                            serialization from the signature (the
                                                            CLI always hashes files with sha256)
  model_signing_peer.py payload SIG OUT                  -> the DSSE payload, bytes as signed
  model_signing_peer.py subject SIG                      -> prints the subject sha256 digest
"""

import argparse
import base64
import datetime
import json
import pathlib
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from model_signing import hashing, signing, verifying

CURVES = {"p256": ec.SECP256R1, "p384": ec.SECP384R1, "p521": ec.SECP521R1}


def write_private(path, key, fmt="pkcs8", password=None):
    encryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    private_format = {
        "pkcs8": serialization.PrivateFormat.PKCS8,
        "sec1": serialization.PrivateFormat.TraditionalOpenSSL,
    }[fmt]
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, private_format, encryption)
    )


def write_public(path, key):
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
    )


def keygen(args):
    out = pathlib.Path(args.dir)
    key = ec.generate_private_key(CURVES[args.curve]())
    write_private(out / "key.pem", key, args.format, args.password)
    write_public(out / "pub.pem", key)


def certificate(subject, issuer, public_key, signing_key, ca, leaf_usage=False):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if leaf_usage:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        ).add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
        )
    else:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
    return builder.sign(signing_key, hashes.SHA256())


def pki(args):
    out = pathlib.Path(args.dir)
    curve = CURVES[args.curve]
    root_key = ec.generate_private_key(ec.SECP384R1())
    root = certificate("test-root", "test-root", root_key.public_key(), root_key, True)
    int_key = ec.generate_private_key(ec.SECP384R1())
    inter = certificate("test-intermediate", "test-root", int_key.public_key(), root_key, True)
    leaf_key = ec.generate_private_key(curve())
    leaf = certificate(
        "test-signer", "test-intermediate", leaf_key.public_key(), int_key, False, True
    )
    pem = serialization.Encoding.PEM
    (out / "root.pem").write_bytes(root.public_bytes(pem))
    (out / "intermediate.pem").write_bytes(inter.public_bytes(pem))
    (out / "leaf.pem").write_bytes(leaf.public_bytes(pem))
    write_private(out / "leaf-key.pem", leaf_key)


def sign(args):
    config = hashing.Config()
    if args.shard_size:
        config.use_shard_serialization(
            hashing_algorithm=args.algo,
            shard_size=args.shard_size,
            allow_symlinks=args.allow_symlinks,
        )
    else:
        config.use_file_serialization(
            hashing_algorithm=args.algo, allow_symlinks=args.allow_symlinks
        )
    config.set_ignored_paths(
        paths=args.ignore, ignore_git_paths=not args.no_ignore_git_paths
    )
    config.set_allow_symlinks(args.allow_symlinks)
    signing.Config().use_elliptic_key_signer(private_key=args.key).set_hashing_config(
        config
    ).sign(args.model, args.sig)


def payload_bytes(sig):
    bundle = json.loads(pathlib.Path(sig).read_text())
    return base64.b64decode(bundle["dsseEnvelope"]["payload"])


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("keygen")
    p.add_argument("dir")
    p.add_argument("--curve", default="p256", choices=sorted(CURVES))
    p.add_argument("--format", default="pkcs8", choices=["pkcs8", "sec1"])
    p.add_argument("--password")
    p = sub.add_parser("pki")
    p.add_argument("dir")
    p.add_argument("--curve", default="p384", choices=sorted(CURVES))
    p = sub.add_parser("sign")
    p.add_argument("model")
    p.add_argument("sig")
    p.add_argument("key")
    p.add_argument("--shard-size", type=int, default=0)
    p.add_argument("--algo", default="sha256")
    p.add_argument("--ignore", action="append", default=[])
    p.add_argument("--allow-symlinks", action="store_true")
    p.add_argument("--no-ignore-git-paths", action="store_true")
    p = sub.add_parser("verify")
    p.add_argument("model")
    p.add_argument("sig")
    p.add_argument("public_key")
    p = sub.add_parser("payload")
    p.add_argument("sig")
    p.add_argument("out")
    p = sub.add_parser("subject")
    p.add_argument("sig")
    args = parser.parse_args()
    if args.command == "keygen":
        keygen(args)
    elif args.command == "pki":
        pki(args)
    elif args.command == "sign":
        sign(args)
    elif args.command == "verify":
        verifying.Config().use_elliptic_key_verifier(public_key=args.public_key).verify(
            args.model, args.sig
        )
    elif args.command == "payload":
        pathlib.Path(args.out).write_bytes(payload_bytes(args.sig))
    elif args.command == "subject":
        statement = json.loads(payload_bytes(args.sig))
        print(statement["subject"][0]["digest"]["sha256"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
