//! What an SBOM says about a model: every file hashed once, its header read, and the
//! identity a Hugging Face hub cache snapshot gives it.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::Path;

use serde_json::Value;

use super::purl;
use crate::error::Result;
use crate::formats::Facts;
use crate::hash::{Algorithm, Digest, Engine, Stamp, Task};
use crate::model::oms::{self, Method, Serialization};
use crate::model::paths::{compare_names, IgnoreSet};
use crate::model::{read_error, read_error_at, walk_faithfully};
use crate::verify::inspect::{display_name, external_task, inspect_open, FileProblem};

/// A model: its identity, its files with their digests and format facts.
#[derive(Clone, Debug)]
pub struct ModelDescription {
    pub name: String,
    pub version: Option<String>,
    pub purl: Option<String>,
    /// The OMS root digest (files method, SHA-256): what `vouch digest` prints.
    pub root_digest: Digest,
    pub files: Vec<DescribedFile>,
    /// From a Hugging Face `config.json` at the model root.
    pub parameters: Option<ModelParameters>,
}

#[derive(Clone, Debug)]
pub struct DescribedFile {
    /// Relative name inside the model (the file's own name for a single-file model).
    pub name: String,
    pub size: u64,
    pub sha1: Digest,
    pub sha256: Digest,
    pub blake3: Option<Digest>,
    pub facts: Option<Facts>,
    /// Set for files outside the model's own resources: external data of an ONNX file
    /// that is the whole model, named here.
    pub external_data_of: Option<String>,
}

/// CycloneDX `modelCard.modelParameters`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelParameters {
    /// `model_type` (`llama`).
    pub architecture_family: Option<String>,
    /// `architectures[0]` (`LlamaForCausalLM`).
    pub model_architecture: Option<String>,
    /// The Hugging Face task its architecture's head implies (`text-generation`).
    pub task: Option<String>,
}

/// How to describe a model or an image.
#[derive(Clone, Debug, Default)]
pub struct DescribeOptions {
    pub name: Option<String>,
    pub version: Option<String>,
    pub purl: Option<String>,
    /// Add BLAKE3 digests to every file.
    pub blake3: bool,
    /// Model-relative names to leave out (an output file inside the model).
    pub ignore: Vec<String>,
}

