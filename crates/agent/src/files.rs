//! The files of a task's configs and secrets on this node: configs under
//! `state_dir/tasks/<task>/configs/<config>`, secrets only under `secrets_dir/<task>/<secret>`
//! (a tmpfs, so secret data never reaches a disk), each with the owner and mode its reference
//! asks for, bind-mounted read-only into the container. Secret data is never logged.
//!
//! The secrets directory is the daemon's own: a randomly named directory on the tmpfs, mode
//! 0700 (see [`secrets_root`]), with a tmpfs of the daemon's own mounted on it while any task
//! has secrets (see [`crate::tmpfs`]). Nothing here follows a symbolic link: directories are made
//! with `mkdir` (which never follows one) and checked with `lstat`, files are created with
//! `O_CREAT|O_EXCL|O_NOFOLLOW` and their owner and mode set through the open file.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use shoal_types::swarm::ContainerSpec;

use crate::container::FileMount;
use crate::FileData;

/// Files are readable by everyone in the container unless the reference says otherwise.
const DEFAULT_MODE: u32 = 0o444;

/// Why a task's files could not be laid out.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// The assignment lacks the data of a referenced config or secret.
    #[error("{kind} `{name}` ({id}) is referenced by the task but its data was not assigned")]
    Missing {
        kind: &'static str,
        name: String,
        id: String,
    },
    #[error("{kind} `{name}`: invalid {what} `{value}`: expected a number")]
    BadOwner {
        kind: &'static str,
        name: String,
        what: &'static str,
        value: String,
    },
    /// The node's secrets directory cannot be made or is not the daemon's own.
    #[error("secrets directory {}: {msg}", path.display())]
    SecretsRoot { path: PathBuf, msg: String },
    #[error("{kind} `{name}`: cannot write {}: {source}", path.display())]
    Io {
        kind: &'static str,
        name: String,
        path: PathBuf,
        source: io::Error,
    },
}

/// Where a node keeps task files.
#[derive(Debug, Clone)]
pub struct TaskFiles {
    pub state_dir: PathBuf,
    pub secrets_dir: PathBuf,
    /// Whether the secrets directory gets a tmpfs of its own while secrets are in it (see
    /// [`crate::tmpfs`]).
    own_tmpfs: bool,
    /// Serializes mounting, writing secrets, and unmounting once the last task is gone.
    secrets_lock: Arc<Mutex<()>>,
}

/// One file to write: what, where on the host, where in the container, owner and mode.
struct Planned<'a> {
    kind: &'static str,
    /// The directory the file's own directories are made under (it exists).
    base: &'a Path,
    name: String,
    data: &'a [u8],
    host: PathBuf,
    target: String,
    uid: Option<u32>,
    gid: Option<u32>,
    mode: u32,
}

impl TaskFiles {
    pub fn new(state_dir: PathBuf, secrets_dir: PathBuf) -> Self {
        Self {
            state_dir,
            secrets_dir,
            own_tmpfs: false,
            secrets_lock: Arc::default(),
        }
    }

    /// Secrets go on a tmpfs of the daemon's own, mounted on the secrets directory.
    pub fn with_own_tmpfs(mut self) -> Self {
        self.own_tmpfs = true;
        self
    }

    fn configs_dir(&self, task_id: &str) -> PathBuf {
        self.task_state_dir(task_id).join("configs")
    }

    fn task_state_dir(&self, task_id: &str) -> PathBuf {
        self.state_dir.join("tasks").join(path_safe(task_id))
    }

    fn task_secrets_dir(&self, task_id: &str) -> PathBuf {
        self.secrets_dir.join(path_safe(task_id))
    }

