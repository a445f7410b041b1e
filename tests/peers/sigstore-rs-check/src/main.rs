//! A test peer nobody here wrote the checking code of: sigstore-rs (crates.io) finds an image's
//! cosign signatures and checks them against a public key.
//!
//! Usage:
//! - `sigstore-rs-check IMAGE PUBLIC.pem`, IMAGE being `HOST:PORT/REPO:TAG` on a plain-HTTP
//!   registry: exit 0 when at least one signature verifies with the key, 1 when none does,
//!   2 on a usage or setup error.
//! - `sigstore-rs-check public-key PRIVATE.key`: prints the public key of a cosign encrypted
//!   private key (password in `COSIGN_PASSWORD`, else empty), as sigstore-rs decrypts it.

use std::process::ExitCode;

use sigstore::cosign::verification_constraint::{PublicKeyVerifier, VerificationConstraintVec};
use sigstore::cosign::{verify_constraints, ClientBuilder, CosignCapabilities};
use sigstore::registry::{Auth, ClientConfig, ClientProtocol, OciReference};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 3 && args[1] == "public-key" {
        return public_key(&args[2]);
    }
    if args.len() != 3 {
        eprintln!("usage: sigstore-rs-check IMAGE PUBLIC.pem | public-key PRIVATE.key");
        return ExitCode::from(2);
    }
    let image: OciReference = match args[1].parse() {
        Ok(image) => image,
        Err(e) => {
            eprintln!("bad image reference {}: {e}", args[1]);
            return ExitCode::from(2);
        }
    };
    let key = match std::fs::read(&args[2]) {
        Ok(key) => key,
        Err(e) => {
            eprintln!("cannot read {}: {e}", args[2]);
            return ExitCode::from(2);
        }
    };
    let verifier = match PublicKeyVerifier::try_from(&key) {
        Ok(verifier) => verifier,
        Err(e) => {
            eprintln!("bad public key {}: {e}", args[2]);
            return ExitCode::from(2);
        }
    };
    let config = ClientConfig {
        protocol: ClientProtocol::Http,
        ..ClientConfig::default()
    };
    let mut client = match ClientBuilder::default()
        .with_oci_client_config(config)
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            eprintln!("cannot build the sigstore client: {e}");
            return ExitCode::from(2);
        }
    };
    let auth = Auth::Anonymous;
    let (signature_image, digest) = match client.triangulate(&image, &auth).await {
        Ok(found) => found,
        Err(e) => {
            eprintln!("cannot resolve {}: {e}", args[1]);
            return ExitCode::from(1);
        }
    };
    println!(
        "image digest {digest}, signatures at {}",
        signature_image.whole()
    );
    let layers = match client.trusted_signature_layers(&auth, &image).await {
        Ok(layers) => layers,
        Err(e) => {
            eprintln!("cannot fetch signature layers: {e}");
            return ExitCode::from(1);
        }
    };
    println!("{} signature layer(s)", layers.len());
    let constraints: VerificationConstraintVec = vec![Box::new(verifier)];
    match verify_constraints(&layers, constraints.iter()) {
        Ok(()) => {
            println!("verified");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("no signature verifies: {e}");
            ExitCode::from(1)
        }
    }
}

fn public_key(path: &str) -> ExitCode {
    use sigstore::crypto::signing_key::SigStoreKeyPair;
    let pem = match std::fs::read(path) {
        Ok(pem) => pem,
        Err(e) => {
            eprintln!("cannot read {path}: {e}");
            return ExitCode::from(2);
        }
    };
    let password = std::env::var("COSIGN_PASSWORD").unwrap_or_default();
    let pair = match SigStoreKeyPair::from_encrypted_pem(&pem, password.as_bytes()) {
        Ok(pair) => pair,
        Err(e) => {
            eprintln!("cannot decrypt {path}: {e}");
            return ExitCode::from(2);
        }
    };
    match pair.public_key_to_pem() {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot encode the public key of {path}: {e}");
            ExitCode::from(2)
        }
    }
}
