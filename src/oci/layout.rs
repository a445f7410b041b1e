//! OCI image layouts on disk (`oci-layout`, `index.json`, `blobs/ALGORITHM/HEX`), as
//! skopeo, umoci and oras write them.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::document::{Descriptor, Document, MAX_DOCUMENT_BYTES, OCI_INDEX, REF_NAME};
use super::reference::LayoutRef;
use super::store::{within_document_limit, Fetched, Recorded, Sink, Store, Unavailable};
use crate::error::{Error, Result};
use crate::fsio::{read_input, write_atomically};
use crate::hash::reader::{open_regular, ReadError};
use crate::hash::Digest;
use crate::json::{self, JsonError};

/// How much of a blob file is read at a time.
const BLOB_BUFFER_BYTES: usize = 256 << 10;

pub struct Layout {
    dir: PathBuf,
    root: Root,
    /// The entries of `index.json` (none when it could not be read unambiguously).
    entries: Vec<Descriptor>,
}

/// What the reference picks out of `index.json`.
enum Root {
    Entry(Descriptor, &'static str),
    Digest(Digest),
    Missing(String),
    /// `index.json` is JSON that Go clients read otherwise than vouch.
    Ambiguous(String),
}

impl Layout {
    /// Opens the layout and finds the manifest the reference names. A directory that is
    /// not a layout, or a reference that does not say which of several images, is an
    /// input error.
    pub fn open(reference: &LayoutRef) -> Result<Layout> {
        let dir = reference.dir.clone();
        let meta = std::fs::metadata(&dir).map_err(|e| Error::io(&dir, e))?;
        if !meta.is_dir() {
            return Err(Error::input(
                &dir,
                "is not a directory, so not an OCI image layout",
            ));
        }
        let marker = dir.join("oci-layout");
        if !marker.exists() {
            return Err(Error::input(
                &dir,
                "is not an OCI image layout: it has no oci-layout file",
            ));
        }
        let version: serde_json::Value = json::from_slice(&read_input(&marker)?)
            .map_err(|e| Error::input(&marker, e.to_string()))?;
        let version = version
            .as_object()
            .map(|object| json::field(object, "imageLayoutVersion", ""))
            .transpose()
            .map_err(|e| Error::input(&marker, e.to_string()))?
            .flatten();
        if version.and_then(|v| v.as_str()) != Some("1.0.0") {
            return Err(Error::input(
                &marker,
                "imageLayoutVersion is not \"1.0.0\", the version vouch reads",
            ));
        }
        let index_path = dir.join("index.json");
        let index = match Document::parse(&read_input(&index_path)?, Some(OCI_INDEX)) {
            Ok(Document::Index(index)) => index,
            Ok(Document::Manifest(_)) => {
                return Err(Error::input(&index_path, "is a manifest, not an index"))
            }
            // The layout's content, read otherwise by Go clients: an integrity failure.
            Err(JsonError::Ambiguous(message)) => {
                return Ok(Layout {
                    dir,
                    root: Root::Ambiguous(format!("index.json: {message}")),
                    entries: Vec::new(),
                })
            }
            Err(e) => return Err(Error::input(&index_path, e.to_string())),
        };
        let tags = || {
            let tags: Vec<&str> = index
                .manifests
                .iter()
                .filter_map(|m| m.annotations.get(REF_NAME).map(String::as_str))
                .collect();
            if tags.is_empty() {
                "none".to_string()
            } else {
                tags.join(", ")
            }
        };
        let root = match (&reference.tag, &reference.digest) {
            (_, Some(digest)) => match index.manifests.iter().find(|m| &m.digest == digest) {
                Some(entry) => Root::Entry(entry.clone(), "index.json"),
                None => Root::Digest(digest.clone()),
            },
            (Some(tag), None) => {
                let tagged: Vec<&Descriptor> = index
                    .manifests
                    .iter()
                    .filter(|m| m.annotations.get(REF_NAME) == Some(tag))
                    .collect();
                match tagged.as_slice() {
                    [entry] => Root::Entry((*entry).clone(), "index.json"),
                    [] => Root::Missing(format!(
                        "index.json has no manifest tagged '{tag}' (tags: {})",
                        tags()
                    )),
                    // Clients take the first or the last: the tag names no one manifest.
                    many => Root::Ambiguous(format!(
                        "index.json tags {} manifests '{tag}': the tag is ambiguous",
                        many.len()
                    )),
                }
            }
            (None, None) => match index.manifests.as_slice() {
                [only] => Root::Entry(only.clone(), "index.json"),
                [] => return Err(Error::input(&index_path, "lists no manifests")),
                many => {
                    return Err(Error::Usage(format!(
                    "{} holds {} manifests; name one as oci:DIR:TAG or oci:DIR@DIGEST (tags: {})",
                    index_path.display(),
                    many.len(),
                    tags()
                )))
                }
            },
        };
        Ok(Layout {
            dir,
            root,
            entries: index.manifests,
        })
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir
            .join("blobs")
            .join(digest.algorithm.name())
            .join(digest.hex())
    }

