//! An OCI image of vouch, built with umoci into an image layout: one layer holding the
//! binary at `/usr/local/bin/vouch`, the shared libraries and the loader `ldd` names for it,
//! and the system's CA bundle (for registries over HTTPS), with the binary as entrypoint.
//!
//! `cargo xtask dist` builds it from the release binary; tests/dist.rs includes this file
//! and builds it from the binary under test, so both go through the same code.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the binary sits in the image; the image's entrypoint.
pub const ENTRYPOINT: &str = "/usr/local/bin/vouch";
/// The CA bundle Debian's ca-certificates writes, which rustls-native-certs reads.
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Builds the image `LAYOUT:TAG` (a new OCI image layout at `layout`, which must not exist)
/// from `binary`, unpacking into `work` (a scratch directory, removed afterwards).
pub fn build_image(binary: &Path, layout: &Path, tag: &str, work: &Path) -> Result<(), String> {
    let image = format!("{}:{tag}", layout.display());
    let bundle = work.join("bundle");
    let bundle_arg = bundle.display().to_string();
    let layout_arg = layout.display().to_string();
    umoci(&["init", "--layout", &layout_arg])?;
    umoci(&["new", "--image", &image])?;
    let mut unpack = vec!["unpack"];
    if !is_root() {
        unpack.push("--rootless");
    }
    unpack.extend(["--image", &image, &bundle_arg]);
    umoci(&unpack)?;

    let rootfs = bundle.join("rootfs");
    install(binary, &rootfs, ENTRYPOINT)?;
    fs::set_permissions(
        under(&rootfs, ENTRYPOINT),
        fs::Permissions::from_mode(0o755),
    )
    .map_err(|e| format!("cannot make {ENTRYPOINT} executable: {e}"))?;
    for library in needed_libraries(binary)? {
        install(&library, &rootfs, &library.display().to_string())?;
    }
    if Path::new(CA_BUNDLE).is_file() {
        install(Path::new(CA_BUNDLE), &rootfs, CA_BUNDLE)?;
    }

    umoci(&[
        "repack",
        "--history.created_by",
        "cargo xtask dist",
        "--image",
        &image,
        &bundle_arg,
    ])?;
    umoci(&[
        "config",
        "--image",
        &image,
        "--config.entrypoint",
        ENTRYPOINT,
        "--config.workingdir",
        "/",
        "--config.env",
        "PATH=/usr/local/bin",
        "--history.created_by",
        "cargo xtask dist",
    ])?;
    umoci(&["gc", "--layout", &layout_arg])?;
    fs::remove_dir_all(&bundle).map_err(|e| format!("cannot remove {}: {e}", bundle.display()))
}

/// The files the dynamic loader maps for `binary`, as `ldd` resolves them (the loader
/// included); empty for a static binary. A library `ldd` cannot find is an error.
pub fn needed_libraries(binary: &Path) -> Result<Vec<PathBuf>, String> {
    let output = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|e| format!("cannot run ldd: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        // glibc's ldd exits 1 for a static binary ("not a dynamic executable").
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("not a dynamic executable") || text.contains("statically linked") {
            return Ok(Vec::new());
        }
        return Err(format!("ldd {} failed: {stderr}", binary.display()));
    }
    let mut libraries = Vec::new();
    for line in text.lines() {
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)`, `/lib64/ld-linux-x86-64.so.2
        // (0x…)`, or the kernel's `linux-vdso.so.1 (0x…)`, which is no file.
        let resolved = line.split_once("=>").map_or(line, |(_, path)| path).trim();
        if resolved.starts_with("not found") {
            return Err(format!("ldd {}: {}", binary.display(), line.trim()));
        }
        let path = resolved.split_whitespace().next().unwrap_or("");
        if path.starts_with('/') {
            libraries.push(PathBuf::from(path));
        }
    }
    Ok(libraries)
}

/// Copies `source` (its content, following links) to `target` inside `rootfs`.
fn install(source: &Path, rootfs: &Path, target: &str) -> Result<(), String> {
    let destination = under(rootfs, target);
    let parent = destination.parent().expect("an absolute path has a parent");
    fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    fs::copy(source, &destination).map_err(|e| {
        format!(
            "cannot copy {} to {}: {e}",
            source.display(),
            destination.display()
        )
    })?;
    Ok(())
}

/// The absolute image path `target` under `rootfs`.
fn under(rootfs: &Path, target: &str) -> PathBuf {
    rootfs.join(target.trim_start_matches('/'))
}

fn umoci(args: &[&str]) -> Result<(), String> {
    let output = Command::new("umoci")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run umoci: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "umoci {} failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
