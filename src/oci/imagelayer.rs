//! What one image layer (a tar archive of filesystem changes) puts under the model root
//! of a KServe ModelCar image, read in the same pass as the layer's digest: each regular
//! file under the root hashed as the layer streams, and only what the root needs kept
//! (each file's name, digests and size, and the whiteouts that reach it). Entries that a
//! runtime could place otherwise than they read here are refused (see [`super::modelcar`]).

use std::collections::BTreeSet;
use std::io::{self, Read};

use super::tarlayer::Bounded;
use crate::hash::{Algorithm, Digest, Hasher};
use crate::model::paths::{check_name, normalize_relative_name};

/// The most entries under the model root one layer, or the applied layers, may hold.
pub const MAX_ENTRIES: usize = 100_000;

/// The most problems kept of one layer; the rest are counted.
const MAX_PROBLEMS: usize = 100;

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// The media types of image layers (OCI and Docker), whose content is a tar archive of
/// filesystem changes, compressed or not.
pub(super) const IMAGE_LAYERS: [&str; 4] = [
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
];

/// Whether a layer's media type is one of an image's filesystem layers.
pub fn is_image_layer(media_type: &str) -> bool {
    IMAGE_LAYERS.contains(&media_type)
}

/// The directory of the image's filesystem that holds the model (`--model-root`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelRoot {
    /// Its components, from the filesystem's root.
    parts: Vec<String>,
}

impl ModelRoot {
    /// `/models`, `models/` and `./models` all name the directory `/models`; the
    /// filesystem's root itself, and a path with `..`, are refused.
    pub fn parse(text: &str) -> Result<ModelRoot, String> {
        let relative = text.trim_start_matches('/');
        let name = normalize_relative_name(relative)
            .and_then(|n| check_name(&n).map(|_| n))
            .map_err(|e| format!("--model-root '{text}': {e}"))?;
        Ok(ModelRoot {
            parts: name.split('/').map(str::to_string).collect(),
        })
    }

    /// How a path of the image's filesystem relates to the root.
    pub(super) fn place<'a>(&self, parts: &'a [&'a str]) -> Place<'a> {
        let common = self
            .parts
            .iter()
            .zip(parts)
            .take_while(|(a, b)| a == *b)
            .count();
        if common < parts.len().min(self.parts.len()) {
            Place::Outside
        } else if parts.len() < self.parts.len() {
            Place::Parent
        } else if parts.len() == self.parts.len() {
            Place::Root
        } else {
            Place::Under(&parts[self.parts.len()..])
        }
    }
}

impl std::fmt::Display for ModelRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "/{}", self.parts.join("/"))
    }
}

pub(super) enum Place<'a> {
    Outside,
    /// A parent directory of the root (the filesystem's root among them).
    Parent,
    Root,
    /// Below the root: the components after it.
    Under(&'a [&'a str]),
}

/// What one image layer does under the model root, in the order of its entries.
#[derive(Clone, Debug, Default)]
pub struct LayerChanges {
    /// What its whiteouts hide of the lower layers, applied before its entries.
    pub removals: Vec<Removal>,
    pub entries: Vec<Change>,
    /// The entries refused, each as (its path as written, why).
    pub problems: Vec<(String, String)>,
    /// Problems beyond those kept.
    pub more_problems: u64,
    /// Entries outside the model root, which are not compared.
    pub outside: u64,
    /// The symbolic links the layer makes outside the model root, as (path, target).
    pub links: Vec<(String, String)>,
    /// The directories its entries outside the model root (whiteouts too) are written in:
    /// a runtime follows links there, so a link of this or a lower layer may take them
    /// into the model root.
    pub outside_dirs: BTreeSet<String>,
}

/// What a whiteout hides of the lower layers, by name relative to the model root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Removal {
    /// Everything under the root: a whiteout of the root or of a parent of it, or the
    /// root or a parent made opaque.
    All,
    /// This file or directory and everything below it.
    Path(String),
    /// Everything below this directory (`.wh..wh..opq`).
    Below(String),
}

/// An entry under the model root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Directory(String),
    File {
        name: String,
        sha256: Digest,
        size: u64,
        /// Its digests in the other algorithms asked for (an SBOM's SHA-1, BLAKE3).
        others: Vec<Digest>,
    },
}

