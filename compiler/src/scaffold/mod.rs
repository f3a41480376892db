//! `choreoc new`: a runnable workspace for a spec, rendered from minijinja
//! templates.
//!
//! Generated code lives apart from user code: `build.rs` generates the
//! spec's module into OUT_DIR on every build, and the participants'
//! handlers are in `src/participants/`, one file each, written once and
//! then the user's. The files choreoc owns are rewritten when they still
//! hold what it wrote (see [`crate::output`]).

mod samples;

use crate::codegen::{self, CrateSource, OutcomeShape};
use crate::model::CheckedSpec;
use crate::output::GeneratedFile;
use minijinja::{context, Environment};
use serde::Serialize;

/// The runtime features a scaffold turns on: the brokers its binaries'
/// `--broker` and the stores their `--store` can name besides
/// `memory://`, as its README shows them.
pub const RUNTIME_FEATURES: &[&str] = &["nats", "redis", "postgres"];

#[derive(Serialize)]
struct Param {
    var: String,
    ty: String,
}

#[derive(Serialize)]
struct Handler {
    method: String,
    params: Vec<Param>,
    output: String,
    sample: String,
    alternatives: Vec<String>,
    spec_text: String,
}

#[derive(Serialize)]
struct Participant {
    name: String,
    docs: String,
    file: String,
    bin: String,
    service: String,
    trait_path: String,
    module: String,
    handlers: Vec<Handler>,
}

/// A parameter name the compiler will not warn about while unused.
fn unused_name(name: &str) -> String {
    format!("_{}", name.trim_start_matches("r#"))
}

