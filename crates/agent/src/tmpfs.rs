//! The node's secrets tmpfs: a tmpfs of the daemon's own, mounted on its private secrets
//! directory (see [`crate::files::secrets_root`]) when the first secret file is written and
//! unmounted when the last task with secrets is gone. It is separate from `/dev/shm` (no other
//! process shares its space or sees its files), size-limited, `nosuid,nodev,noexec`, mode
//! 0700. Docker mounts one per container for the same reason.
//!
//! Mounting needs root (`CAP_SYS_ADMIN`); a daemon without it keeps the files in the private
//! directory on `/dev/shm`, which is a tmpfs too, and says so once.

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Room for the secrets of many tasks (a secret is at most 500 KB).
pub const SIZE: &str = "64m";

/// Whether `dir` is a mount point: it lives on another device than its parent.
pub fn is_mount_point(dir: &Path) -> io::Result<bool> {
    let parent = dir.parent().unwrap_or(dir);
    Ok(std::fs::symlink_metadata(dir)?.dev() != std::fs::symlink_metadata(parent)?.dev())
}

/// Mounts the daemon's tmpfs on `dir` (an existing private directory) unless something is
/// mounted there already. Returns whether `dir` is a mount point afterwards.
pub fn ensure_mounted(dir: &Path) -> io::Result<bool> {
    if is_mount_point(dir)? {
        return Ok(true);
    }
    if !nix::unistd::geteuid().is_root() {
        static SAID: AtomicBool = AtomicBool::new(false);
        if !SAID.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                dir = %dir.display(),
                "not root: task secrets are kept in a private directory on /dev/shm, not on a tmpfs of their own"
            );
        }
        return Ok(false);
    }
    let options = format!("mode=0700,size={SIZE}");
    mount(
        Some("shoal-secrets"),
        dir,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(options.as_str()),
    )
    .map_err(|e| io::Error::other(format!("cannot mount a tmpfs on {}: {e}", dir.display())))?;
    Ok(true)
}

/// Unmounts the tmpfs on `dir`, if one is there. Lazily (`MNT_DETACH`): a container that
/// still holds one of its files keeps that file until it goes.
pub fn unmount(dir: &Path) -> io::Result<()> {
    match is_mount_point(dir) {
        Ok(true) => umount2(dir, MntFlags::MNT_DETACH)
            .map_err(|e| io::Error::other(format!("cannot unmount {}: {e}", dir.display()))),
        Ok(false) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}
