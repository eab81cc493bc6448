//! The stylesheet and scripts, and uPlot and xterm.js (copied from npm by `build.rs`),
//! embedded in the binary so the console needs no files at run time.
use std::sync::LazyLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

const CSS: &str = include_str!("../assets/console.css");
const JS: &str = include_str!("../assets/console.js");
const UPLOT_JS: &str = include_str!(concat!(env!("OUT_DIR"), "/uplot.js"));
const UPLOT_CSS: &str = include_str!(concat!(env!("OUT_DIR"), "/uplot.css"));
const XTERM_JS: &str = include_str!(concat!(env!("OUT_DIR"), "/xterm.js"));
const XTERM_CSS: &str = include_str!(concat!(env!("OUT_DIR"), "/xterm.css"));
const XTERM_FIT_JS: &str = include_str!(concat!(env!("OUT_DIR"), "/xterm-fit.js"));
const TERMINAL_JS: &str = include_str!("../assets/terminal.js");
const REPLAY_JS: &str = include_str!("../assets/replay.js");

/// Pages link `/assets/x?v=<version>`, so the assets can be cached for long and
/// still change the moment a new binary serves different ones.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    let digest = Sha256::new()
        .chain_update(CSS)
        .chain_update(JS)
        .chain_update(UPLOT_JS)
        .chain_update(UPLOT_CSS)
        .chain_update(XTERM_JS)
        .chain_update(XTERM_CSS)
        .chain_update(XTERM_FIT_JS)
        .chain_update(TERMINAL_JS)
        .chain_update(REPLAY_JS)
        .finalize();
    hex::encode(&digest[..8])
});

pub(crate) fn version() -> &'static str {
    &VERSION
}

/// Marks a response that may be cached (these versioned assets); everything
/// else carries user data and must not be.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cacheable;

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut res = (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
        .into_response();
    res.extensions_mut().insert(Cacheable);
    res
}

pub(crate) async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

pub(crate) async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

pub(crate) async fn uplot_css() -> Response {
    asset("text/css; charset=utf-8", UPLOT_CSS)
}

pub(crate) async fn uplot_js() -> Response {
    asset("text/javascript; charset=utf-8", UPLOT_JS)
}

pub(crate) async fn xterm_js() -> Response {
    asset("text/javascript; charset=utf-8", XTERM_JS)
}

pub(crate) async fn xterm_css() -> Response {
    asset("text/css; charset=utf-8", XTERM_CSS)
}

pub(crate) async fn xterm_fit_js() -> Response {
    asset("text/javascript; charset=utf-8", XTERM_FIT_JS)
}

pub(crate) async fn terminal_js() -> Response {
    asset("text/javascript; charset=utf-8", TERMINAL_JS)
}

pub(crate) async fn replay_js() -> Response {
    asset("text/javascript; charset=utf-8", REPLAY_JS)
}
