//! Socket → process mapping: which process holds a socket inode, found by
//! reading the `socket:[inode]` links in `/proc/<pid>/fd`, plus the process's
//! executable and user.
//!
//! Reading other users' `/proc/<pid>/fd` needs `CAP_DAC_READ_SEARCH` (to list it)
//! and `CAP_SYS_PTRACE` (to read its links), or root; without them those sockets
//! map to no process, and only the socket owner's user (from the socket table's
//! uid) is reported. The full scan is throttled: a lookup
//! that misses rescans at most every [`MIN_RESCAN_INTERVAL`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::record::ProcessInfo;

/// Least time between two full scans of `/proc/*/fd`.
pub const MIN_RESCAN_INTERVAL: Duration = Duration::from_millis(250);

/// Inode → owning process, from the last scan.
pub struct ProcessTable {
    proc_dir: PathBuf,
    owners: HashMap<u64, u32>,
    processes: HashMap<u32, ProcessInfo>,
    last_scan: Option<Instant>,
    users: UserNames,
}

impl Default for ProcessTable {
    fn default() -> Self {
        Self::at("/proc", "/etc/passwd")
    }
}

impl ProcessTable {
    /// A table reading processes under `proc_dir` and user names from `passwd`.
    pub fn at(proc_dir: impl Into<PathBuf>, passwd: impl Into<PathBuf>) -> Self {
        ProcessTable {
            proc_dir: proc_dir.into(),
            owners: HashMap::new(),
            processes: HashMap::new(),
            last_scan: None,
            users: UserNames::new(passwd.into()),
        }
    }

    /// The process holding socket `inode`, rescanning (throttled) on a miss.
    pub fn owner(&mut self, inode: u64) -> Option<ProcessInfo> {
        if inode == 0 {
            return None;
        }
        if !self.owners.contains_key(&inode) && self.rescan_allowed() {
            self.rescan();
        }
        let pid = *self.owners.get(&inode)?;
        self.processes.get(&pid).cloned()
    }

    /// The name of user `uid` (the number as text when it has no name).
    pub fn user_name(&mut self, uid: u32) -> String {
        self.users.name(uid)
    }

    fn rescan_allowed(&self) -> bool {
        self.last_scan
            .is_none_or(|at| at.elapsed() >= MIN_RESCAN_INTERVAL)
    }

    /// Rebuilds the inode → process map from `/proc/*/fd`.
    pub fn rescan(&mut self) {
        self.last_scan = Some(Instant::now());
        self.owners.clear();
        self.processes.clear();
        let Ok(entries) = std::fs::read_dir(&self.proc_dir) else {
            return;
        };
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
                continue;
            };
            let mut owns_socket = false;
            for fd in fds.flatten() {
                if let Some(inode) = std::fs::read_link(fd.path())
                    .ok()
                    .as_deref()
                    .and_then(socket_inode)
                {
                    // The first (lowest) pid seen keeps a socket shared after fork.
                    self.owners.entry(inode).or_insert(pid);
                    owns_socket = true;
                }
            }
            if owns_socket {
                let info = self.describe(pid, &entry.path());
                self.processes.insert(pid, info);
            }
        }
    }

    fn describe(&mut self, pid: u32, dir: &Path) -> ProcessInfo {
        let exe = std::fs::read_link(dir.join("exe"))
            .map(|p| {
                p.to_string_lossy()
                    .trim_end_matches(" (deleted)")
                    .to_string()
            })
            .unwrap_or_default();
        let user = std::fs::read_to_string(dir.join("status"))
            .ok()
            .and_then(|status| real_uid(&status))
            .map(|uid| self.users.name(uid))
            .unwrap_or_default();
        ProcessInfo { pid, exe, user }
    }
}

/// The inode in a `socket:[12345]` fd link.
fn socket_inode(link: &Path) -> Option<u64> {
    link.to_str()?
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The real uid from a `/proc/<pid>/status` text (`Uid:\treal\teffective...`).
fn real_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))?
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

/// uid → user name from `/etc/passwd`, reloaded when the file changes.
struct UserNames {
    path: PathBuf,
    names: HashMap<u32, String>,
    loaded_mtime: Option<SystemTime>,
}

impl UserNames {
    fn new(path: PathBuf) -> Self {
        UserNames {
            path,
            names: HashMap::new(),
            loaded_mtime: None,
        }
    }

    fn name(&mut self, uid: u32) -> String {
        let mtime = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        if mtime != self.loaded_mtime {
            self.loaded_mtime = mtime;
            self.names = std::fs::read_to_string(&self.path)
                .map(|text| parse_passwd(&text))
                .unwrap_or_default();
        }
        self.names
            .get(&uid)
            .cloned()
            .unwrap_or_else(|| uid.to_string())
    }
}

fn parse_passwd(text: &str) -> HashMap<u32, String> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let uid = fields.nth(1)?.parse().ok()?;
            Some((uid, name.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::capture::network::proc_net::SocketTables;
    use crate::capture::network::record::Transport;

    #[test]
    fn finds_this_process_behind_its_own_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("local addr").port();
        let inode = SocketTables::default()
            .read(&[Transport::Tcp])
            .into_iter()
            .find(|entry| entry.local.1 == port && entry.is_listener())
            .map(|entry| entry.inode)
            .expect("the listener is in /proc/net/tcp");
        let mut table = ProcessTable::default();
        let owner = table.owner(inode).expect("own socket found");
        assert_eq!(owner.pid, std::process::id());
        let own_exe = std::env::current_exe().expect("exe");
        assert_eq!(Path::new(&owner.exe), own_exe);
        let uid = std::fs::metadata("/proc/self").expect("proc self").uid();
        assert_eq!(owner.user, table.user_name(uid));
        assert_eq!(table.owner(0), None);
        drop(listener);
    }

    #[test]
    fn parses_links_status_and_passwd() {
        assert_eq!(socket_inode(Path::new("socket:[4242]")), Some(4242));
        assert_eq!(socket_inode(Path::new("pipe:[4242]")), None);
        assert_eq!(socket_inode(Path::new("/dev/null")), None);
        assert_eq!(
            real_uid("Name:\tnc\nUid:\t1000\t1000\t1000\t1000\n"),
            Some(1000)
        );
        assert_eq!(real_uid("Name:\tnc\n"), None);
        let users = parse_passwd(
            "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534::/:/usr/sbin/nologin\nbroken\n",
        );
        assert_eq!(users.get(&0).map(String::as_str), Some("root"));
        assert_eq!(users.get(&65534).map(String::as_str), Some("nobody"));
        assert_eq!(users.len(), 2);
    }

    #[test]
    fn unknown_uids_are_shown_as_numbers() {
        let dir = tempfile::tempdir().expect("temp dir");
        let passwd = dir.path().join("passwd");
        std::fs::write(&passwd, "alice:x:1001:1001::/home/alice:/bin/sh\n").expect("write passwd");
        let mut table = ProcessTable::at(dir.path().join("proc"), &passwd);
        assert_eq!(table.user_name(1001), "alice");
        assert_eq!(table.user_name(4321), "4321");
        table.rescan();
        assert_eq!(
            table.owner(77),
            None,
            "no /proc here: nothing owns anything"
        );
    }
}