/// Describes the model at `path`: every file hashed once (SHA-1, SHA-256, and BLAKE3 when
/// asked) and its header read. Returns the description and warnings for the user.
pub fn describe_model(
    path: &Path,
    options: &DescribeOptions,
    engine: &Engine,
) -> Result<(ModelDescription, Vec<String>)> {
    let mut ignore = IgnoreSet::with_defaults();
    for name in &options.ignore {
        ignore.insert(name.clone());
    }
    crate::model::hf::ignore_local_dir_metadata(path, &mut ignore);
    let serialization = Serialization {
        method: Method::Files,
        algorithm: Algorithm::Sha256,
        allow_symlinks: false,
        ignore_paths: ignore,
    };
    let model = walk_faithfully(path, &serialization)?;
    let mut algorithms = vec![Algorithm::Sha256, Algorithm::Sha1];
    if options.blake3 {
        algorithms.push(Algorithm::Blake3);
    }
    // Each file is hashed and its header (and a root `config.json`) read from one handle.
    let tasks: Vec<Task> = model
        .files
        .iter()
        .map(|file| Task::whole(file.location.clone(), file.identity))
        .collect();
    let read = |index: usize, open: &File, stamp: &Stamp| {
        let file = &model.files[index];
        let config = (!model.is_single_file && file.name == "config.json")
            .then(|| read_config(open, stamp.len));
        (inspect_open(&model, file, open, stamp.len), config)
    };
    let (results, _) = engine.hash_all_inspecting(&tasks, &algorithms, &read);
    let mut warnings = Vec::new();
    let mut parameters = None;
    let mut files = Vec::with_capacity(model.files.len());
    let mut extra = Vec::new();
    let own: BTreeSet<&str> = model.files.iter().map(|f| f.name.as_str()).collect();
    for (file, result) in model.files.iter().zip(results) {
        let (digests, (inspected, config)) = match result {
            Ok((digests, Some(found))) => (digests, found),
            Ok((_, None)) => unreachable!("every whole-file task is inspected"),
            Err(e) => return Err(read_error(&model, &file.name, e)),
        };
        let name = display_name(&model, file);
        if let Some(problem) = &inspected.problem {
            warnings.push(problem_warning(&name, problem));
        }
        match config {
            Some(Ok(found)) => parameters = found,
            Some(Err(message)) => {
                warnings.push(format!("config.json: {message}; no model card parameters"))
            }
            None => {}
        }
        for external in &inspected.external {
            if external
                .name
                .as_deref()
                .is_some_and(|ext| !model.is_single_file && own.contains(ext))
            {
                continue;
            }
            match external_task(&model, external) {
                Err(problem) => warnings.push(format!(
                    "{name}: external data location '{}' {problem}",
                    external.location
                )),
                Ok(task) if model.is_single_file => {
                    let ext = external.name.clone().expect("a task has a name");
                    extra.push((ext, task, name.clone()))
                }
                Ok(_) => {}
            }
        }
        files.push(described(
            name,
            file.size(),
            digests,
            inspected.facts,
            None,
            options,
        ));
    }
    let mut extra_tasks = Vec::new();
    let mut extra_owners = Vec::new();
    for (ext, task, owner) in extra {
        if files.iter().any(|f| f.name == ext) || extra_owners.iter().any(|(e, _)| *e == ext) {
            continue;
        }
        extra_tasks.push(task);
        extra_owners.push((ext, owner));
    }
    let (results, _) = engine.hash_all(&extra_tasks, &algorithms);
    for ((task, (ext, owner)), result) in extra_tasks.iter().zip(extra_owners).zip(results) {
        let digests = result.map_err(|e| read_error_at(task.location.path(), e))?;
        files.push(described(
            ext,
            task.end,
            digests,
            None,
            Some(owner),
            options,
        ));
    }
    files.sort_by(|a, b| compare_names(&a.name, &b.name));
    let root_digest = oms::root_digest(
        files
            .iter()
            .filter(|f| f.external_data_of.is_none())
            .map(|f| &f.sha256),
    );

    let hub = hub_snapshot(path);
    let description = ModelDescription {
        name: options
            .name
            .clone()
            .or_else(|| hub.as_ref().map(|h| h.repo_id()))
            .unwrap_or_else(|| model.name.clone()),
        version: options
            .version
            .clone()
            .or_else(|| hub.as_ref().map(|h| h.revision.clone())),
        purl: options
            .purl
            .clone()
            .or_else(|| hub.as_ref().map(HubSnapshot::purl)),
        root_digest,
        files,
        parameters,
    };
    Ok((description, warnings))
}

/// A described file from its digests (SHA-256, SHA-1, then BLAKE3 when asked).
fn described(
    name: String,
    size: u64,
    digests: Vec<Digest>,
    facts: Option<Facts>,
    external_data_of: Option<String>,
    options: &DescribeOptions,
) -> DescribedFile {
    let mut digests = digests.into_iter();
    let mut next = || digests.next().expect("one digest per algorithm");
    DescribedFile {
        name,
        size,
        sha256: next(),
        sha1: next(),
        blake3: options.blake3.then(&mut next),
        facts,
        external_data_of,
    }
}

fn problem_warning(name: &str, problem: &FileProblem) -> String {
    match problem {
        FileProblem::Malformed(m) => format!("{name}: {m}; no format facts recorded"),
        FileProblem::Unread(_, m) => format!("{name}: cannot read its header: {m}"),
    }
}

/// Largest `config.json` read (real ones are a few kB).
const CONFIG_LIMIT: u64 = 16 << 20;