    /// Writes every config and secret file the spec references and returns their mounts.
    /// Writing again replaces the files, so a re-prepared task gets fresh ones.
    pub fn write(
        &self,
        task_id: &str,
        spec: &ContainerSpec,
        configs: &[FileData],
        secrets: &[FileData],
    ) -> Result<Vec<FileMount>, FilesError> {
        let mut planned = Vec::new();
        for reference in &spec.configs {
            // A runtime config (e.g. a credential spec) is not a file.
            let Some(file) = &reference.file else {
                continue;
            };
            let name = display_name(&reference.config_name, &reference.config_id);
            let data = find(configs, &reference.config_id).ok_or_else(|| FilesError::Missing {
                kind: "config",
                name: name.clone(),
                id: reference.config_id.clone(),
            })?;
            let target = if file.name.is_empty() {
                reference.config_name.as_str()
            } else {
                file.name.as_str()
            };
            planned.push(Planned {
                kind: "config",
                base: &self.state_dir,
                data,
                host: self
                    .configs_dir(task_id)
                    .join(path_safe(&reference.config_id)),
                target: absolute_under("/", target),
                uid: owner("config", &name, "UID", &file.uid)?,
                gid: owner("config", &name, "GID", &file.gid)?,
                mode: mode_or_default(file.mode),
                name,
            });
        }
        for reference in &spec.secrets {
            let name = display_name(&reference.secret_name, &reference.secret_id);
            let data = find(secrets, &reference.secret_id).ok_or_else(|| FilesError::Missing {
                kind: "secret",
                name: name.clone(),
                id: reference.secret_id.clone(),
            })?;
            let (target, uid, gid, mode) = match &reference.file {
                Some(file) => (
                    if file.name.is_empty() {
                        reference.secret_name.as_str()
                    } else {
                        file.name.as_str()
                    },
                    owner("secret", &name, "UID", &file.uid)?,
                    owner("secret", &name, "GID", &file.gid)?,
                    mode_or_default(file.mode),
                ),
                None => (reference.secret_name.as_str(), None, None, DEFAULT_MODE),
            };
            planned.push(Planned {
                kind: "secret",
                base: &self.secrets_dir,
                data,
                host: self
                    .task_secrets_dir(task_id)
                    .join(path_safe(&reference.secret_id)),
                target: absolute_under("/run/secrets", target),
                uid,
                gid,
                mode,
                name,
            });
        }

        let _guard = self.secrets_lock.lock().unwrap_or_else(|e| e.into_inner());
        if self.own_tmpfs && planned.iter().any(|f| f.kind == "secret") {
            crate::tmpfs::ensure_mounted(&self.secrets_dir).map_err(|msg| {
                FilesError::SecretsRoot {
                    path: self.secrets_dir.clone(),
                    msg: msg.to_string(),
                }
            })?;
        }
        let mut mounts = Vec::with_capacity(planned.len());
        for file in planned {
            write_file(&file).map_err(|source| FilesError::Io {
                kind: file.kind,
                name: file.name.clone(),
                path: file.host.clone(),
                source,
            })?;
            mounts.push(FileMount {
                source: file.host.to_string_lossy().into_owned(),
                target: file.target,
            });
        }
        Ok(mounts)
    }

    /// The tasks that have files on this node.
    pub fn task_ids(&self) -> Vec<String> {
        let mut ids = std::collections::BTreeSet::new();
        for dir in [self.state_dir.join("tasks"), self.secrets_dir.clone()] {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    ids.insert(entry.file_name().to_string_lossy().into_owned());
                }
            }
        }
        ids.into_iter().collect()
    }

    /// Removes every file of the task; files already gone are fine. The secrets tmpfs goes
    /// with the last task that had secrets.
    pub fn remove(&self, task_id: &str) -> io::Result<()> {
        let _guard = self.secrets_lock.lock().unwrap_or_else(|e| e.into_inner());
        for dir in [self.task_state_dir(task_id), self.task_secrets_dir(task_id)] {
            match fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        if self.own_tmpfs
            && fs::read_dir(&self.secrets_dir).is_ok_and(|mut entries| entries.next().is_none())
        {
            crate::tmpfs::unmount(&self.secrets_dir)?;
        }
        Ok(())
    }
}

