//! The web page and its assets, compiled in.

use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use choreo_compiler::diagram::escape::xml;
use choreo_compiler::diagram::{render as diagram, Format, View};
use choreo_compiler::CheckedSpec;

use super::Site;

const INDEX: &str = include_str!("../../assets/index.html");
const SCRIPT: &str = include_str!("../../assets/app.js");
const STYLE: &str = include_str!("../../assets/style.css");

/// The page of `spec`: its name, and its flow diagram as `choreoc diagram
/// --format svg` draws it, inline so that the script can mark it up.
pub(super) fn render(spec: &CheckedSpec) -> String {
    let svg = diagram(spec, Format::Svg, &View::Flow).unwrap_or_else(|e| {
        // The flow view exists in SVG for every checked spec; should that
        // ever change, the page still works, without the picture.
        format!("<p class=\"note\">no diagram: {}</p>", xml(&e.to_string()))
    });
    INDEX
        .replace("{{title}}", &xml(&spec.name.text))
        .replace("{{diagram}}", &svg)
}

pub(super) async fn index(State(site): State<Site>) -> Html<String> {
    Html(site.inner.page.clone())
}

pub(super) async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}

pub(super) async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}