/// Why a `config.json` gives no model card parameters.
#[derive(Debug, thiserror::Error)]
enum ConfigProblem {
    #[error("larger than {CONFIG_LIMIT} bytes")]
    TooLarge,
    #[error("{0}")]
    Read(#[from] std::io::Error),
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Model card parameters from a Hugging Face `config.json`, read from the open `file` of
/// `len` bytes.
fn read_config(file: &File, len: u64) -> Result<Option<ModelParameters>, ConfigProblem> {
    if len > CONFIG_LIMIT {
        return Err(ConfigProblem::TooLarge);
    }
    let mut text = Vec::with_capacity(len as usize);
    let mut reader = file;
    std::io::Seek::rewind(&mut reader)?;
    std::io::Read::read_to_end(
        &mut std::io::Read::take(reader, CONFIG_LIMIT + 1),
        &mut text,
    )?;
    let config: Value = serde_json::from_slice(&text)?;
    let text_of = |v: &Value| v.as_str().map(str::to_string);
    let model_architecture = config["architectures"].get(0).and_then(text_of);
    let parameters = ModelParameters {
        architecture_family: text_of(&config["model_type"]),
        task: model_architecture.as_deref().and_then(task_of),
        model_architecture,
    };
    Ok((parameters != ModelParameters::default()).then_some(parameters))
}

/// The Hugging Face pipeline task that a Transformers architecture's head implements.
fn task_of(architecture: &str) -> Option<String> {
    const HEADS: &[(&str, &str)] = &[
        ("ForCausalLM", "text-generation"),
        ("LMHeadModel", "text-generation"),
        ("ForMaskedLM", "fill-mask"),
        ("ForSequenceClassification", "text-classification"),
        ("ForTokenClassification", "token-classification"),
        ("ForQuestionAnswering", "question-answering"),
        ("ForMultipleChoice", "multiple-choice"),
        ("ForImageClassification", "image-classification"),
        ("ForObjectDetection", "object-detection"),
        ("ForSemanticSegmentation", "image-segmentation"),
        ("ForAudioClassification", "audio-classification"),
        ("ForCTC", "automatic-speech-recognition"),
        ("ForSpeechSeq2Seq", "automatic-speech-recognition"),
        ("ForSeq2SeqLM", "text2text-generation"),
    ];
    HEADS
        .iter()
        .find(|(suffix, _)| architecture.ends_with(suffix))
        .map(|(_, task)| task.to_string())
}

/// A snapshot in the Hugging Face hub cache: `models--NS--NAME/snapshots/REVISION`.
struct HubSnapshot {
    namespace: Option<String>,
    name: String,
    revision: String,
}

impl HubSnapshot {
    fn repo_id(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        }
    }

    /// Its package URL.
    fn purl(&self) -> String {
        purl::huggingface(self.namespace.as_deref(), &self.name, &self.revision)
    }
}

/// Recognizes a model inside the Hugging Face hub cache layout.
fn hub_snapshot(path: &Path) -> Option<HubSnapshot> {
    let path = path.canonicalize().ok()?;
    let parts: Vec<&str> = path.iter().filter_map(|p| p.to_str()).collect();
    let at = parts.iter().rposition(|p| *p == "snapshots")?;
    let repo = parts.get(at.checked_sub(1)?)?.strip_prefix("models--")?;
    let revision = parts.get(at + 1)?.to_string();
    let mut pieces = repo.splitn(2, "--");
    let first = pieces.next()?.to_string();
    let (namespace, name) = match pieces.next() {
        Some(name) => (Some(first), name.to_string()),
        None => (None, first),
    };
    (!name.is_empty() && !revision.is_empty()).then_some(HubSnapshot {
        namespace,
        name,
        revision,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_the_huggingface_purl_from_the_hub_cache_layout() {
        let dir = tempfile::tempdir().unwrap();
        let snapshot = dir
            .path()
            .join("hub/models--meta-llama--Llama-3.2-1B/snapshots/4E20DE362430CD3B72F300E6B0F18E50E7166E08");
        std::fs::create_dir_all(&snapshot).unwrap();
        let hub = hub_snapshot(&snapshot).unwrap();
        assert_eq!(hub.repo_id(), "meta-llama/Llama-3.2-1B");
        assert_eq!(
            hub.purl(),
            "pkg:huggingface/meta-llama/Llama-3.2-1B@4e20de362430cd3b72f300e6b0f18e50e7166e08"
        );
        assert!(hub_snapshot(dir.path()).is_none());
    }

    #[test]
    fn tasks_come_from_the_architecture_head() {
        assert_eq!(
            task_of("LlamaForCausalLM").as_deref(),
            Some("text-generation")
        );
        assert_eq!(task_of("BertForMaskedLM").as_deref(), Some("fill-mask"));
        assert_eq!(task_of("BertModel"), None);
    }
}
