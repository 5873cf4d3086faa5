//! Helpers for the file-integrity end-to-end tests: a private view of the host's
//! real system paths, an agent running inside it with the production `[file]`
//! settings, and readers for the file events and alerts the collector stored.
//!
//! The detection rules and the agent's default watch list name real system paths
//! (`/var/www`, `/root/.ssh`, `/etc/cron.d`). Instead of writing into the host's
//! directories, [`IsolatedHost`] runs a process in its own mount namespace
//! (`unshare --mount`, private propagation) where each of those directories is a
//! fresh tmpfs. Directories missing on the host (`/var/www`, `/root/.ssh` on a bare
//! machine) are created inside an overlay of their nearest existing parent whose
//! upper layer lives in the namespace's own tmpfs, so nothing is created on the
//! host (any write under such a parent, e.g. a new `/var/spool/cron`, stays in
//! the namespace too). Commands (`sh`, `sha256sum`) and the agent enter that namespace with
//! `nsenter --mount`: they see `/var/www/html/shell.php` where an attacker would.
//! Everything else (the network, `/etc/passwd`, `/tmp`) is the host's.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use anyhow::{Context, bail};

use crate::{Agent, Daemon, bin, clickhouse_query};

/// A private mount namespace in which some host directories are empty tmpfs.
pub struct IsolatedHost {
    /// The process holding the namespace (`sleep`), killed on drop.
    holder: Child,
    /// Its pid, for `nsenter --target`.
    pub pid: u32,
}

impl IsolatedHost {
    /// Creates the namespace; each of `dirs` (absolute) becomes an empty tmpfs
    /// in it. `scratch` (on the host, e.g. a test's temporary directory) holds the
    /// namespace's own tmpfs mount point.
    pub fn start(scratch: &Path, dirs: &[&str]) -> anyhow::Result<Self> {
        let staging = scratch.join("ns-staging");
        std::fs::create_dir_all(&staging)?;
        let script = setup_script(&staging, dirs)?;
        let mut holder = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(&script)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running unshare (util-linux; needs root)")?;
        let mut line = String::new();
        if let Some(out) = holder.stdout.take() {
            BufReader::new(out).read_line(&mut line)?;
        }
        if line.trim() != "ready" {
            let mut err = String::new();
            if let Some(mut stderr) = holder.stderr.take() {
                let _ = stderr.read_to_string(&mut err);
            }
            let _ = holder.kill();
            let _ = holder.wait();
            bail!("mount namespace setup failed:\n{script}\n{err}");
        }
        let pid = holder.id();
        Ok(Self { holder, pid })
    }