fn write_file(file: &Planned<'_>) -> io::Result<()> {
    // Only root and the engine need to reach the files on the host: every directory from
    // the base (the data dir, the secrets directory) down is the daemon's, mode 0700.
    let rel = file
        .host
        .parent()
        .and_then(|d| d.strip_prefix(file.base).ok())
        .ok_or_else(|| io::Error::other("a task file outside its base directory"))?;
    let mut dir = file.base.to_path_buf();
    // The base is the daemon's (its data dir as configured, the secrets directory it chose);
    // gone (a tmpfs emptied), it is made again the same way.
    if !dir.is_dir() {
        private_dir(&dir)?;
    }
    for part in rel.components() {
        dir.push(part);
        private_dir(&dir)?;
    }
    // A previous file may be read-only, and a running container may still hold it open:
    // replace it rather than truncate it. (Unlinking never follows a link: a planted one
    // goes, its target stays.)
    match fs::remove_file(&file.host) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o400)
        .open(&file.host)?;
    f.write_all(file.data)?;
    f.sync_all()?;
    // Owner and mode through the open file: nothing can swap the path meanwhile.
    let meta = f.metadata()?;
    let uid = file.uid.filter(|&u| u != meta.uid());
    let gid = file.gid.filter(|&g| g != meta.gid());
    if uid.is_some() || gid.is_some() {
        std::os::unix::fs::fchown(&f, uid, gid)?;
    }
    f.set_permissions(fs::Permissions::from_mode(file.mode))
}

/// Makes `dir` a directory of mode 0700 without following links: `mkdir` never follows
/// one, and an existing entry must be a real directory (`lstat`).
fn private_dir(dir: &Path) -> io::Result<()> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    let meta = fs::symlink_metadata(dir)?;
    if !meta.file_type().is_dir() {
        return Err(io::Error::other(format!(
            "{} is not a directory (a symbolic link or a file is in its place): refusing to follow it",
            dir.display()
        )));
    }
    if meta.mode() & 0o7777 != 0o700 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// The file, under the daemon's data dir, that names its secrets directory on the tmpfs.
const SECRETS_ROOT_NAME: &str = "secrets-dir";
const SECRETS_ROOT_PREFIX: &str = "shoal-secrets-";

/// The daemon's secrets directory under `tmpfs` (`/dev/shm`): the one named in
/// `state_dir/secrets-dir` while it is still a real directory of mode 0700 owned by the
/// daemon's user; otherwise a new one with a random name (nobody can plant anything at a
/// name they cannot guess; `mkdir` fails rather than follow what is there), recorded there.
pub fn secrets_root(state_dir: &Path, tmpfs: &Path) -> Result<PathBuf, FilesError> {
    let record = state_dir.join(SECRETS_ROOT_NAME);
    let err = |path: &Path, msg: String| FilesError::SecretsRoot {
        path: path.to_path_buf(),
        msg,
    };
    let owner = fs::metadata(state_dir)
        .map_err(|e| err(state_dir, format!("cannot read the data dir: {e}")))?
        .uid();
    if let Ok(name) = fs::read_to_string(&record) {
        let name = name.trim();
        let well_formed = name
            .strip_prefix(SECRETS_ROOT_PREFIX)
            .is_some_and(|r| !r.is_empty() && r.chars().all(|c| c.is_ascii_hexdigit()));
        if well_formed {
            let dir = tmpfs.join(name);
            if is_own_private_dir(&dir, owner) {
                return Ok(dir);
            }
        }
    }
    for _ in 0..8 {
        let name = format!("{SECRETS_ROOT_PREFIX}{:032x}", rand::random::<u128>());
        let dir = tmpfs.join(&name);
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(err(&dir, format!("cannot create it: {e}"))),
        }
        if !is_own_private_dir(&dir, owner) {
            return Err(err(
                &dir,
                "not a private directory after creating it".into(),
            ));
        }
        let tmp = state_dir.join(format!("{SECRETS_ROOT_NAME}.tmp"));
        let _ = fs::remove_file(&tmp);
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| f.write_all(name.as_bytes()).and_then(|()| f.sync_all()))
            .and_then(|()| fs::rename(&tmp, &record))
            .map_err(|e| err(&record, format!("cannot record the secrets directory: {e}")))?;
        return Ok(dir);
    }
    Err(err(
        tmpfs,
        "cannot find a free name for the secrets directory".into(),
    ))
}

