//! `choreoc export permissions` as a user runs it: where the files go,
//! passwords hashed and never written in clear, bad arguments refused.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

fn choreoc(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_choreoc"));
    c.args(args).current_dir(root()).env("NO_COLOR", "1");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("choreoc runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const ECOMMERCE: &str = "examples/ecommerce/ecommerce.choreo";

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("cli-export")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch");
    dir
}

#[test]
fn nats_writes_the_users_and_the_setup_into_a_directory() {
    let dir = scratch("nats");
    let out = choreoc(
        &[
            "export",
            "permissions",
            ECOMMERCE,
            "--broker",
            "nats",
            "--prefix",
            "shop.",
            "-o",
            dir.to_str().expect("utf-8"),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let users = std::fs::read_to_string(dir.join("users.conf")).expect("users.conf");
    assert!(
        users.contains("password: $CHOREO_PASSWORD_PAYMENT"),
        "{users}"
    );
    assert!(
        users.contains("\"shop.Ecommerce.v1.PaymentApproved\""),
        "{users}"
    );
    let setup: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("setup.json")).expect("setup"))
            .expect("json");
    assert_eq!(setup["streams"][0]["name"], "shop");
    let inbox = &choreo_compiler::export::permissions::names::nats_buckets("shop.")[0];
    assert!(inbox.starts_with("shop_choreo_inbox_"), "{inbox}");
    assert_eq!(setup["buckets"][0], inbox.as_str());
}

#[test]
fn redis_hashes_the_passwords_it_is_given_and_writes_none_in_clear() {
    let dir = scratch("redis");
    let file = dir.join("users.acl");
    let out = choreoc(
        &[
            "export",
            "permissions",
            ECOMMERCE,
            "--broker",
            "redis",
            "-o",
            file.to_str().expect("utf-8"),
        ],
        &[("CHOREO_PASSWORD_PAYMENT", "s3cret")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let acl = std::fs::read_to_string(&file).expect("acl");
    assert!(!acl.contains("s3cret"));
    let payment = acl
        .lines()
        .find(|l| l.starts_with("user Payment on "))
        .expect("Payment's line");
    // sha256("s3cret")
    assert!(
        payment.contains("#1ec1c26b50d5d3c58d9583181af8076655fe00756bf7285940ba3670f99fcba0"),
        "{payment}"
    );
    let orders = acl
        .lines()
        .find(|l| l.starts_with("user Orders on "))
        .expect("Orders' line");
    assert!(orders.contains(" resetpass "), "{orders}");
}

#[test]
fn a_prefix_that_cannot_start_a_subject_and_an_unknown_broker_are_refused() {
    let out = choreoc(
        &[
            "export",
            "permissions",
            ECOMMERCE,
            "--broker",
            "nats",
            "--prefix",
            "a b.",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("`a b.`"),
        "{}",
        text(&out.stderr)
    );
    let out = choreoc(
        &["export", "permissions", ECOMMERCE, "--broker", "kafka"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

#[test]
fn asyncapi_goes_to_standard_output_as_yaml_by_default() {
    let out = choreoc(&["export", "asyncapi", ECOMMERCE], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc = text(&out.stdout);
    assert!(doc.starts_with("asyncapi: 3.0.0\n"), "{doc}");
    assert!(doc.contains("address: Ecommerce.v1.OrderPlaced\n"), "{doc}");
    assert!(doc.contains("$ref: '#/components/schemas/choreo.NatsHeaders'"));
    assert!(doc.ends_with('\n'));
}

#[test]
fn asyncapi_writes_json_for_redis_with_its_servers_to_a_file() {
    let dir = scratch("asyncapi");
    let file = dir.join("shop.json");
    let out = choreoc(
        &[
            "export",
            "asyncapi",
            ECOMMERCE,
            "--format",
            "json",
            "--broker",
            "redis",
            "--prefix",
            "t1.",
            "--server",
            "prod=rediss://shop:hunter2@cache:6380/3?dedup=2m",
            "--server",
            "dev=redis://localhost:6379",
            "-o",
            file.to_str().expect("utf-8"),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    assert!(text(&out.stderr).contains("wrote"), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(&file).expect("the document");
    assert!(
        !written.contains("hunter2"),
        "a password reached the document"
    );
    let doc: serde_json::Value = serde_json::from_str(&written).expect("JSON");
    assert_eq!(
        doc["channels"]["OrderPlaced"]["address"],
        "choreo:t1.Ecommerce.v1.OrderPlaced"
    );
    let prod = &doc["servers"]["prod"];
    assert_eq!(
        (&prod["host"], &prod["protocol"], &prod["pathname"]),
        (
            &serde_json::json!("cache:6380"),
            &serde_json::json!("redis"),
            &serde_json::json!("/3")
        )
    );
    assert_eq!(prod["x-choreo-tls"], true);
    assert_eq!(doc["servers"]["dev"]["host"], "localhost:6379");
}

#[test]
fn asyncapi_refuses_a_malformed_server_without_showing_its_url() {
    for server in [
        "prod",
        "prod=broker:4222",
        "prod=redis://user:hunter2@broker:6379",
        "bad name=nats://user:hunter2@broker:4222",
    ] {
        let out = choreoc(&["export", "asyncapi", ECOMMERCE, "--server", server], &[]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{server}: {stderr}");
        assert!(out.stdout.is_empty());
        assert!(stderr.contains("error: "), "{stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
    let out = choreoc(
        &[
            "export",
            "asyncapi",
            ECOMMERCE,
            "--server",
            "a=nats://x:4222",
            "--server",
            "a=nats://y:4222",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("server `a` is given twice"));
}

#[test]
fn asyncapi_of_a_spec_with_errors_exits_1_and_writes_nothing() {
    let dir = scratch("asyncapi-errors");
    let file = dir.join("out.yaml");
    let out = choreoc(
        &[
            "export",
            "asyncapi",
            "tests/cases/invalid/E0201_unhandled.choreo",
            "-o",
            file.to_str().expect("utf-8"),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("E0201"));
    assert!(!file.exists());
}

#[test]
fn asyncapi_replaces_a_file_whole_and_says_plainly_where_it_cannot_write() {
    let dir = scratch("asyncapi-replace");
    let file = dir.join("shop.yaml");
    std::fs::write(&file, "an older document\n").expect("write");
    let path = file.to_str().expect("utf-8");
    let out = choreoc(&["export", "asyncapi", ECOMMERCE, "-o", path], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(&file).expect("read");
    assert!(written.starts_with("asyncapi: 3.0.0"), "{written}");
    // Only the document is left beside it: the temporary file it was
    // written into was renamed over the old one.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["shop.yaml"]);
    let missing = dir.join("no-such-dir").join("shop.yaml");
    let out = choreoc(
        &[
            "export",
            "asyncapi",
            ECOMMERCE,
            "-o",
            missing.to_str().expect("utf-8"),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("cannot write") && err.contains("No such file or directory"),
        "{err}"
    );
    assert!(
        !err.contains(".tmp"),
        "the temporary file's name shows: {err}"
    );
}

/// `choreoc export jsonschema SPEC --out DIR`.
fn jsonschema(spec: &str, dir: &Path) -> Output {
    choreoc(
        &[
            "export",
            "jsonschema",
            spec,
            "--out",
            dir.to_str().expect("utf-8"),
        ],
        &[],
    )
}

#[test]
fn jsonschema_writes_a_schema_per_message_and_the_shared_definitions() {
    let dir = scratch("jsonschema");
    let out_dir = dir.join("schemas");
    let out = jsonschema(ECOMMERCE, &out_dir);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut names: Vec<String> = std::fs::read_dir(&out_dir)
        .expect("the directory is made")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    // One file per command and event of the spec, and the definitions.
    let spec = std::fs::read_to_string(root().join(ECOMMERCE)).expect("spec");
    let report = choreo_compiler::check(&choreo_compiler::SourceFile::new(ECOMMERCE, spec));
    let messages = report.into_checked().expect("checks").0.messages.len();
    assert_eq!(names.len(), messages + 1, "{names:?}");
    let said: Vec<String> = names
        .iter()
        .map(|n| format!("wrote {}", out_dir.join(n).display()))
        .collect();
    // Progress goes to standard error, as `export permissions` has it.
    assert_eq!(text(&out.stderr), said.join("\n") + "\n");
    for name in &names {
        let written = std::fs::read_to_string(out_dir.join(name)).expect("a schema");
        let value: serde_json::Value = serde_json::from_str(&written).expect("JSON");
        assert_eq!(
            value["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        insta::assert_snapshot!(format!("jsonschema-ecommerce-{name}"), written);
    }
    // The same spec gives the same bytes.
    let again = dir.join("again");
    let out = jsonschema(ECOMMERCE, &again);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for name in &names {
        assert_eq!(
            std::fs::read(out_dir.join(name)).expect("first"),
            std::fs::read(again.join(name)).expect("second"),
            "{name}"
        );
    }
}

#[test]
fn jsonschema_of_a_spec_with_errors_writes_nothing_and_a_bad_directory_is_refused() {
    let dir = scratch("jsonschema-errors");
    let out_dir = dir.join("schemas");
    let out = jsonschema("tests/cases/invalid/E0001_fat_arrow.choreo", &out_dir);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("E0001"), "{}", text(&out.stderr));
    assert!(!out_dir.exists());

    let file = dir.join("a-file");
    std::fs::write(&file, "").expect("a file");
    let out = jsonschema(ECOMMERCE, &file);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot make `"),
        "{}",
        text(&out.stderr)
    );

    let out = choreoc(
        &["export", "jsonschema", "no/such.choreo", "--out", "x"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let out = choreoc(&["export", "jsonschema", ECOMMERCE], &[]);
    assert_eq!(out.status.code(), Some(2), "--out is required");
}
