//! KServe ModelCar images: ordinary container images whose layers put a model's files
//! under a directory of the image's filesystem (`/models`, as `olot` builds them).
//!
//! Each image layer is read in the same pass as its digest ([`super::imagelayer::read`]): the regular files
//! under the model root are hashed as the layer streams, and only what the model root
//! needs is kept (each file's name, SHA-256 and size, and the whiteouts that reach it).
//! [`tree`] then applies the layers in order as a container runtime does, with the OCI
//! whiteouts (`.wh.NAME` removes NAME and everything below it from lower layers,
//! `.wh..wh..opq` hides everything a lower layer put in its directory).
//!
//! What a runtime could place otherwise than vouch reads it is refused, naming the layer
//! and the entry: a path with `..` or an absolute path anywhere in a layer (runtimes differ
//! on where they put it), a link, device or other special entry under the model root, an
//! entry that replaces the root or one of its parents with anything but a directory, a
//! name given twice in one layer, and an entry below what a lower layer left as a file.

use std::collections::BTreeMap;

use super::files::{ApprovedFiles, Layer};
use super::imagelayer::{is_image_layer, Change, ModelRoot, Place, Removal, MAX_ENTRIES};
use super::unavailable_subject;
use crate::hash::{Algorithm, Digest};
use crate::model::paths::IgnoreSet;
use crate::report::{Subject, Verdict};

/// One file under the model root once the layers are applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootFile {
    pub sha256: Digest,
    pub size: u64,
    /// The layer (from 0) that put it there.
    pub layer: usize,
    /// Its digests in the other algorithms asked for.
    pub others: Vec<Digest>,
}

impl RootFile {
    pub fn digest(&self, algorithm: Algorithm) -> Option<&Digest> {
        std::iter::once(&self.sha256)
            .chain(&self.others)
            .find(|d| d.algorithm == algorithm)
    }
}

