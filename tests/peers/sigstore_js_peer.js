// sigstore-js as a peer for key-signed detached Sigstore bundles (what
// `cosign sign-blob --key --new-bundle-format` writes), run by tests/bundle_key.rs with
// NODE_PATH at the npm peers that `cargo xtask peers` installs.
//
//   node sigstore_js_peer.js sign-message PRIVATE.pem FILE BUNDLE.json
//       a message signature over FILE (SHA2_256 digest and ECDSA signature), no witnesses
//   node sigstore_js_peer.js sign-dsse PRIVATE.pem FILE BUNDLE.json [PREDICATE_TYPE]
//       a DSSE in-toto statement whose one subject is FILE's SHA-256, no witnesses (its
//       predicate type https://example.com/vouch-peer/v1 unless given)
//   node sigstore_js_peer.js verify PUBLIC.pem FILE BUNDLE.json
//       exit 0 when @sigstore/verify accepts the bundle over FILE with the key, 1 when not
//
// Signing uses the key material `{ $case: 'publicKey', publicKey, hint }` a key signer
// returns; the hint is the key's SHA-256 fingerprint (informative: verify ignores it). With
// SIGSTORE_PEER_CERTIFICATE=CERT.pem, the material is that certificate instead
// (`{ $case: 'x509Certificate' }`, as a signer of a private PKI returns it).
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { DSSEBundleBuilder, MessageSignatureBundleBuilder } = require('@sigstore/sign');
const { bundleFromJSON, bundleToJSON } = require('@sigstore/bundle');
const { Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify');

function keySigner(privatePem) {
  const privateKey = crypto.createPrivateKey(privatePem);
  const publicPem = crypto.createPublicKey(privateKey).export({ type: 'spki', format: 'pem' });
  const hint = crypto.createHash('sha256').update(publicPem).digest('hex');
  const certificate = process.env.SIGSTORE_PEER_CERTIFICATE;
  const key = certificate
    ? { $case: 'x509Certificate', certificate: fs.readFileSync(certificate, 'utf8') }
    : { $case: 'publicKey', publicKey: publicPem, hint };
  return {
    sign: async (data) => ({ signature: crypto.sign('sha256', data, privateKey), key }),
  };
}

async function sign(kind, keyFile, file, out, predicateType) {
  const signer = keySigner(fs.readFileSync(keyFile));
  const data = fs.readFileSync(file);
  let bundle;
  if (kind === 'sign-message') {
    bundle = await new MessageSignatureBundleBuilder({ signer, witnesses: [] }).create({ data });
  } else {
    const statement = {
      _type: 'https://in-toto.io/Statement/v1',
      subject: [
        {
          name: path.basename(file),
          digest: { sha256: crypto.createHash('sha256').update(data).digest('hex') },
        },
      ],
      predicateType: predicateType || 'https://example.com/vouch-peer/v1',
      predicate: {},
    };
    bundle = await new DSSEBundleBuilder({ signer, witnesses: [] }).create({
      data: Buffer.from(JSON.stringify(statement)),
      type: 'application/vnd.in-toto+json',
    });
  }
  fs.writeFileSync(out, JSON.stringify(bundleToJSON(bundle)));
}

function verify(publicKeyFile, file, bundleFile) {
  const publicKey = crypto.createPublicKey(fs.readFileSync(publicKeyFile));
  const bundle = bundleFromJSON(JSON.parse(fs.readFileSync(bundleFile, 'utf8')));
  const data = fs.readFileSync(file);
  // No Fulcio, logs or TSAs are trusted: only the given key, whatever the hint names.
  const root = { certificateAuthorities: [], timestampAuthorities: [], tlogs: [], ctlogs: [] };
  const trust = toTrustMaterial(root, () => ({ publicKey, validFor: () => true }));
  const verifier = new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 });
  verifier.verify(toSignedEntity(bundle, data));
  // @sigstore/verify checks a DSSE envelope's signature only; what the statement signs is
  // the caller's to check (as cosign verify-blob-attestation does): its subject must be FILE.
  if (bundle.content.$case === 'dsseEnvelope') {
    const statement = JSON.parse(bundle.content.dsseEnvelope.payload.toString('utf8'));
    const sha256 = crypto.createHash('sha256').update(data).digest('hex');
    if (!statement.subject.some((s) => s.digest && s.digest.sha256 === sha256)) {
      throw new Error(`no subject of the statement has the file's sha256 ${sha256}`);
    }
  }
}

async function main() {
  const [command, key, file, bundle, predicateType] = process.argv.slice(2);
  if (command === 'sign-message' || command === 'sign-dsse') {
    await sign(command, key, file, bundle, predicateType);
  } else if (command === 'verify') {
    try {
      verify(key, file, bundle);
    } catch (error) {
      console.log(`refused: ${error.message}`);
      process.exit(1);
    }
    console.log('verified');
  } else {
    console.error('usage: sigstore_js_peer.js sign-message|sign-dsse|verify KEY FILE BUNDLE [PREDICATE_TYPE]');
    process.exit(2);
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(2);
});
