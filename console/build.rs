//! Puts uPlot and xterm.js (from npm, pinned in `package-lock.json`) into `OUT_DIR`, where
//! `src/assets.rs` embeds it: third-party code is never committed, and the
//! collector binary still needs no files at run time.
//!
//! A fresh clone has no `node_modules`; the build then runs `npm ci` in this
//! directory itself when npm is installed, and otherwise stops with a message
//! saying what to run.
use std::path::{Path, PathBuf};
use std::process::Command;

/// (file in the npm package, name in `OUT_DIR`).
const FILES: [(&str, &str); 5] = [
    ("node_modules/uplot/dist/uPlot.iife.min.js", "uplot.js"),
    ("node_modules/uplot/dist/uPlot.min.css", "uplot.css"),
    ("node_modules/@xterm/xterm/lib/xterm.js", "xterm.js"),
    ("node_modules/@xterm/xterm/css/xterm.css", "xterm.css"),
    ("node_modules/@xterm/addon-fit/lib/addon-fit.js", "xterm-fit.js"),
];

fn main() {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo::rerun-if-changed=package-lock.json");
    for (from, _) in FILES {
        println!("cargo::rerun-if-changed={from}");
    }
    if !FILES.iter().all(|(from, _)| dir.join(from).is_file()) {
        install(&dir);
    }
    for (from, to) in FILES {
        let src = dir.join(from);
        if let Err(e) = std::fs::copy(&src, out.join(to)) {
            fail(&format!("cannot copy {}: {e}", src.display()));
        }
    }
}

/// Runs `npm ci` in `dir`, or fails the build saying how to.
fn install(dir: &Path) {
    println!("cargo::warning=console/node_modules is missing uPlot or xterm.js; running `npm ci` in console/");
    match Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .status()
    {
        Ok(status) if status.success() => {}
        Ok(status) => fail(&format!("`npm ci` in console/ failed ({status})")),
        Err(e) => fail(&format!("npm could not be started ({e})")),
    }
}

fn fail(why: &str) -> ! {
    eprintln!(
        "error: the console embeds uPlot and xterm.js from console/node_modules, and {why}.\n\
         Install Node.js 20+ with npm, then run `npm ci --prefix console` in the repository and build again."
    );
    std::process::exit(1);
}