/// The files under the model root once all layers are applied, by name relative to it;
/// the number of entries outside it; or the subjects that say why the files cannot be
/// known exactly (a layer that is no image layer or could not be read, a refused entry).
pub fn tree(
    root: &ModelRoot,
    layers: &[Layer],
    prefix: &str,
) -> Result<(BTreeMap<String, RootFile>, u64), Vec<Subject>> {
    let mut problems = Vec::new();
    let mut changes = Vec::new();
    for (position, layer) in layers.iter().enumerate() {
        let digest = layer.descriptor.digest.prefixed();
        let layer_name = format!("{prefix}layer {} {digest}", position + 1);
        if !is_image_layer(&layer.descriptor.media_type) {
            problems.push(
                Subject::new(layer_name, Verdict::Rejected)
                    .actual(digest)
                    .message(format!(
                        "is no image layer (its media type is {}), so what it puts in the image's filesystem is unknown",
                        layer.descriptor.media_type
                    )),
            );
            continue;
        }
        match layer.result {
            Err(unavailable) => problems.push(unavailable_subject(layer_name, None, unavailable)),
            Ok(found) => match &found.image {
                Some(Ok(content)) => {
                    for (written, why) in &content.problems {
                        problems.push(
                            Subject::new(format!("{prefix}{written}"), Verdict::Rejected).message(
                                format!("an entry of layer {} {digest}: {why}", position + 1),
                            ),
                        );
                    }
                    if content.more_problems > 0 {
                        problems.push(Subject::new(layer_name, Verdict::Rejected).message(
                            format!("{} more entries are refused", content.more_problems),
                        ));
                    }
                    changes.push(content);
                }
                Some(Err(problem)) => problems.push(
                    Subject::new(layer_name, Verdict::Rejected)
                        .actual(digest)
                        .message(format!("is typed as an image layer, but {problem}")),
                ),
                None => unreachable!("an image layer is read as one when a model root is given"),
            },
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    // Entries outside the root are not compared, unless a link takes them into it.
    let mut links: BTreeMap<String, (String, usize)> = BTreeMap::new();
    for (position, content) in changes.iter().enumerate() {
        for (path, target) in &content.links {
            links.insert(path.clone(), (target.clone(), position));
        }
        for dir in &content.outside_dirs {
            if let Some(why) = linked_into(root, dir, &links) {
                problems.push(
                    Subject::new(format!("{prefix}/{dir}"), Verdict::Rejected).message(format!(
                        "an entry of layer {} {} is written in /{dir}, {why}",
                        position + 1,
                        layers[position].descriptor.digest
                    )),
                );
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut files: BTreeMap<String, RootFile> = BTreeMap::new();
    let mut outside = 0;
    for (position, content) in changes.into_iter().enumerate() {
        outside += content.outside;
        for removal in &content.removals {
            match removal {
                Removal::All => files.clear(),
                Removal::Path(path) => {
                    files.remove(path);
                    remove_below(&mut files, path);
                }
                Removal::Below(path) => remove_below(&mut files, path),
            }
        }
        for change in &content.entries {
            let name = match change {
                Change::Directory(name) | Change::File { name, .. } => name,
            };
            // A parent that a lower layer (or this one) left as a file: the runtime
            // cannot create this entry below it.
            let parts: Vec<&str> = name.split('/').collect();
            if let Some(parent) = (1..parts.len())
                .map(|n| parts[..n].join("/"))
                .find(|p| files.contains_key(p))
            {
                problems.push(
                    Subject::new(format!("{prefix}{root}/{name}"), Verdict::Rejected).message(
                        format!(
                            "an entry of layer {} {}: its parent {root}/{parent} is a file",
                            position + 1,
                            layers[position].descriptor.digest
                        ),
                    ),
                );
                continue;
            }
            match change {
                // A directory replaces a file of that name; a file replaces a directory and
                // everything below it.
                Change::Directory(name) => {
                    files.remove(name);
                }
                Change::File {
                    name,
                    sha256,
                    size,
                    others,
                } => {
                    remove_below(&mut files, name);
                    files.insert(
                        name.clone(),
                        RootFile {
                            sha256: sha256.clone(),
                            size: *size,
                            layer: position,
                            others: others.clone(),
                        },
                    );
                    if files.len() > MAX_ENTRIES {
                        return Err(vec![Subject::new(
                            format!("{prefix}{root}"),
                            Verdict::Rejected,
                        )
                        .message(format!(
                            "the layers put more than {MAX_ENTRIES} files under the model root"
                        ))]);
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        Ok((files, outside))
    } else {
        Err(problems)
    }
}

/// Why writing in the directory `dir` lands in the model root or a parent of it, when the
/// links of the image (path -> target and the layer that made it; a link of the same or a
/// lower layer, kept even if later removed) resolve it there; `None` when they do not. The
/// links are followed as a runtime follows them: an absolute target from the filesystem's
/// root, a relative one from the link's directory, `..` stopping at the root.
fn linked_into(
    root: &ModelRoot,
    dir: &str,
    links: &BTreeMap<String, (String, usize)>,
) -> Option<String> {
    let mut parts: Vec<String> = dir
        .split('/')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    let mut followed: Option<(String, String, usize)> = None;
    let mut hops = 0;
    'resolve: loop {
        for depth in 1..=parts.len() {
            let prefix = parts[..depth].join("/");
            let Some((target, layer)) = links.get(&prefix) else {
                continue;
            };
            hops += 1;
            if hops > 40 {
                return Some("through a loop of links".to_string());
            }
            followed.get_or_insert((prefix.clone(), target.clone(), *layer));
            let base: Vec<String> = if target.starts_with('/') {
                Vec::new()
            } else {
                parts[..depth - 1].to_vec()
            };
            let mut next = base;
            for part in target
                .split('/')
                .chain(parts[depth..].iter().map(String::as_str))
            {
                match part {
                    "" | "." => {}
                    ".." => {
                        next.pop();
                    }
                    other => next.push(other.to_string()),
                }
            }
            parts = next;
            continue 'resolve;
        }
        break;
    }
    let (via, target, layer) = followed?;
    let resolved: Vec<&str> = parts.iter().map(String::as_str).collect();
    match root.place(&resolved) {
        Place::Outside => None,
        _ => Some(format!(
            "which the link /{via} -> {target} (layer {}) makes /{}: the model root {root} or a parent of it",
            layer + 1,
            resolved.join("/")
        )),
    }
}

/// Removes every file below the directory `path`.
fn remove_below(files: &mut BTreeMap<String, RootFile>, path: &str) {
    let below = format!("{path}/");
    let doomed: Vec<String> = files
        .range(below.clone()..)
        .map(|(name, _)| name)
        .take_while(|name| name.starts_with(&below))
        .cloned()
        .collect();
    for name in doomed {
        files.remove(&name);
    }
}

/// Compares the files under the model root of one image with the approved ones: each
/// approved file ok, changed or missing, each other file extra. The second value is what
/// the user should know beyond the subjects (how many entries lay outside the root).
pub fn compare(
    approved: &ApprovedFiles,
    root: &ModelRoot,
    layers: &[Layer],
    prefix: &str,
) -> (Vec<Subject>, Option<String>) {
    let (mut files, outside) = match tree(root, layers, prefix) {
        Ok(found) => found,
        Err(problems) => return (problems, None),
    };
    let on_disk_only = IgnoreSet::with_defaults();
    files.retain(|name, _| !approved.ignore.matches(name) || on_disk_only.matches(name));
    let from = |file: &RootFile| {
        format!(
            "{root} in the image's filesystem, from layer {} {}",
            file.layer + 1,
            layers[file.layer].descriptor.digest
        )
    };
    let mut subjects = Vec::new();
    if let ([(single, digest)], 1) = (approved.files.as_slice(), files.len()) {
        // A model that is one file is approved under the name `.`, whatever its file name.
        if single == crate::model::paths::SINGLE_FILE_NAME {
            let (name, file) = files.pop_first().expect("one file");
            subjects.push(file_subject(
                format!("{prefix}{name}"),
                digest,
                &file,
                from(&file),
            ));
            return (subjects, outside_note(root, outside));
        }
    }
    for (name, digest) in &approved.files {
        match files.remove(name) {
            Some(file) => {
                let message = from(&file);
                subjects.push(file_subject(
                    format!("{prefix}{name}"),
                    digest,
                    &file,
                    message,
                ))
            }
            None => subjects.push(
                Subject::new(format!("{prefix}{name}"), Verdict::Missing)
                    .expected(digest.prefixed())
                    .message(format!(
                        "approved, but not under {root} in the image's filesystem"
                    )),
            ),
        }
    }
    for (name, file) in files {
        subjects.push(
            Subject::new(format!("{prefix}{name}"), Verdict::Extra)
                .actual(file.sha256.prefixed())
                .message(format!("{}, but not in the approved manifest", from(&file))),
        );
    }
    (subjects, outside_note(root, outside))
}

fn file_subject(name: String, approved: &Digest, file: &RootFile, from: String) -> Subject {
    let verdict = if &file.sha256 == approved {
        Verdict::Ok
    } else {
        Verdict::Changed
    };
    Subject::new(name, verdict)
        .expected(approved.prefixed())
        .actual(file.sha256.prefixed())
        .message(from)
}

/// What the user should know of the entries outside the model root.
pub fn outside_note(root: &ModelRoot, outside: u64) -> Option<String> {
    (outside > 0).then(|| {
        format!("--model-root {root}: {outside} entries of the image's layers lie outside it and were not compared")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::blob::Found;
    use crate::oci::document::Descriptor;
    use crate::oci::imagelayer::{read, LayerChanges, IMAGE_LAYERS};
    use crate::oci::store::Unavailable;
    use tar::EntryType::{self, *};

    fn header(path: &str, kind: EntryType, size: u64, link: &str) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        // set_path refuses `..`; write the raw name as a hostile packer would.
        header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.set_entry_type(kind);
        header.set_size(size);
        header.set_mode(0o644);
        header.set_cksum();
        header
    }

    fn archive(entries: &[(&str, EntryType, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, kind, data) in entries {
            let (data, link) = match kind {
                Symlink | Link => (&b""[..], std::str::from_utf8(data).unwrap()),
                _ => (*data, ""),
            };
            builder
                .append(&header(path, *kind, data.len() as u64, link), data)
                .unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn root() -> ModelRoot {
        ModelRoot::parse("/models").unwrap()
    }

    fn sha(bytes: &[u8]) -> Digest {
        Algorithm::Sha256.digest(bytes)
    }

    #[test]
    fn a_root_is_a_relative_directory() {
        for text in ["/models", "models", "./models/", "//models"] {
            assert_eq!(ModelRoot::parse(text).unwrap().to_string(), "/models");
        }
        assert_eq!(
            ModelRoot::parse("/opt/ml/model").unwrap().to_string(),
            "/opt/ml/model"
        );
        for bad in ["/", "", "/models/../etc", "a/../b"] {
            assert!(ModelRoot::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_what_a_layer_puts_under_the_root_and_refuses_what_a_runtime_places_otherwise() {
        let bytes = archive(&[
            ("./", Directory, b""),
            ("models/", Directory, b""),
            ("./models/a.bin", Regular, b"alpha"),
            ("models//sub/b.txt", Regular, b"beta"),
            ("etc/hostname", Regular, b"car"),
            ("etc/link", Symlink, b"/models/a.bin"),
            ("models/.wh.gone", Regular, b""),
            ("models/sub/.wh..wh..opq", Regular, b""),
            ("../x", Regular, b"out"),
            ("/models/abs", Regular, b"abs"),
            ("models/link", Symlink, b"../etc/passwd"),
            ("models/hard", Link, b"etc/hostname"),
            ("models/fifo", Fifo, b""),
            ("models/dup", Regular, b"1"),
            ("./models/dup", Regular, b"2"),
        ]);
        let changes = read(bytes.as_slice(), &root(), &[Algorithm::Sha1]).unwrap();
        assert_eq!(
            changes.entries,
            vec![
                Change::File {
                    name: "a.bin".into(),
                    sha256: sha(b"alpha"),
                    size: 5,
                    others: vec![Algorithm::Sha1.digest(b"alpha")],
                },
                Change::File {
                    name: "sub/b.txt".into(),
                    sha256: sha(b"beta"),
                    size: 4,
                    others: vec![Algorithm::Sha1.digest(b"beta")],
                },
            ]
        );
        assert_eq!(
            changes.removals,
            vec![Removal::Path("gone".into()), Removal::Below("sub".into())]
        );
        assert_eq!(changes.outside, 2);
        let refused: Vec<&str> = changes.problems.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            refused,
            [
                "../x",
                "/models/abs",
                "models/link",
                "models/hard",
                "models/fifo",
                "./models/dup"
            ],
            "{changes:?}"
        );
        assert!(changes.problems[2]
            .1
            .contains("a symbolic link to '../etc/passwd'"));
    }

    #[test]
    fn the_root_or_a_parent_replaced_or_whited_out() {
        let deep = ModelRoot::parse("/opt/models").unwrap();
        let bytes = archive(&[
            ("opt", Symlink, b"/tmp"),
            ("opt/models", Regular, b"x"),
            (".wh.opt", Regular, b""),
            ("opt/.wh.models", Regular, b""),
            ("opt/.wh..wh..opq", Regular, b""),
            ("optional/.wh.models", Regular, b""),
        ]);
        let changes = read(bytes.as_slice(), &deep, &[]).unwrap();
        let refused: Vec<&str> = changes.problems.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(refused, ["opt", "opt/models"]);
        assert!(changes.problems[0]
            .1
            .contains("a parent of the model root /opt/models"));
        assert!(changes.problems[1]
            .1
            .contains("the model root /opt/models with a file"));
        assert_eq!(changes.removals, vec![Removal::All; 3]);
        assert_eq!(changes.outside, 1);
    }

    fn layer_of(changes: LayerChanges) -> (Descriptor, Result<Found, Unavailable>) {
        let descriptor = Descriptor {
            media_type: IMAGE_LAYERS[0].into(),
            digest: sha(format!("{changes:?}").as_bytes()),
            size: 0,
            annotations: Default::default(),
            platform: None,
            artifact_type: None,
        };
        let found = Found {
            digests: vec![descriptor.digest.clone()],
            size: 0,
            content: None,
            diff_id: None,
            tar: None,
            image: Some(Ok(changes)),
        };
        (descriptor, Ok(found))
    }

    fn applied(
        layers: &[&[(&str, EntryType, &[u8])]],
    ) -> Result<BTreeMap<String, RootFile>, Vec<Subject>> {
        let parts: Vec<_> = layers
            .iter()
            .map(|entries| layer_of(read(archive(entries).as_slice(), &root(), &[]).unwrap()))
            .collect();
        let layers: Vec<Layer> = parts
            .iter()
            .map(|(descriptor, result)| Layer { descriptor, result })
            .collect();
        tree(&root(), &layers, "").map(|(files, _)| files)
    }

    fn names(files: &BTreeMap<String, RootFile>) -> Vec<(&str, usize)> {
        files.iter().map(|(n, f)| (n.as_str(), f.layer)).collect()
    }

    #[test]
    fn layers_apply_in_order_with_whiteouts() {
        let files = applied(&[
            &[
                ("models/a", Regular, b"1"),
                ("models/sub/b", Regular, b"2"),
                ("models/sub/c", Regular, b"3"),
                ("models/d/e", Regular, b"4"),
                ("models/keep", Regular, b"5"),
            ],
            &[
                // A whiteout hides the lower layers' file; this layer's own comes after it.
                ("models/.wh.a", Regular, b""),
                ("models/a", Regular, b"new"),
                ("models/sub/.wh.b", Regular, b""),
                // A file replaces a directory and all below it.
                ("models/d", Regular, b"file"),
            ],
            &[
                ("models/sub/.wh..wh..opq", Regular, b""),
                ("models/sub/z", Regular, b"z"),
            ],
        ])
        .unwrap();
        assert_eq!(
            names(&files),
            [("a", 1), ("d", 1), ("keep", 0), ("sub/z", 2)]
        );
        assert_eq!(files["a"].sha256, sha(b"new"));

        // After the file in the same layer, runtimes part (containerd removes it).
        let problems = applied(&[
            &[("models/a", Regular, b"1")],
            &[
                ("models/a", Regular, b"new"),
                ("models/.wh.a", Regular, b""),
            ],
        ])
        .unwrap_err();
        assert!(problems[0]
            .message
            .as_deref()
            .unwrap()
            .contains("whites out what this same layer wrote"));

        // A whiteout of the root, or the filesystem's root made opaque, hides all below.
        for hide in [".wh.models", ".wh..wh..opq"] {
            let files = applied(&[
                &[("models/a", Regular, b"1")],
                &[(hide, Regular, b""), ("models/b", Regular, b"2")],
            ])
            .unwrap();
            assert_eq!(names(&files), [("b", 1)], "{hide}");
        }
    }

    #[test]
    fn an_entry_below_a_file_is_refused() {
        let problems = applied(&[
            &[("models/a", Regular, b"1")],
            &[("models/a/b", Regular, b"2")],
        ])
        .unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].name, "/models/a/b");
        assert!(problems[0]
            .message
            .as_deref()
            .unwrap()
            .contains("its parent /models/a is a file"));
    }

    #[test]
    fn a_long_name_over_the_cap_is_refused_before_it_is_held() {
        let bomb = crate::oci::tarlayer::tests::long_name_bomb();
        let error = read(bomb, &root(), &[]).unwrap_err();
        assert!(
            error.to_string().contains("take more than 65536 bytes"),
            "{error}"
        );
    }

    #[test]
    fn a_layer_of_another_media_type_is_refused() {
        let (mut descriptor, result) = layer_of(LayerChanges::default());
        descriptor.media_type = "application/vnd.cncf.model.weight.v1.raw".into();
        let layers = [Layer {
            descriptor: &descriptor,
            result: &result,
        }];
        let problems = tree(&root(), &layers, "").unwrap_err();
        assert!(problems[0]
            .message
            .as_deref()
            .unwrap()
            .contains("is no image layer"));
    }

    #[test]
    fn links_are_followed_as_a_runtime_follows_them() {
        let links: BTreeMap<String, (String, usize)> = [
            ("lib", "usr/lib"),
            ("data", "/srv/../models"),
            ("srv/up", "../.."),
            ("a", "b"),
            ("b", "a"),
        ]
        .into_iter()
        .map(|(p, t)| (p.to_string(), (t.to_string(), 0)))
        .collect();
        assert_eq!(linked_into(&root(), "lib/x86_64-linux-gnu", &links), None);
        assert_eq!(linked_into(&root(), "etc", &links), None);
        assert!(linked_into(&root(), "data/sub", &links).is_some());
        // `..` stops at the filesystem's root, which is a parent of the model root.
        assert!(linked_into(&root(), "srv/up", &links).is_some());
        assert!(linked_into(&root(), "a/x", &links)
            .unwrap()
            .contains("loop"));
    }
}