/// Every file of the scaffold for `spec`, whose text is `spec_text` and
/// which is written as `specs/<spec_file>`; choreo's crates come from
/// `deps`.
pub fn files(
    spec: &CheckedSpec,
    spec_text: &str,
    deps: &CrateSource,
) -> Result<Vec<GeneratedFile>, minijinja::Error> {
    let module = codegen::module_name(spec);
    let module_file = module.trim_start_matches("r#").to_string();
    let package = format!("{}-service", module_file.replace('_', "-"));
    let crate_name = package.replace('-', "_");
    let spec_file = format!("{module_file}.choreo");
    let (names, sketches) = codegen::scaffold_view(spec, &module);
    let choose = samples::OutcomeChooser::new(spec);

    let participants: Vec<Participant> = sketches
        .into_iter()
        .zip(&spec.participants)
        .map(|(sketch, p)| {
            let crate::codegen::ParticipantSketch {
                name,
                trait_path,
                module_path,
                handlers,
            } = sketch;
            let file = codegen::rust_ident(&codegen::rust_snake(&name))
                .0
                .to_string();
            let handlers = handlers
                .into_iter()
                .zip(&p.reactions)
                .map(|(h, &rid)| {
                    let pick = choose.outcome(rid);
                    let (shape, events) = &h.outcomes[pick.min(h.outcomes.len().saturating_sub(1))];
                    let values: Vec<String> = events
                        .iter()
                        .map(|e| samples::message(spec, *e, &module))
                        .collect();
                    let sample = match shape {
                        OutcomeShape::Unit => "()".to_string(),
                        OutcomeShape::Plain if values.len() == 1 => values[0].clone(),
                        OutcomeShape::Plain => format!("({})", values.join(", ")),
                        OutcomeShape::Variant(path) if values.is_empty() => path.clone(),
                        OutcomeShape::Variant(path) => format!("{path}({})", values.join(", ")),
                    };
                    let alternatives = if h.outcomes.len() > 1 {
                        h.outcomes
                            .iter()
                            .map(|(shape, events)| {
                                let evs: Vec<&str> =
                                    events.iter().map(|e| spec.message_name(*e)).collect();
                                match shape {
                                    OutcomeShape::Variant(path) if evs.is_empty() => path.clone(),
                                    OutcomeShape::Variant(path) => {
                                        format!("{path}({})", evs.join(", "))
                                    }
                                    _ => evs.join(", "),
                                }
                            })
                            .collect()
                    } else {
                        Vec::new()
                    };
                    Handler {
                        method: h.method,
                        params: h
                            .params
                            .into_iter()
                            .map(|(n, ty)| Param {
                                var: unused_name(&n),
                                ty,
                            })
                            .collect(),
                        output: h.output,
                        sample,
                        alternatives,
                        spec_text: h.spec_text,
                    }
                })
                .collect();
            Participant {
                name: name.clone(),
                docs: p
                    .docs
                    .lines
                    .first()
                    .cloned()
                    .unwrap_or_default()
                    .trim_end_matches('.')
                    .to_string(),
                bin: file.trim_start_matches("r#").to_string(),
                file,
                service: format!("{}Service", codegen::rust_camel(&name)),
                trait_path,
                module: module_path
                    .rsplit("::")
                    .next()
                    .unwrap_or_default()
                    .to_string(),
                handlers,
            }
        })
        .collect();

    // The first command starts the sample instances of `cargo run`.
    let (starter_name, starter_method, starter_sample) = match spec.commands().next() {
        Some(c) => (
            spec.message_name(c).to_string(),
            names.command_method(c),
            samples::message(spec, c, &module),
        ),
        // A checked spec has a command (E0107).
        None => (String::new(), String::new(), String::new()),
    };

    let mut env = Environment::new();
    env.set_keep_trailing_newline(true);
    for (name, text) in TEMPLATES {
        env.add_template(name, text)?;
    }
    let base = context! {
        tool_version => env!("CARGO_PKG_VERSION"),
        choreography => spec.name.text.to_string(),
        package => package.clone(),
        crate_name => crate_name.clone(),
        module => module.clone(),
        module_file => module_file.clone(),
        spec_file => spec_file.clone(),
        deps_source => deps.to_string(),
        runtime => deps.runtime_toml(RUNTIME_FEATURES),
        // The runtime as the files choreoc keeps name it (participant
        // files are the user's and use the runtime's public API).
        rt => codegen::runtime::MODULE,
        compiler => deps.compiler_toml(),
        participants => &participants,
        context => names.context_name(),
        key => names.key_name(),
        commands => names.commands_name(),
        key_sample => samples::key(spec),
        loop_var => if samples::key(spec).contains('i') && spec.key().ty != crate::model::Scalar::Uuid { "i" } else { "_" },
        starter => starter_name,
        starter_method => starter_method,
        starter_sample => starter_sample,
    };
    let render = |template: &str, ctx: minijinja::Value| env.get_template(template)?.render(ctx);

    let mut files = vec![
        GeneratedFile::generated("Cargo.toml", render("Cargo.toml.j2", base.clone())?),
        GeneratedFile::generated("build.rs", render("build.rs.j2", base.clone())?),
        GeneratedFile::generated(format!("specs/{spec_file}"), spec_text.to_string()),
        GeneratedFile::generated("src/lib.rs", render("lib.rs.j2", base.clone())?),
        GeneratedFile::generated("src/cli.rs", render("cli.rs.j2", base.clone())?),
        GeneratedFile::generated("src/main.rs", render("main.rs.j2", base.clone())?),
        GeneratedFile::generated(
            "src/participants/mod.rs",
            render("participants_mod.rs.j2", base.clone())?,
        ),
        GeneratedFile::generated("README.md", render("README.md.j2", base.clone())?),
        GeneratedFile::user(".gitignore", "/target\n"),
    ];
    for p in &participants {
        let ctx = context! { p => p, ..base.clone() };
        files.push(GeneratedFile::user(
            format!("src/participants/{}.rs", p.bin),
            render("participant.rs.j2", ctx.clone())?,
        ));
        files.push(GeneratedFile::generated(
            format!("src/bin/{}.rs", p.bin),
            render("participant_bin.rs.j2", ctx)?,
        ));
    }
    Ok(files)
}

const TEMPLATES: &[(&str, &str)] = &[
    ("Cargo.toml.j2", include_str!("templates/Cargo.toml.j2")),
    ("build.rs.j2", include_str!("templates/build.rs.j2")),
    ("lib.rs.j2", include_str!("templates/lib.rs.j2")),
    ("cli.rs.j2", include_str!("templates/cli.rs.j2")),
    ("main.rs.j2", include_str!("templates/main.rs.j2")),
    (
        "participants_mod.rs.j2",
        include_str!("templates/participants_mod.rs.j2"),
    ),
    (
        "participant.rs.j2",
        include_str!("templates/participant.rs.j2"),
    ),
    (
        "participant_bin.rs.j2",
        include_str!("templates/participant_bin.rs.j2"),
    ),
    ("README.md.j2", include_str!("templates/README.md.j2")),
];
