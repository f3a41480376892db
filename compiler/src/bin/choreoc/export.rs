//! `choreoc export`: what other tools need, derived from a spec. One
//! subcommand per export.

use crate::input::{self, Color};
use crate::status;
use choreo_compiler::export::asyncapi::{self, servers, Broker, Format, Options};
use choreo_compiler::export::jsonschema::JsonSchemas;
use choreo_compiler::export::permissions::{
    self,
    nats::NatsPermissions,
    redis::{password_hash, RedisAcl},
    Deployment, Usage,
};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// Derive configuration for other tools from a spec
///
/// Examples:
///   choreoc export permissions shop.choreo --broker nats -o nats/
///   choreoc export permissions shop.choreo --broker redis --prefix t1. -o users.acl
///   choreoc export jsonschema shop.choreo --out schemas/
///   choreoc export asyncapi shop.choreo --server prod=nats://broker:4222 -o asyncapi.yaml
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, clap::Subcommand)]
enum What {
    Permissions(PermissionsArgs),
    Jsonschema(JsonSchemaArgs),
    Asyncapi(AsyncapiArgs),
}

/// JSON Schema (draft 2020-12) of every command and event
///
/// Writes, into DIR (made if missing), `<Message>.schema.json` per command
/// and event, each describing the whole message as choreo-runtime
/// publishes it (the CloudEvents envelope in structured mode, its `data`
/// the payload), and `defs.schema.json`, what they refer to: the envelope
/// they share and the records and enums. A message as it lies on the
/// broker validates against its file.
///
/// Exit status: 0 when written, 1 when the spec has errors, 2 when the
/// command could not run.
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
struct JsonSchemaArgs {
    /// The `.choreo` file; `-` reads it from standard input.
    #[arg(value_name = "SPEC")]
    spec: PathBuf,
    /// The directory to write the schemas into (made if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

/// An AsyncAPI 3.0 document: channels, operations and messages
///
/// A channel per event and command, addressed as the services name its
/// topic on the broker under the prefix (a NATS subject, a Redis stream);
/// per participant, an operation that receives each trigger of each
/// reaction and one that sends each of its events; the ingress sends the
/// commands. Each message is the CloudEvent (structured mode) that the
/// runtime publishes, its `data` the message's type, with the transport's
/// headers (`Nats-Msg-Id`); the envelope is one schema they all refer to. Joins, compensations, retries, timeouts,
/// bounds, terminal events and deadlines are `x-choreo-*` extensions;
/// doc comments are descriptions.
///
/// A server's URL keeps only its host, port and Redis database in the
/// document: credentials and settings are left out.
///
/// Without -o the document goes to standard output.
///
/// Exit status: 0 when written, 1 when the spec has errors, 2 when the
/// command could not run (a malformed --server, an unwritable file).
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
struct AsyncapiArgs {
    /// The `.choreo` file; `-` reads it from standard input.
    #[arg(value_name = "SPEC")]
    spec: PathBuf,
    /// The file to write.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
    /// The document's format.
    #[arg(long, value_enum, default_value = "yaml")]
    format: FormatArg,
    /// The broker the deployment runs on.
    #[arg(long, value_enum, default_value = "nats")]
    broker: BrokerArg,
    /// The deployment's prefix (the services' `--prefix`): put in front of
    /// every topic.
    #[arg(long, default_value = "", value_name = "P")]
    prefix: String,
    /// A server, as `prod=nats://broker:4222`; repeat for more.
    #[arg(long = "server", value_name = "NAME=URL")]
    servers: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FormatArg {
    /// YAML.
    Yaml,
    /// JSON.
    Json,
}

/// Least privilege: per participant, a broker user allowed what it needs
///
/// Each participant may publish only the events its reactions emit (and the
/// dead letters and progress notices), read only its triggers, and keep
/// only its own keys in the stores. The `ingress` user publishes the
/// commands and follows every topic (the instance tracker); `admin` may do
/// anything.
///
/// NATS: writes `users.conf`, an `authorization { users = [...] }` block
/// for nats-server (each password is `$CHOREO_PASSWORD_<USER>`, which
/// nats-server reads from its environment), and `setup.json`, the streams
/// and Key-Value buckets the admin makes before the services start (they
/// may not make them): start the deployment once under the admin user.
///
/// Redis: writes `users.acl`, a Redis 7 ACL file; a user's password is the
/// SHA-256 of CHOREO_PASSWORD_<USER> when that variable is set, otherwise
/// none (set one with `ACL SETUSER`).
///
/// Without -o the main file goes to standard output.
///
/// Exit status: 0 when written, 1 when the spec has errors, 2 when the
/// command could not run.
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
struct PermissionsArgs {
    /// The `.choreo` file; `-` reads it from standard input.
    #[arg(value_name = "SPEC")]
    spec: PathBuf,
    /// The broker the deployment runs on.
    #[arg(long, value_enum)]
    broker: BrokerArg,
    /// The deployment's prefix (the services' `--prefix`): put in front of
    /// every topic and store name.
    #[arg(long, default_value = "", value_name = "P")]
    prefix: String,
    /// A directory to write the files into (made if missing), or, for a
    /// path that is not a directory, the main file (NATS writes the setup
    /// beside it, as `<name>.setup.json`).
    #[arg(long, short = 'o', value_name = "FILE/DIR")]
    output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum BrokerArg {
    /// NATS JetStream.
    Nats,
    /// Redis Streams.
    Redis,
}

pub fn run(args: Args, color: Color) -> u8 {
    match args.what {
        What::Permissions(a) => run_permissions(a, color),
        What::Jsonschema(a) => run_jsonschema(a, color),
        What::Asyncapi(a) => run_asyncapi(a, color),
    }
}

fn run_jsonschema(args: JsonSchemaArgs, color: Color) -> u8 {
    let spec = match input::checked_spec(&args.spec, color, "export") {
        Ok(accepted) => accepted.spec,
        Err(code) => return code,
    };
    if let Err(err) = std::fs::create_dir_all(&args.out) {
        input::fail(&format!("cannot make `{}`: {err}", args.out.display()));
        return status::FAILURE;
    }
    for (name, text) in JsonSchemas::of(&spec).files() {
        let path = args.out.join(name);
        if let Err(err) = std::fs::write(&path, text.as_bytes()) {
            input::fail(&format!("cannot write `{}`: {err}", path.display()));
            return status::FAILURE;
        }
        say!("wrote {}", path.display());
    }
    status::OK
}

fn run_asyncapi(args: AsyncapiArgs, color: Color) -> u8 {
    let broker = match args.broker {
        BrokerArg::Nats => Broker::Nats,
        BrokerArg::Redis => Broker::Redis,
    };
    if broker == Broker::Nats {
        if let Err(message) = permissions::nats::check_prefix(&args.prefix) {
            input::fail(&message);
            return status::FAILURE;
        }
    }
    let servers = match servers::parse_all(&args.servers, broker) {
        Ok(s) => s,
        Err(e) => {
            input::fail(&e.to_string());
            return status::FAILURE;
        }
    };
    let spec = match input::checked_spec(&args.spec, color, "export") {
        Ok(accepted) => accepted.spec,
        Err(code) => return code,
    };
    let options = Options {
        broker,
        prefix: args.prefix,
        servers,
    };
    let format = match args.format {
        FormatArg::Yaml => Format::Yaml,
        FormatArg::Json => Format::Json,
    };
    let doc = asyncapi::document(&spec, &options);
    let Some(path) = &args.output else {
        return match asyncapi::render(&doc, format) {
            Ok(text) => crate::write_stdout(text.as_bytes()),
            Err(e) => {
                input::fail(&e.to_string());
                status::FAILURE
            }
        };
    };
    // Straight into a file (the text of a large spec is tens of MB), one
    // beside the target that replaces it only once whole: a failure
    // half-way leaves the old document as it was.
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // Made as `File::create` makes a file (0o666 less the umask); a
    // missing directory said as such, not by the temporary file's name.
    let temporary = std::fs::metadata(dir).and_then(|_| {
        tempfile::Builder::new()
            .permissions(std::fs::Permissions::from_mode(0o666))
            .tempfile_in(dir)
    });
    let written = temporary.and_then(|file| {
        let mut out = std::io::BufWriter::new(file);
        asyncapi::write(&doc, format, &mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.persist(path).map(drop).map_err(|e| e.error)
    });
    if let Err(err) = written {
        input::fail(&format!("cannot write `{}`: {err}", path.display()));
        return status::FAILURE;
    }
    say!("wrote {}", path.display());
    status::OK
}

fn run_permissions(args: PermissionsArgs, color: Color) -> u8 {
    if args.broker == BrokerArg::Nats {
        if let Err(message) = permissions::nats::check_prefix(&args.prefix) {
            input::fail(&message);
            return status::FAILURE;
        }
    }
    let spec = match input::checked_spec(&args.spec, color, "export") {
        Ok(accepted) => accepted.spec,
        Err(code) => return code,
    };
    let usage = Usage::of(
        &spec,
        &Deployment {
            prefix: args.prefix.clone(),
        },
    );
    let files: Vec<(&str, String)> = match args.broker {
        BrokerArg::Nats => {
            let perms = NatsPermissions::of(&usage);
            vec![
                ("users.conf", perms.render_config(&usage)),
                ("setup.json", perms.render_setup()),
            ]
        }
        BrokerArg::Redis => {
            let acl = RedisAcl::with_default_keys(&usage);
            let text = acl.render(|user| {
                std::env::var(permissions::password_variable(user))
                    .ok()
                    .filter(|p| !p.is_empty())
                    .map(|p| password_hash(&p))
            });
            vec![("users.acl", text)]
        }
    };
    let Some(output) = &args.output else {
        let (_, main) = &files[0];
        return crate::write_stdout(main.as_bytes());
    };
    let targets = match targets(output, &files) {
        Ok(t) => t,
        Err(message) => {
            input::fail(&message);
            return status::FAILURE;
        }
    };
    for (path, (_, text)) in targets.iter().zip(&files) {
        if let Err(err) = std::fs::write(path, text.as_bytes()) {
            input::fail(&format!("cannot write `{}`: {err}", path.display()));
            return status::FAILURE;
        }
        say!("wrote {}", path.display());
    }
    status::OK
}

/// Where each file goes: into `output` when it is a directory (or ends
/// with `/`), else the first file at `output` and the others beside it.
fn targets(output: &Path, files: &[(&str, String)]) -> Result<Vec<PathBuf>, String> {
    let as_dir = output.is_dir() || output.as_os_str().to_string_lossy().ends_with('/');
    if as_dir {
        std::fs::create_dir_all(output)
            .map_err(|e| format!("cannot make `{}`: {e}", output.display()))?;
        return Ok(files.iter().map(|(name, _)| output.join(name)).collect());
    }
    let stem = output
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(files
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            if i == 0 {
                output.to_path_buf()
            } else {
                output.with_file_name(format!("{stem}.{name}"))
            }
        })
        .collect())
}