/// A real directory (not a link), owned by `owner`, that nobody else can enter.
fn is_own_private_dir(dir: &Path, owner: u32) -> bool {
    fs::symlink_metadata(dir)
        .is_ok_and(|m| m.file_type().is_dir() && m.uid() == owner && m.mode() & 0o077 == 0)
}

fn find<'a>(data: &'a [FileData], id: &str) -> Option<&'a [u8]> {
    data.iter().find(|d| d.id == id).map(|d| d.data.as_slice())
}

fn display_name(name: &str, id: &str) -> String {
    if name.is_empty() {
        id.to_string()
    } else {
        name.to_string()
    }
}

/// `UID`/`GID` are decimal strings; empty means "leave as written" (root).
fn owner(
    kind: &'static str,
    name: &str,
    what: &'static str,
    value: &str,
) -> Result<Option<u32>, FilesError> {
    if value.is_empty() {
        return Ok(None);
    }
    value.parse().map(Some).map_err(|_| FilesError::BadOwner {
        kind,
        name: name.to_string(),
        what,
        value: value.to_string(),
    })
}

fn mode_or_default(mode: u32) -> u32 {
    if mode == 0 {
        DEFAULT_MODE
    } else {
        mode & 0o7777
    }
}

/// A target as an absolute path in the container: relative ones are under `base`.
fn absolute_under(base: &str, target: &str) -> String {
    if target.starts_with('/') {
        target.to_string()
    } else {
        format!("{}/{target}", base.trim_end_matches('/'))
    }
}