    /// `program` run inside the namespace (`nsenter` execs it: same pid).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg("--target")
            .arg(self.pid.to_string())
            .arg("--mount")
            .arg("--")
            .arg(program);
        cmd
    }

    /// Runs `sh -c script` in the namespace with `args` as `$1…` and `stdin` as
    /// its input; fails unless it exits 0.
    pub fn sh(&self, script: &str, args: &[&str], stdin: &[u8]) -> anyhow::Result<Output> {
        let mut child = self
            .command("sh")
            .args(["-c", script, "sh"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin)?;
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "sh -c {script:?} {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(out)
    }

    /// Writes `bytes` (no NUL) to `path` the way `printf > file` does: one process
    /// opens (creating or truncating) and writes at once, as an attacker's `echo`
    /// would, so the change is one burst.
    pub fn write(&self, path: &str, bytes: &[u8]) -> anyhow::Result<()> {
        self.redirect(">", path, bytes)
    }

    /// Appends `bytes` (no NUL) to `path` (`printf >> file`).
    pub fn append(&self, path: &str, bytes: &[u8]) -> anyhow::Result<()> {
        self.redirect(">>", path, bytes)
    }

    fn redirect(&self, op: &str, path: &str, bytes: &[u8]) -> anyhow::Result<()> {
        use std::os::unix::ffi::OsStrExt;
        if bytes.contains(&0) {
            bail!("content with NUL cannot be passed to printf");
        }
        let out = self
            .command("sh")
            .args(["-c", &format!("printf '%s' \"$2\" {op} \"$1\""), "sh", path])
            .arg(std::ffi::OsStr::from_bytes(bytes))
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            bail!("writing {path}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }

    /// The file's content, as seen in the namespace.
    pub fn read(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        Ok(self.sh("cat \"$1\"", &[path], b"")?.stdout)
    }

    /// The digest printed by the real `sha256sum` for `path` in the namespace.
    pub fn sha256sum(&self, path: &str) -> anyhow::Result<String> {
        let out = self.sh("sha256sum \"$1\"", &[path], b"")?;
        let text = String::from_utf8(out.stdout)?;
        let digest = text
            .split_whitespace()
            .next()
            .context("sha256sum printed nothing")?;
        if digest.len() != 64 {
            bail!("unexpected sha256sum output {text:?}");
        }
        Ok(digest.to_string())
    }

    /// Starts `agent` (configured with [`configure_fim_agent`]) inside the namespace.
    pub fn run_agent(&self, agent: &mut Agent) -> anyhow::Result<()> {
        let mut cmd = self.command(bin("shaobing-agent")?);
        cmd.arg("--config")
            .arg(&agent.config)
            .arg("run")
            .env("RUST_LOG", "info");
        let log = (0..)
            .map(|run| agent.dir.join(format!("agent-{run}.log")))
            .find(|log| !log.exists())
            .context("no free log name")?;
        agent.daemon = Some(Daemon::spawn(cmd, log)?);
        Ok(())
    }
}

impl Drop for IsolatedHost {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// What the agent logs once its start-up diff is done and inotify is live.
pub const STARTED: &str = "file integrity monitoring started";

/// The shell script that builds the namespace, then prints `ready` and holds it.
fn setup_script(staging: &Path, dirs: &[&str]) -> anyhow::Result<String> {
    let quote = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', r"'\''"));
    let mut script = String::from("set -e\n");
    script.push_str(&format!(
        "mount -t tmpfs -o mode=0700 sb-fim-staging {}\n",
        quote(staging)
    ));
    let mut overlaid: Vec<PathBuf> = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let dir = Path::new(dir);
        if !dir.is_absolute() {
            bail!("{} is not absolute", dir.display());
        }
        if !dir.is_dir() {
            let parent = dir
                .ancestors()
                .skip(1)
                .find(|a| a.is_dir())
                .context("no existing parent")?;
            if parent == Path::new("/") {
                bail!(
                    "{} would need an overlay of / (not supported)",
                    dir.display()
                );
            }
            if !overlaid.iter().any(|o| o == parent) {
                let upper = staging.join(format!("upper{i}"));
                let work = staging.join(format!("work{i}"));
                script.push_str(&format!(
                    "mkdir -p {u} {w}\nmount -t overlay sb-fim-overlay -o lowerdir={p},upperdir={u},workdir={w} {p}\n",
                    u = quote(&upper),
                    w = quote(&work),
                    p = quote(parent),
                ));
                overlaid.push(parent.to_path_buf());
            }
            script.push_str(&format!("mkdir -p {}\n", quote(dir)));
        }
        script.push_str(&format!(
            "mount -t tmpfs -o mode=0755 sb-fim {}\n",
            quote(dir)
        ));
    }
    script.push_str("echo ready\nexec sleep 86400\n");
    Ok(script)
}

/// Writes an agent config shipping to `collector_port` with the given `[file]`
/// section body (empty = the production defaults: default watch list, SHA-256,
/// 200 ms debounce). Login capture follows an empty log; network capture is off.
pub fn configure_fim_agent(
    dir: &Path,
    collector_port: u16,
    file_section: &str,
) -> anyhow::Result<Agent> {
    Agent::configure_sections(
        dir,
        &format!("https://127.0.0.1:{collector_port}"),
        "",
        "enabled = false",
        file_section,
    )
}

/// Columns of a stored file event, all as strings.
pub const FILE_COLUMNS: &str = "event_id, agent_id, hostname, source, file_op, file_path, \
     file_old_path, toString(file_size) AS size, toString(file_mode) AS mode, \
     toString(file_uid) AS uid, file_owner, file_hash_before, file_hash_after, \
     file_watched_root, file_content_sample, toString(pid) AS pid, exe, \
     toString(file_mtime_ns) AS mtime_ns";

/// File events stored in `db` for `path`, oldest first, as JSON objects with
/// [`FILE_COLUMNS`].
pub fn stored_file_events(db: &str, path: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    file_events_where(db, &format!("file_path = '{}'", sql_string(path)))
}

/// File events stored in `db` matching the SQL condition `condition`.
pub fn file_events_where(db: &str, condition: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    let text = clickhouse_query(&format!(
        "SELECT {FILE_COLUMNS} FROM {db}.events WHERE kind = 'file' AND ({condition}) \
         ORDER BY time_ns, seq FORMAT JSONEachRow"
    ))?;
    text.lines().map(|l| Ok(serde_json::from_str(l)?)).collect()
}

/// `text` escaped for a single-quoted ClickHouse string.
pub fn sql_string(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\'', "\\'")
}

/// The Sigma id of rule `rules/<theme>/<name>.yml` (read from the repository).
pub fn rule_id(theme: &str, name: &str) -> anyhow::Result<String> {
    let path = crate::repo_root()
        .join("rules")
        .join(theme)
        .join(format!("{name}.yml"));
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    text.lines()
        .find_map(|l| l.strip_prefix("id:"))
        .map(|id| id.trim().to_string())
        .with_context(|| format!("{} has no id", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_overlays_the_parent_of_missing_dirs_once_and_quotes_paths() {
        let script = setup_script(
            Path::new("/tmp/x y"),
            &["/nonexistent-sb-a/b", "/nonexistent-sb-a/c", "/tmp"],
        )
        .unwrap_err();
        // A missing directory whose only existing parent is / is refused.
        assert!(script.to_string().contains("overlay of /"), "{script}");
        let script = setup_script(Path::new("/tmp/x'y"), &["/tmp/sb-none/a", "/tmp"]).unwrap();
        assert_eq!(script.matches("mount -t overlay").count(), 1, "{script}");
        assert!(script.contains("lowerdir='/tmp'"), "{script}");
        assert!(script.contains(r"'/tmp/x'\''y/upper0'"), "{script}");
        assert!(script.contains("mount -t tmpfs -o mode=0755 sb-fim '/tmp'\n"));
        assert!(script.ends_with("echo ready\nexec sleep 86400\n"));
    }

    #[test]
    fn sql_strings_are_escaped() {
        assert_eq!(sql_string(r"a'b\c"), r"a\'b\\c");
    }
}
