//! Records the git commit the crate is built from, so that every pricing
//! result names the exact code that produced it (with its seed, scenario hash
//! and version). Outside a git checkout, e.g. a build from a source archive,
//! the commit is "unknown".

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn main() {
    let commit = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=PUHUI_GIT_COMMIT={commit}");
    // Rebuild when HEAD moves: a checkout changes HEAD, a commit changes the
    // branch's ref (a loose file, or packed-refs once packed).
    let mut watched = vec![
        (git(&["rev-parse", "--git-path", "HEAD"]), false),
        (git(&["rev-parse", "--git-path", "packed-refs"]), false),
    ];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push((git(&["rev-parse", "--git-path", &branch]), true));
    }
    println!("cargo:rerun-if-changed=build.rs");
    for (path, folder_if_missing) in watched {
        let Some(path) = path else { continue };
        let path = std::path::Path::new(&path);
        let absolute = if path.is_absolute() {
            path.to_path_buf()
        } else {
            // --git-path answers relative to the current directory, which is
            // the package's directory while a build script runs.
            std::env::current_dir()
                .map(|d| d.join(path))
                .unwrap_or_else(|_| path.to_path_buf())
        };
        // Cargo reruns a build script on every build while a watched path is
        // missing, so only existing files are watched, and a missing branch
        // ref through its folder: a fresh clone has a loose branch ref and no
        // packed-refs, a packed repository has packed-refs and gains a loose
        // ref at its next commit.
        let existing = if absolute.exists() {
            Some(absolute.as_path())
        } else {
            absolute
                .parent()
                .filter(|folder| folder_if_missing && folder.exists())
        };
        if let Some(path) = existing {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}