/// IDs are hex, but the file name must never escape its directory whatever they hold.
fn path_safe(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_types::swarm::{
        ConfigReference, ConfigReferenceFileTarget, SecretReference, SecretReferenceFileTarget,
    };

    fn data(id: &str, name: &str, bytes: &[u8]) -> FileData {
        FileData {
            id: id.into(),
            name: name.into(),
            data: bytes.to_vec(),
        }
    }

    #[test]
    fn configs_and_secrets_land_where_swarm_puts_them() {
        let state = tempfile::tempdir().unwrap();
        let secrets = tempfile::tempdir().unwrap();
        let files = TaskFiles::new(state.path().into(), secrets.path().into());
        let spec = ContainerSpec {
            configs: vec![
                ConfigReference {
                    config_id: "c1".into(),
                    config_name: "app.conf".into(),
                    file: Some(ConfigReferenceFileTarget {
                        name: "etc/app.conf".into(),
                        mode: 0o640,
                        ..Default::default()
                    }),
                    runtime: None,
                },
                ConfigReference {
                    config_id: "c2".into(),
                    config_name: "plain".into(),
                    file: Some(ConfigReferenceFileTarget::default()),
                    runtime: None,
                },
            ],
            secrets: vec![SecretReference {
                secret_id: "s1".into(),
                secret_name: "db-pass".into(),
                file: Some(SecretReferenceFileTarget {
                    name: "db".into(),
                    uid: "0".into(),
                    gid: "0".into(),
                    mode: 0o400,
                }),
            }],
            ..Default::default()
        };
        let mounts = files
            .write(
                "t1",
                &spec,
                &[data("c1", "app.conf", b"a=1"), data("c2", "plain", b"p")],
                &[data("s1", "db-pass", b"hunter2")],
            )
            .unwrap();
        let targets: Vec<_> = mounts.iter().map(|m| m.target.as_str()).collect();
        assert_eq!(targets, ["/etc/app.conf", "/plain", "/run/secrets/db"]);
        let secret = secrets.path().join("t1/s1");
        assert_eq!(mounts[2].source, secret.to_string_lossy());
        assert_eq!(fs::read(&secret).unwrap(), b"hunter2");
        assert_eq!(fs::metadata(&secret).unwrap().mode() & 0o7777, 0o400);
        let config = state.path().join("tasks/t1/configs/c1");
        assert_eq!(fs::metadata(&config).unwrap().mode() & 0o7777, 0o640);
        let plain = state.path().join("tasks/t1/configs/c2");
        assert_eq!(fs::metadata(&plain).unwrap().mode() & 0o7777, 0o444);

        // Writing again (a re-prepared task) replaces read-only files.
        files
            .write(
                "t1",
                &spec,
                &[data("c1", "app.conf", b"a=2"), data("c2", "plain", b"p")],
                &[data("s1", "db-pass", b"hunter2")],
            )
            .unwrap();
        assert_eq!(fs::read(&config).unwrap(), b"a=2");

        files.remove("t1").unwrap();
        assert!(!secrets.path().join("t1").exists());
        assert!(!state.path().join("tasks/t1").exists());
        files.remove("t1").unwrap();
    }

    fn one_secret(id: &str) -> ContainerSpec {
        ContainerSpec {
            secrets: vec![SecretReference {
                secret_id: id.into(),
                secret_name: "api-key".into(),
                file: None,
            }],
            ..Default::default()
        }
    }

    #[test]
    fn planted_symlinks_in_the_secrets_directory_are_never_followed() {
        let state = tempfile::tempdir().unwrap();
        let secrets = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let files = TaskFiles::new(state.path().into(), secrets.path().into());
        // A link in place of the task's directory: refused, nothing written through it.
        std::os::unix::fs::symlink(elsewhere.path(), secrets.path().join("t1")).unwrap();
        let err = files
            .write(
                "t1",
                &one_secret("s1"),
                &[],
                &[data("s1", "api-key", b"hunter2")],
            )
            .unwrap_err();
        assert!(err.to_string().contains("refusing to follow"), "{err}");
        assert_eq!(fs::read_dir(elsewhere.path()).unwrap().count(), 0);

        // A link in place of the file: the link goes, its target is untouched.
        let target = elsewhere.path().join("victim");
        fs::write(&target, b"keep").unwrap();
        fs::DirBuilder::new()
            .mode(0o700)
            .create(secrets.path().join("t2"))
            .unwrap();
        std::os::unix::fs::symlink(&target, secrets.path().join("t2/s1")).unwrap();
        files
            .write(
                "t2",
                &one_secret("s1"),
                &[],
                &[data("s1", "api-key", b"hunter2")],
            )
            .unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"keep");
        let file = secrets.path().join("t2/s1");
        let meta = fs::symlink_metadata(&file).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(meta.mode() & 0o7777, 0o444, "Swarm's default mode");
        let dir = fs::symlink_metadata(secrets.path().join("t2")).unwrap();
        assert_eq!(dir.mode() & 0o7777, 0o700);

        // Removing the task leaves no plaintext behind (and follows no link either).
        files.remove("t2").unwrap();
        files.remove("t1").unwrap();
        assert_eq!(fs::read_dir(secrets.path()).unwrap().count(), 0);
        assert_eq!(fs::read(&target).unwrap(), b"keep");
    }

    #[test]
    fn the_secrets_root_is_private_random_and_kept_across_restarts() {
        let state = tempfile::tempdir().unwrap();
        let tmpfs = tempfile::tempdir().unwrap();
        let root = secrets_root(state.path(), tmpfs.path()).unwrap();
        assert_eq!(root.parent().unwrap(), tmpfs.path());
        let name = root.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("shoal-secrets-") && name.len() > 40,
            "{name}"
        );
        let meta = fs::symlink_metadata(&root).unwrap();
        assert!(meta.file_type().is_dir());
        assert_eq!(meta.mode() & 0o7777, 0o700);
        // The daemon starts again: the same directory (files of running tasks are there).
        assert_eq!(secrets_root(state.path(), tmpfs.path()).unwrap(), root);
        // Another daemon gets another one.
        let other = tempfile::tempdir().unwrap();
        assert_ne!(secrets_root(other.path(), tmpfs.path()).unwrap(), root);
    }

    #[test]
    fn secrets_get_a_tmpfs_of_their_own_while_a_task_has_them() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: mounting a tmpfs needs root");
            return;
        }
        let state = tempfile::tempdir().unwrap();
        let base = tempfile::tempdir().unwrap();
        let root = secrets_root(state.path(), base.path()).unwrap();
        let files = TaskFiles::new(state.path().into(), root.clone()).with_own_tmpfs();
        // Configs alone need no tmpfs.
        let spec = ContainerSpec::default();
        files.write("t0", &spec, &[], &[]).unwrap();
        assert!(!crate::tmpfs::is_mount_point(&root).unwrap());

        let spec = one_secret("s1");
        let secret = data("s1", "db_password", b"hunter2");
        files
            .write("t1", &spec, &[], std::slice::from_ref(&secret))
            .unwrap();
        files.write("t2", &spec, &[], &[secret]).unwrap();
        assert!(crate::tmpfs::is_mount_point(&root).unwrap());
        let fs_type = nix::sys::statfs::statfs(&root).unwrap().filesystem_type();
        assert_eq!(fs_type, nix::sys::statfs::TMPFS_MAGIC);
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let line = mountinfo
            .lines()
            .find(|l| l.split(' ').nth(4) == Some(root.to_str().unwrap()))
            .expect("the tmpfs in mountinfo");
        for option in ["nosuid", "nodev", "noexec"] {
            assert!(line.contains(option), "{option} missing: {line}");
        }
        assert!(
            is_own_private_dir(&root, 0),
            "the tmpfs root is 0700: {line}"
        );

        // It stays while a task has secrets, and goes with the last one.
        files.remove("t1").unwrap();
        assert!(crate::tmpfs::is_mount_point(&root).unwrap());
        files.remove("t0").unwrap();
        files.remove("t2").unwrap();
        assert!(!crate::tmpfs::is_mount_point(&root).unwrap());
        assert!(is_own_private_dir(&root, 0));
    }

    #[test]
    fn a_link_planted_at_the_recorded_secrets_root_is_not_followed() {
        let state = tempfile::tempdir().unwrap();
        let tmpfs = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let root = secrets_root(state.path(), tmpfs.path()).unwrap();
        // The tmpfs was emptied (a reboot) and someone who knew the name put a link there.
        fs::remove_dir(&root).unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), &root).unwrap();
        let fresh = secrets_root(state.path(), tmpfs.path()).unwrap();
        assert_ne!(fresh, root);
        assert!(fs::symlink_metadata(&fresh).unwrap().file_type().is_dir());
        // Nor a directory anybody may enter.
        fs::remove_dir(&fresh).unwrap();
        fs::DirBuilder::new().mode(0o777).create(&fresh).unwrap();
        fs::set_permissions(&fresh, fs::Permissions::from_mode(0o777)).unwrap();
        let third = secrets_root(state.path(), tmpfs.path()).unwrap();
        assert_ne!(third, fresh);
        let files = TaskFiles::new(state.path().into(), third);
        files
            .write(
                "t1",
                &one_secret("s1"),
                &[],
                &[data("s1", "api-key", b"hunter2")],
            )
            .unwrap();
        assert_eq!(fs::read_dir(elsewhere.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_secret_without_data_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let files = TaskFiles::new(dir.path().into(), dir.path().into());
        let spec = ContainerSpec {
            secrets: vec![SecretReference {
                secret_id: "s9".into(),
                secret_name: "api-key".into(),
                file: None,
            }],
            ..Default::default()
        };
        let err = files.write("t1", &spec, &[], &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "secret `api-key` (s9) is referenced by the task but its data was not assigned"
        );
    }
}