impl LayerChanges {
    /// Notes an entry outside the model root: its directory, and what it links to if it
    /// is a symbolic link.
    fn outside_entry(&mut self, parts: &[&str], link: Option<String>) -> io::Result<()> {
        self.outside += 1;
        let (_, parent) = parts.split_last().expect("a name has a component");
        self.outside_dirs.insert(parent.join("/"));
        if let Some(target) = link {
            self.links.push((parts.join("/"), target));
        }
        if self.outside_dirs.len() > MAX_ENTRIES || self.links.len() > MAX_ENTRIES {
            return Err(io::Error::other(format!(
                "the layer holds more than {MAX_ENTRIES} directories or links outside the model root"
            )));
        }
        Ok(())
    }

    fn refuse(&mut self, written: &str, why: impl Into<String>) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push((written.to_string(), why.into()));
        } else {
            self.more_problems += 1;
        }
    }
}

/// Reads one image layer's tar archive (already decompressed) to its end, hashing each
/// regular file under `root` by SHA-256 and by each of `others`. An error is a stream
/// that is no tar archive, or whose headers of one entry (with its GNU long names and PAX
/// records, which the tar reader holds in memory) take more than
/// [`super::tarlayer::MAX_HEADER_BYTES`].
pub fn read(stream: impl Read, root: &ModelRoot, others: &[Algorithm]) -> io::Result<LayerChanges> {
    let mut reading = Reading {
        root,
        others: others
            .iter()
            .copied()
            .filter(|&a| a != Algorithm::Sha256)
            .collect(),
        changes: LayerChanges::default(),
        seen: BTreeSet::new(),
        twice: BTreeSet::new(),
        kept: 0,
    };
    let (stream, gate) = Bounded::new(stream);
    let mut archive = tar::Archive::new(stream);
    for entry in archive.entries()? {
        let mut entry = entry?;
        // The entry's own data is read here, to its end, so that the tar reader reads
        // nothing but headers while the gate is closed.
        gate.open()?;
        reading.entry(&mut entry)?;
        io::copy(&mut entry, &mut io::sink())?;
        gate.close(&entry)?;
    }
    let Reading {
        mut changes, twice, ..
    } = reading;
    // A name given twice is taken from neither entry.
    changes.entries.retain(|change| match change {
        Change::Directory(name) | Change::File { name, .. } => !twice.contains(name),
    });
    Ok(changes)
}

/// The state of reading one layer.
struct Reading<'a> {
    root: &'a ModelRoot,
    others: Vec<Algorithm>,
    changes: LayerChanges,
    seen: BTreeSet<String>,
    twice: BTreeSet<String>,
    /// Entries kept under the root.
    kept: usize,
}