    fn open_blob(&self, digest: &Digest) -> Result<File, Unavailable> {
        let path = self.blob_path(digest);
        let shown = || relative(&self.dir, &path);
        match open_regular(&path, false) {
            Ok((file, _)) => Ok(file),
            Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Err(
                Unavailable::Missing(format!("{} is absent from the layout", shown())),
            ),
            Err(ReadError::NotRegular(kind)) => Err(Unavailable::Refused(format!(
                "{} is {kind}; it was not read",
                shown()
            ))),
            Err(ReadError::Io(e)) => Err(Unavailable::Failed(format!("{}: {e}", shown()))),
            Err(ReadError::Unstable(message)) => {
                Err(Unavailable::Failed(format!("{}: {message}", shown())))
            }
        }
    }

    fn read_document(&self, digest: &Digest) -> Result<Vec<u8>, Unavailable> {
        let mut bytes = Vec::new();
        self.open_blob(digest)?
            .take(MAX_DOCUMENT_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| {
                Unavailable::Failed(format!(
                    "{}: {e}",
                    relative(&self.dir, &self.blob_path(digest))
                ))
            })?;
        within_document_limit(bytes, &relative(&self.dir, &self.blob_path(digest)))
    }
}

fn relative(dir: &Path, path: &Path) -> String {
    path.strip_prefix(dir).unwrap_or(path).display().to_string()
}

impl Store for Layout {
    fn root(&self) -> Result<Fetched, Unavailable> {
        // A digest in the reference is already the pin the caller checks; an index.json
        // entry is a record of its own.
        let (digest, recorded) = match &self.root {
            Root::Missing(message) => return Err(Unavailable::Missing(message.clone())),
            Root::Ambiguous(message) => return Err(Unavailable::Refused(message.clone())),
            Root::Entry(entry, source) => (
                &entry.digest,
                Some(Recorded {
                    digest: entry.digest.clone(),
                    size: Some(entry.size),
                    source,
                }),
            ),
            Root::Digest(digest) => (digest, None),
        };
        let media_type = match &self.root {
            Root::Entry(entry, _) => Some(entry.media_type.clone()),
            _ => None,
        };
        Ok(Fetched {
            bytes: self.read_document(digest)?,
            media_type,
            recorded,
        })
    }

    fn manifest(&self, descriptor: &Descriptor) -> Result<Vec<u8>, Unavailable> {
        self.read_document(&descriptor.digest)
    }

    fn blob(&self, descriptor: &Descriptor) -> Result<Box<dyn BufRead + Send + '_>, Unavailable> {
        Ok(Box::new(BufReader::with_capacity(
            BLOB_BUFFER_BYTES,
            self.open_blob(&descriptor.digest)?,
        )))
    }

    fn tagged(&self, tag: &str) -> Result<Option<Vec<u8>>, Unavailable> {
        let tagged: Vec<&Descriptor> = self
            .entries
            .iter()
            .filter(|m| m.annotations.get(REF_NAME).map(String::as_str) == Some(tag))
            .collect();
        match tagged.as_slice() {
            [] => Ok(None),
            [entry] => self.read_document(&entry.digest).map(Some),
            many => Err(Unavailable::Refused(format!(
                "index.json tags {} manifests '{tag}': the tag is ambiguous",
                many.len()
            ))),
        }
    }

