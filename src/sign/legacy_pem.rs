//! OpenSSL's traditional PEM encryption (`Proc-Type: 4,ENCRYPTED` with `DEK-Info`), still
//! written by `openssl ec -aes256` and by Python's cryptography for SEC1 keys.
//!
//! The key is derived with OpenSSL's EVP_BytesToKey (MD5, one round, salt = the first eight
//! bytes of the IV) and the body is AES-CBC with PKCS#7 padding.

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyIvInit};
use md5::{Digest, Md5};

/// Why a traditionally encrypted key could not be decrypted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LegacyPemError {
    /// What is wrong with its headers.
    #[error("{0}")]
    MalformedHeader(&'static str),
    /// A cipher other than AES-CBC.
    #[error("the key is encrypted with {0}; vouch reads AES-128/192/256-CBC")]
    UnsupportedCipher(String),
    #[error("cannot decrypt the key: wrong password")]
    WrongPassword,
}

/// Decrypts the body of an encrypted `EC PRIVATE KEY` block to its DER.
pub fn decrypt(block: &pem::Pem, password: &[u8]) -> Result<Vec<u8>, LegacyPemError> {
    let malformed_iv = LegacyPemError::MalformedHeader("malformed IV in the DEK-Info header");
    let info = block
        .headers()
        .get("DEK-Info")
        .ok_or(LegacyPemError::MalformedHeader(
            "the encrypted key has no DEK-Info header",
        ))?;
    let (cipher, iv_hex) = info
        .split_once(',')
        .ok_or(LegacyPemError::MalformedHeader("malformed DEK-Info header"))?;
    let iv = hex::decode(iv_hex.trim()).map_err(|_| malformed_iv.clone())?;
    if iv.len() != 16 {
        return Err(malformed_iv);
    }
    let key_len = match cipher.trim() {
        "AES-128-CBC" => 16,
        "AES-192-CBC" => 24,
        "AES-256-CBC" => 32,
        other => return Err(LegacyPemError::UnsupportedCipher(other.to_string())),
    };
    let key = bytes_to_key(password, &iv[..8], key_len);
    let mut body = block.contents().to_vec();
    let wrong = |_| LegacyPemError::WrongPassword;
    let plain = match key_len {
        16 => cbc::Decryptor::<aes::Aes128>::new(key[..].into(), iv[..].into())
            .decrypt_padded_mut::<Pkcs7>(&mut body)
            .map_err(wrong)?,
        24 => cbc::Decryptor::<aes::Aes192>::new(key[..].into(), iv[..].into())
            .decrypt_padded_mut::<Pkcs7>(&mut body)
            .map_err(wrong)?,
        _ => cbc::Decryptor::<aes::Aes256>::new(key[..].into(), iv[..].into())
            .decrypt_padded_mut::<Pkcs7>(&mut body)
            .map_err(wrong)?,
    };
    Ok(plain.to_vec())
}

/// EVP_BytesToKey with MD5 and one iteration.
fn bytes_to_key(password: &[u8], salt: &[u8], len: usize) -> Vec<u8> {
    let mut key = Vec::with_capacity(len + 16);
    let mut previous: Vec<u8> = Vec::new();
    while key.len() < len {
        let mut md5 = Md5::new();
        md5.update(&previous);
        md5.update(password);
        md5.update(salt);
        previous = md5.finalize().to_vec();
        key.extend_from_slice(&previous);
    }
    key.truncate(len);
    key
}