impl Reading<'_> {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> io::Result<()> {
        let root = self.root;
        let bytes = entry.path_bytes().into_owned();
        let written = String::from_utf8_lossy(&bytes).into_owned();
        let name = match std::str::from_utf8(&bytes) {
            Err(_) => Err("the path is not UTF-8".to_string()),
            Ok(path) => normalize_relative_name(path)
                .and_then(|n| check_name(&n).map(|_| n))
                .map_err(|e| format!("the path is no safe relative name: {e}")),
        };
        let name = match name {
            Ok(name) => name,
            // `.` (the filesystem's root, as `tar -C dir .` writes it) is a directory.
            Err(_) if entry.header().entry_type().is_dir() && is_current_dir(&written) => {
                return Ok(())
            }
            Err(why) => {
                self.changes.refuse(&written, why);
                return Ok(());
            }
        };
        let parts: Vec<&str> = name.split('/').collect();
        let (base, parent) = parts.split_last().expect("a name has a component");
        if let Some(hidden) = base.strip_prefix(WHITEOUT) {
            let removal = if *base == OPAQUE {
                match root.place(parent) {
                    Place::Outside => None,
                    Place::Parent | Place::Root => Some(Removal::All),
                    Place::Under(below) => Some(Removal::Below(below.join("/"))),
                }
            } else if hidden.starts_with(WHITEOUT) || hidden.is_empty() {
                // Other `.wh..wh.` names are aufs metadata, which OCI layers do not use.
                match root.place(parent) {
                    Place::Outside | Place::Parent => None,
                    _ => {
                        self.changes
                            .refuse(&written, "is a whiteout of no name vouch knows");
                        return Ok(());
                    }
                }
            } else {
                let mut target = parent.to_vec();
                target.push(hidden);
                match root.place(&target) {
                    Place::Outside => None,
                    Place::Parent | Place::Root => Some(Removal::All),
                    Place::Under(below) => Some(Removal::Path(below.join("/"))),
                }
            };
            // containerd removes what a later entry of the same layer whites out; umoci
            // and the OCI spec keep it (a whiteout hides only lower layers).
            let written_here = |path: &str| {
                self.seen
                    .iter()
                    .any(|s| s == path || s.starts_with(&format!("{path}/")))
            };
            let contested = *base != OPAQUE
                && match &removal {
                    Some(Removal::Path(path)) => written_here(path),
                    Some(Removal::All) => !self.seen.is_empty(),
                    _ => false,
                };
            if contested {
                self.changes.refuse(
                    &written,
                    "whites out what this same layer wrote before it, which containerd removes and umoci keeps",
                );
                return Ok(());
            }
            match removal {
                None => self.changes.outside_entry(&parts, None)?,
                Some(removal) => {
                    self.kept += 1;
                    if self.kept > MAX_ENTRIES {
                        return Err(too_many());
                    }
                    self.changes.removals.push(removal);
                }
            }
            return Ok(());
        }
        let kind = entry.header().entry_type();
        let relative = match root.place(&parts) {
            Place::Outside => {
                let link = kind.is_symlink().then(|| {
                    let target = entry.link_name_bytes().unwrap_or_default();
                    String::from_utf8_lossy(&target).into_owned()
                });
                return self.changes.outside_entry(&parts, link);
            }
            Place::Parent | Place::Root if kind.is_dir() => return Ok(()),
            Place::Parent | Place::Root => {
                let what = if parts.len() < root.parts.len() {
                    format!("a parent of the model root {root}")
                } else {
                    format!("the model root {root}")
                };
                self.changes.refuse(
                    &written,
                    format!("replaces {what} with {}", describe(entry)),
                );
                return Ok(());
            }
            Place::Under(below) => below.join("/"),
        };
        if !self.seen.insert(relative.clone()) {
            self.twice.insert(relative);
            self.changes.refuse(
                &written,
                "the layer holds this name more than once; it names no one file",
            );
            return Ok(());
        }
        self.kept += 1;
        if self.kept > MAX_ENTRIES {
            return Err(too_many());
        }
        if kind.is_dir() {
            self.changes.entries.push(Change::Directory(relative));
        } else if kind.is_file() || kind.is_contiguous() {
            let mut hashing = super::tarlayer::HashingWriter(
                std::iter::once(Algorithm::Sha256)
                    .chain(self.others.iter().copied())
                    .map(Algorithm::hasher)
                    .collect(),
                0,
            );
            io::copy(entry, &mut hashing)?;
            let mut digests = hashing.0.into_iter().map(Hasher::finalize);
            self.changes.entries.push(Change::File {
                name: relative,
                sha256: digests.next().expect("SHA-256 is always computed"),
                size: hashing.1,
                others: digests.collect(),
            });
        } else {
            let what = describe(entry);
            self.changes.refuse(
                &written,
                format!("is {what} under the model root; vouch follows no link and takes no special entry as a file"),
            );
        }
        Ok(())
    }
}

fn is_current_dir(written: &str) -> bool {
    written.split('/').all(|c| c.is_empty() || c == ".")
}

fn too_many() -> io::Error {
    io::Error::other(format!(
        "the layer holds more than {MAX_ENTRIES} entries under the model root"
    ))
}

/// An entry that is no directory, in words.
fn describe<R: Read>(entry: &tar::Entry<'_, R>) -> String {
    let kind = entry.header().entry_type();
    if kind.is_symlink() || kind.is_hard_link() {
        let target = entry
            .link_name_bytes()
            .map(|t| String::from_utf8_lossy(&t).into_owned())
            .unwrap_or_default();
        let link = if kind.is_symlink() {
            "a symbolic link"
        } else {
            "a hard link"
        };
        format!("{link} to '{target}'")
    } else if kind.is_file() || kind.is_contiguous() {
        "a file".to_string()
    } else {
        format!("a special entry (tar type {kind:?})")
    }
}
