//! House rules no compiler checks, in the style of rust-analyzer's tidy: each failure says what
//! to change.

use std::fs;
use std::path::{Path, PathBuf};

use crate::DynError;

/// Crates that must not contain `unsafe` at all.
const SAFE_CRATES: &[&str] = &[
    "crates/codec-http",
    "crates/codec-chain",
    "crates/httpd",
    "xtask",
];

/// Crates whose `unsafe` must live in `src/sys.rs` (the syscall layer).
const SYS_CRATES: &[&str] = &["crates/uvlite", "crates/cluster"];

/// Every library crate: its lib.rs must include its README, so the README example is tested.
const LIB_CRATES: &[&str] = &[
    "crates/uvlite",
    "crates/codec-http",
    "crates/codec-chain",
    "crates/cluster",
];

pub(crate) fn run(root: &Path) -> Result<(), DynError> {
    let mut problems = Vec::new();
    let exists = |k: &&&str| root.join(k).join("Cargo.toml").exists();
    for krate in SAFE_CRATES.iter().filter(exists) {
        let entry = entry_file(root, krate);
        let text = fs::read_to_string(&entry)?;
        if !text.contains("#![forbid(unsafe_code)]") {
            problems.push(format!(
                "{}: add `#![forbid(unsafe_code)]`: this crate has no reason for unsafe",
                entry.display()
            ));
        }
    }
    for krate in SYS_CRATES.iter().filter(exists) {
        for file in rust_files(&root.join(krate).join("src")) {
            let text = fs::read_to_string(&file)?;
            let is_sys = file.file_name().is_some_and(|n| n == "sys.rs");
            for (i, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                let opens_unsafe = code.contains("unsafe {") || code.contains("unsafe fn");
                if opens_unsafe && !is_sys {
                    problems.push(format!(
                        "{}:{}: move this unsafe code into src/sys.rs, the crate's syscall layer",
                        file.display(),
                        i + 1
                    ));
                }
                if code.contains("unsafe {") && !has_safety_comment(&text, i) {
                    problems.push(format!(
                        "{}:{}: explain this unsafe block with a `// SAFETY:` comment above it",
                        file.display(),
                        i + 1
                    ));
                }
            }
        }
        let lib = fs::read_to_string(root.join(krate).join("src/lib.rs"))?;
        for lint in [
            "unsafe_op_in_unsafe_fn",
            "clippy::undocumented_unsafe_blocks",
            "clippy::missing_safety_doc",
        ] {
            if !lib.contains(lint) {
                problems.push(format!(
                    "{krate}/src/lib.rs: deny `{lint}` at the crate root"
                ));
            }
        }
    }
    for krate in LIB_CRATES.iter().filter(exists) {
        let lib = fs::read_to_string(root.join(krate).join("src/lib.rs"))?;
        if !lib.contains("include_str!(\"../README.md\")") {
            problems.push(format!(
                "{krate}/src/lib.rs: add `#![doc = include_str!(\"../README.md\")]` so the README example is compiled and run"
            ));
        }
        if !root.join(krate).join("README.md").exists() {
            problems.push(format!(
                "{krate}: write a README.md with a runnable example"
            ));
        }
    }
    if problems.is_empty() {
        eprintln!("xtask: tidy ok");
        Ok(())
    } else {
        for p in &problems {
            eprintln!("tidy: {p}");
        }
        Err(format!("tidy found {} problem(s)", problems.len()).into())
    }
}

fn entry_file(root: &Path, krate: &str) -> PathBuf {
    let lib = root.join(krate).join("src/lib.rs");
    if lib.exists() {
        lib
    } else {
        root.join(krate).join("src/main.rs")
    }
}

/// Whether one of the lines just above line `i` (skipping attributes and other comments)
/// is a `// SAFETY:` comment.
fn has_safety_comment(text: &str, i: usize) -> bool {
    let lines: Vec<&str> = text.lines().collect();
    if lines[i].contains("// SAFETY:") {
        return true;
    }
    let mut j = i;
    while j > 0 {
        j -= 1;
        let l = lines[j].trim();
        if l.starts_with("// SAFETY:") {
            return true;
        }
        if l.starts_with("//") || l.starts_with("#[") {
            continue;
        }
        // A statement that opens the unsafe block on its next line, e.g. `let x =`.
        if j + 1 == i && !l.ends_with(';') && !l.ends_with('{') && !l.ends_with('}') {
            continue;
        }
        return false;
    }
    false
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}
