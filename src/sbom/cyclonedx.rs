//! CycloneDX 1.6 JSON: the model as `metadata.component` (type `machine-learning-model`),
//! its files as nested components with their hashes, a complete composition, the model card
//! parameters, and the format facts and OMS root digest as properties.

use serde::Serialize;

use super::describe::{DescribedFile, ModelDescription, Sbom, Subject};
use super::properties::{fact_properties, NAMESPACE};

#[derive(Serialize)]
struct Bom {
    #[serde(rename = "$schema")]
    schema: &'static str,
    #[serde(rename = "bomFormat")]
    bom_format: &'static str,
    #[serde(rename = "specVersion")]
    spec_version: &'static str,
    #[serde(rename = "serialNumber")]
    serial_number: String,
    version: u32,
    metadata: Metadata,
    compositions: Vec<Composition>,
}

#[derive(Serialize)]
struct Metadata {
    timestamp: String,
    tools: Tools,
    component: Component,
}

#[derive(Serialize)]
struct Tools {
    components: Vec<Component>,
}

#[derive(Serialize, Default)]
struct Component {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "bom-ref", skip_serializing_if = "Option::is_none")]
    bom_ref: Option<String>,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    purl: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hashes: Vec<Hash>,
    #[serde(rename = "modelCard", skip_serializing_if = "Option::is_none")]
    model_card: Option<ModelCard>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    properties: Vec<Property>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    components: Vec<Component>,
}

#[derive(Serialize)]
struct Hash {
    alg: &'static str,
    content: String,
}

#[derive(Serialize)]
struct Property {
    name: String,
    value: String,
}

#[derive(Serialize)]
struct ModelCard {
    #[serde(rename = "modelParameters")]
    model_parameters: ModelParameters,
}

#[derive(Serialize)]
struct ModelParameters {
    #[serde(skip_serializing_if = "Option::is_none")]
    task: Option<String>,
    #[serde(rename = "architectureFamily", skip_serializing_if = "Option::is_none")]
    architecture_family: Option<String>,
    #[serde(rename = "modelArchitecture", skip_serializing_if = "Option::is_none")]
    model_architecture: Option<String>,
}

#[derive(Serialize)]
struct Composition {
    aggregate: &'static str,
    assemblies: Vec<String>,
}

fn property(name: impl Into<String>, value: impl Into<String>) -> Property {
    Property {
        name: name.into(),
        value: value.into(),
    }
}

/// The SBOM as CycloneDX 1.6 JSON, ending with a newline.
pub fn render(sbom: &Sbom) -> Vec<u8> {
    let Subject::Model(model) = &sbom.subject;
    let component = model_component(model);
    let bom = Bom {
        schema: "http://cyclonedx.org/schema/bom-1.6.schema.json",
        bom_format: "CycloneDX",
        spec_version: "1.6",
        serial_number: format!("urn:uuid:{}", sbom.serial("cyclonedx")),
        version: 1,
        metadata: Metadata {
            timestamp: sbom.created.timestamp(),
            tools: Tools {
                components: vec![Component {
                    kind: "application",
                    name: "vouch".into(),
                    version: Some(env!("CARGO_PKG_VERSION").into()),
                    ..Component::default()
                }],
            },
            component,
        },
        compositions: vec![Composition {
            aggregate: "complete",
            assemblies: vec![model_ref(model)],
        }],
    };
    let mut out = serde_json::to_vec_pretty(&bom).expect("an SBOM always serializes");
    out.push(b'\n');
    out
}

fn model_ref(model: &ModelDescription) -> String {
    model
        .purl
        .clone()
        .unwrap_or_else(|| format!("model:{}", model.name))
}

fn model_component(model: &ModelDescription) -> Component {
    let properties = vec![
        property(
            format!("{NAMESPACE}:oms:root-digest"),
            model.root_digest.prefixed(),
        ),
        property(format!("{NAMESPACE}:oms:serialization"), "files, sha256"),
    ];
    Component {
        kind: "machine-learning-model",
        bom_ref: Some(model_ref(model)),
        name: model.name.clone(),
        version: model.version.clone(),
        purl: model.purl.clone(),
        model_card: model.parameters.as_ref().map(|p| ModelCard {
            model_parameters: ModelParameters {
                task: p.task.clone(),
                architecture_family: p.architecture_family.clone(),
                model_architecture: p.model_architecture.clone(),
            },
        }),
        properties,
        components: model.files.iter().map(file_component).collect(),
        ..Component::default()
    }
}

fn file_component(file: &DescribedFile) -> Component {
    let mut hashes = vec![Hash {
        alg: "SHA-256",
        content: file.sha256.hex(),
    }];
    if let Some(blake3) = &file.blake3 {
        hashes.push(Hash {
            alg: "BLAKE3",
            content: blake3.hex(),
        });
    }
    let mut properties = vec![property(
        format!("{NAMESPACE}:file:size"),
        file.size.to_string(),
    )];
    if let Some(owner) = &file.external_data_of {
        properties.push(property(
            format!("{NAMESPACE}:onnx:external-data-of"),
            owner.clone(),
        ));
    }
    if let Some(facts) = &file.facts {
        properties.extend(
            fact_properties(facts)
                .into_iter()
                .map(|(name, value)| property(name, value)),
        );
    }
    Component {
        kind: "file",
        bom_ref: Some(format!("file:{}", file.name)),
        name: file.name.clone(),
        hashes,
        properties,
        ..Component::default()
    }
}