    fn referrers(&self, subject: &Digest) -> Result<Option<Vec<Descriptor>>, Unavailable> {
        // A layout has no referrers API: every manifest index.json lists is read, and the
        // ones whose subject is `subject` are its referrers.
        let mut found: Vec<Descriptor> = Vec::new();
        for entry in &self.entries {
            if &entry.digest == subject || found.iter().any(|f| f.digest == entry.digest) {
                continue;
            }
            let bytes = match self.read_document(&entry.digest) {
                Ok(bytes) => bytes,
                Err(Unavailable::Missing(_)) => continue,
                Err(other) => return Err(other),
            };
            if entry.digest.algorithm.digest(&bytes) != entry.digest {
                continue;
            }
            let Ok(Document::Manifest(manifest)) = Document::parse(&bytes, Some(&entry.media_type))
            else {
                continue;
            };
            if manifest.subject.as_ref().map(|s| &s.digest) != Some(subject) {
                continue;
            }
            found.push(Descriptor {
                media_type: entry.media_type.clone(),
                digest: entry.digest.clone(),
                size: bytes.len() as u64,
                annotations: manifest.annotations.clone(),
                platform: None,
                artifact_type: manifest
                    .artifact_type
                    .clone()
                    .or_else(|| Some(manifest.config.media_type.clone())),
            });
        }
        Ok(Some(found))
    }

    fn attempts(&self) -> u32 {
        1
    }

    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Writing into a layout: blobs go to `blobs/ALGORITHM/HEX` and `index.json` gets an entry
/// for the tag, each file written to a temporary and renamed, so a reader sees the layout
/// before or after, never half of it (a blob left by a failure later is one nothing names).
impl Sink for Layout {
    /// Whether the layout holds the blob as it must be: a regular file (opened as blobs are
    /// read, links not followed) whose bytes hash to `digest`; one absent, planted or
    /// damaged there is written anew.
    fn has_blob(&self, digest: &Digest) -> Result<bool, Unavailable> {
        let file = match self.open_blob(digest) {
            Ok(file) => file,
            Err(Unavailable::Missing(_) | Unavailable::Refused(_)) => return Ok(false),
            Err(other) => return Err(other),
        };
        let mut reader = BufReader::with_capacity(BLOB_BUFFER_BYTES, file);
        let mut hasher = digest.algorithm.hasher();
        loop {
            let chunk = reader.fill_buf().map_err(|e| {
                Unavailable::Failed(format!(
                    "{}: {e}",
                    relative(&self.dir, &self.blob_path(digest))
                ))
            })?;
            if chunk.is_empty() {
                return Ok(&hasher.finalize() == digest);
            }
            hasher.update(chunk);
            let read = chunk.len();
            reader.consume(read);
        }
    }

    fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<(), Unavailable> {
        let path = self.blob_path(digest);
        let failed = |e: Error| Unavailable::Failed(e.to_string());
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| failed(Error::io(parent, e)))?;
        }
        write_atomically(&path, bytes).map_err(failed)
    }

    fn put_manifest(
        &self,
        tag: Option<&str>,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(), Unavailable> {
        let digest = crate::hash::Algorithm::Sha256.digest(bytes);
        if !self.has_blob(&digest)? {
            self.put_blob(&digest, bytes)?;
        }
        // index.json as it is now, read as strictly as when the layout was opened.
        let index_path = self.dir.join("index.json");
        let refused = |message: String| Unavailable::Refused(format!("index.json: {message}"));
        let text = read_input(&index_path).map_err(|e| Unavailable::Failed(e.to_string()))?;
        let mut index: serde_json::Value =
            json::from_slice(&text).map_err(|e| refused(e.to_string()))?;
        let manifests = index
            .get_mut("manifests")
            .and_then(|m| m.as_array_mut())
            .ok_or_else(|| refused("it has no manifests list".into()))?;
        let mut entry = serde_json::json!({
            "mediaType": media_type,
            "digest": digest.prefixed(),
            "size": bytes.len(),
        });
        match tag {
            Some(tag) => {
                manifests.retain(|entry| {
                    entry
                        .get("annotations")
                        .and_then(|a| a.get(REF_NAME))
                        .and_then(|t| t.as_str())
                        != Some(tag)
                });
                entry["annotations"] = serde_json::json!({ REF_NAME: tag });
            }
            // An untagged entry, listed once: a layout's referrers are found in index.json.
            None => {
                let listed = manifests.iter().any(|m| {
                    m.get("digest").and_then(|d| d.as_str()) == Some(&digest.prefixed())
                        && m.get("annotations").and_then(|a| a.get(REF_NAME)).is_none()
                });
                if listed {
                    return Ok(());
                }
            }
        }
        manifests.push(entry);
        let text = serde_json::to_vec(&index).expect("a JSON value serializes");
        write_atomically(&index_path, &text).map_err(|e| Unavailable::Failed(e.to_string()))
    }

    fn location(&self, tag: &str) -> String {
        format!("oci:{}:{tag}", self.dir.display())
    }
}
