"""Drives model-signing (the OMS reference implementation) for vouch's interop tests.

Usage:
  model_signing_peer.py keygen DIR                       -> DIR/key.pem, DIR/pub.pem (P-256)
  model_signing_peer.py sign MODEL SIG KEY [--shard-size N] [--algo A]
                                     [--ignore P ...] [--allow-symlinks]
  model_signing_peer.py payload SIG OUT                  -> the DSSE payload, bytes as signed
  model_signing_peer.py subject SIG                      -> prints the subject sha256 digest
"""

import argparse
import base64
import json
import pathlib
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from model_signing import hashing, signing


def keygen(args):
    out = pathlib.Path(args.dir)
    key = ec.generate_private_key(ec.SECP256R1())
    (out / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (out / "pub.pem").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
    )


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
    config.set_ignored_paths(paths=args.ignore, ignore_git_paths=True)
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
    p = sub.add_parser("sign")
    p.add_argument("model")
    p.add_argument("sig")
    p.add_argument("key")
    p.add_argument("--shard-size", type=int, default=0)
    p.add_argument("--algo", default="sha256")
    p.add_argument("--ignore", action="append", default=[])
    p.add_argument("--allow-symlinks", action="store_true")
    p = sub.add_parser("payload")
    p.add_argument("sig")
    p.add_argument("out")
    p = sub.add_parser("subject")
    p.add_argument("sig")
    args = parser.parse_args()
    if args.command == "keygen":
        keygen(args)
    elif args.command == "sign":
        sign(args)
    elif args.command == "payload":
        pathlib.Path(args.out).write_bytes(payload_bytes(args.sig))
    elif args.command == "subject":
        statement = json.loads(payload_bytes(args.sig))
        print(statement["subject"][0]["digest"]["sha256"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
