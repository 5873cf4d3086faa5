//! A private "host" for the login end-to-end tests, so that real `useradd`,
//! `usermod`, `su`, `sudo` and `sshd` can run without touching the machine's
//! accounts or logs:
//!
//! - [`PrivateHost`]: a mount namespace (`unshare --mount`, held open by a
//!   `sleep`) with a private copy of `/etc` (accounts, PAM, sudoers, sshd), and
//!   private `/var/log`, `/home`, `/run` and `/dev` (so `/dev/log` is this host's
//!   own `rsyslogd` socket, and `/dev/pts` its own devpts instance, for sshd's
//!   terminals). Its `rsyslogd` writes `auth,authpriv.*` with RFC 3339
//!   stamps (Debian 12's default format) to a file the agent follows. Like
//!   systemd-tmpfiles on Debian, it creates empty `/var/log/lastlog`,
//!   `/var/log/wtmp` and `/run/utmp`, which sshd fills for sessions with a
//!   terminal ([`PrivateHost::lastlog_path`]).
//! - [`SshNetwork`]: two network namespaces joined by a veth pair, one for the
//!   server (`sshd`), one for the attacker (`ssh` + `sshpass`).
//! - [`PrivateHost::start_journald`]: the same namespace with a real
//!   `systemd-journald` (not PID 1) owning `/dev/log` instead of rsyslog.
//! - [`PrivateHost::sshd`]: a real `sshd -D` with its own config, host key and
//!   port, logging through syslog like a distribution's sshd.
//!
//! Everything is undone on drop: daemons are killed, and the namespaces vanish
//! with their last process (the namespaced mounts go with them).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::{Daemon, wait_for};

/// Programs the private host and the attacker run, with the Debian package of each.
const PROGRAMS: [(&str, &str); 10] = [
    ("/usr/sbin/sshd", "openssh-server"),
    ("/usr/bin/ssh", "openssh-client"),
    ("/usr/bin/ssh-keygen", "openssh-client"),
    ("/usr/bin/sshpass", "sshpass"),
    ("/usr/sbin/rsyslogd", "rsyslog"),
    ("/usr/bin/sudo", "sudo"),
    ("/usr/sbin/useradd", "passwd"),
    ("/usr/bin/unshare", "util-linux"),
    ("/usr/bin/nsenter", "util-linux"),
    ("/usr/bin/logger", "bsdutils"),
];

/// The Debian packages missing for [`PrivateHost`] and [`SshNetwork`] (empty when all are there).
pub fn missing_packages() -> Vec<&'static str> {
    let mut missing: Vec<&str> = PROGRAMS
        .iter()
        .filter(|(path, _)| !Path::new(path).exists())
        .map(|(_, package)| *package)
        .collect();
    missing.dedup();
    missing
}

/// Sets up the mount namespace, then keeps it alive. `$1` is the work directory.
const HOLDER_SCRIPT: &str = r#"
set -e
D=$1
mkdir -p "$D/etc" "$D/varlog" "$D/dev"
cp -a /etc/. "$D/etc/"
mount --bind "$D/etc" /etc
mount --bind "$D/varlog" /var/log
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /run/sshd
install -m 664 -g utmp /dev/null /var/log/lastlog
install -m 664 -g utmp /dev/null /var/log/wtmp
install -m 664 -g utmp /dev/null /run/utmp
mount -t tmpfs -o mode=755 tmpfs /home
mount -t tmpfs -o mode=755 tmpfs "$D/dev"
for n in null zero full random urandom tty; do
  touch "$D/dev/$n"
  mount --bind "/dev/$n" "$D/dev/$n"
done
mkdir "$D/dev/pts" "$D/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$D/dev/pts"
ln -s pts/ptmx "$D/dev/ptmx"
mount --bind /dev/shm "$D/dev/shm"
ln -s /proc/self/fd "$D/dev/fd"
ln -s /proc/self/fd/0 "$D/dev/stdin"
ln -s /proc/self/fd/1 "$D/dev/stdout"
ln -s /proc/self/fd/2 "$D/dev/stderr"
mount --rbind "$D/dev" /dev
touch "$D/ready"
exec sleep 100000
"#;

/// A mount namespace with private accounts, logs and syslog (see the module docs).
pub struct PrivateHost {
    dir: PathBuf,
    holder: Child,
    rsyslog: Option<Daemon>,
    daemons: Vec<Daemon>,
}

impl PrivateHost {
    /// Builds the namespace in `dir` and starts its `rsyslogd`, writing the auth
    /// facilities to `auth_log` (a path outside the private mounts).
    pub fn start(dir: &Path, auth_log: &Path) -> anyhow::Result<Self> {
        let mut host = Self::namespace(dir)?;
        host.start_rsyslog(auth_log)?;
        Ok(host)
    }

    /// Builds the namespace in `dir` with a real `systemd-journald` (volatile
    /// journal in the private `/run`, `/dev/log` linked to its socket) instead of
    /// rsyslog. `journalctl` run through [`PrivateHost::command`] reads it.
    pub fn start_journald(dir: &Path) -> anyhow::Result<Self> {
        let mut host = Self::namespace(dir)?;
        host.sh("mkdir -p /run/systemd/journal && ln -s /run/systemd/journal/dev-log /dev/log")?;
        let journald = Daemon::spawn(
            host.command("/lib/systemd/systemd-journald"),
            dir.join("journald.log"),
        )?;
        host.daemons.push(journald);
        let marker = format!("sb-private-journal-ready-{}", std::process::id());
        let up = wait_for(Duration::from_secs(20), || {
            let _ = host
                .command("logger")
                .args(["-p", "auth.info", "-t", "sbtest", &marker])
                .output();
            let out = host
                .command("journalctl")
                .args(["--no-pager", "-o", "cat", "-t", "sbtest"])
                .output()
                .ok()?;
            String::from_utf8_lossy(&out.stdout)
                .contains(&marker)
                .then_some(())
        });
        if up.is_none() {
            bail!(
                "systemd-journald in the private host does not answer: {}",
                std::fs::read_to_string(dir.join("journald.log")).unwrap_or_default()
            );
        }
        Ok(host)
    }

    /// The mount namespace alone, set up and held open.
    fn namespace(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let holder = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(HOLDER_SCRIPT)
            .arg("sh")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("holder.log"))?)
            .spawn()
            .context("unshare --mount (needs root and util-linux)")?;
        let host = PrivateHost {
            dir: dir.to_path_buf(),
            holder,
            rsyslog: None,
            daemons: Vec::new(),
        };
        let ready = wait_for(Duration::from_secs(30), || {
            dir.join("ready").exists().then_some(())
        });
        if ready.is_none() {
            bail!(
                "private host did not come up: {}",
                std::fs::read_to_string(dir.join("holder.log")).unwrap_or_default()
            );
        }
        Ok(host)
    }

    /// Starts `rsyslogd` on the private `/dev/log`, writing the auth facilities to `auth_log`.
    fn start_rsyslog(&mut self, auth_log: &Path) -> anyhow::Result<()> {
        let host = self;
        let dir = host.dir.clone();
        let conf = dir.join("rsyslog.conf");
        let work = dir.join("rsyslog");
        std::fs::create_dir_all(&work)?;
        std::fs::write(
            &conf,
            format!(
                "module(load=\"imuxsock\" SysSock.RateLimit.Interval=\"0\")\n\
                 global(workDirectory=\"{}\")\n\
                 auth,authpriv.* action(type=\"omfile\" file=\"{}\" template=\"RSYSLOG_FileFormat\")\n",
                work.display(),
                auth_log.display()
            ),
        )?;
        let mut cmd = host.command("rsyslogd");
        cmd.arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"));
        let rsyslog = Daemon::spawn(cmd, dir.join("rsyslogd.log"))?;
        host.rsyslog = Some(rsyslog);
        // Ready when a message sent through /dev/log reaches the file.
        let marker = format!("sb-private-host-ready-{}", std::process::id());
        let up = wait_for(Duration::from_secs(20), || {
            let _ = host
                .command("logger")
                .args(["-p", "auth.info", "-t", "sbtest", &marker])
                .output();
            std::thread::sleep(Duration::from_millis(100));
            std::fs::read_to_string(auth_log)
                .ok()?
                .contains(&marker)
                .then_some(())
        });
        if up.is_none() {
            bail!(
                "rsyslogd in the private host does not write {}: {}",
                auth_log.display(),
                host.rsyslog
                    .as_ref()
                    .map(Daemon::log_text)
                    .unwrap_or_default()
            );
        }
        Ok(())
    }

    /// The private host's `/var/log/lastlog` as seen from outside, for a host
    /// built in `dir` (it exists once the host is up).
    pub fn lastlog_path(dir: &Path) -> PathBuf {
        dir.join("varlog/lastlog")
    }

    /// The private host's `/etc/passwd` as seen from outside, for a host built in `dir`.
    pub fn passwd_path(dir: &Path) -> PathBuf {
        dir.join("etc/passwd")
    }

    /// `program` run inside the private host's mount namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg("-t")
            .arg(self.holder.id().to_string())
            .arg("-m")
            .arg(program);
        cmd
    }

    /// `program` run inside the private host and network namespace `netns`.
    pub fn command_in(&self, netns: &str, program: &str) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg("-t")
            .arg(self.holder.id().to_string())
            .arg("-m")
            .arg(format!("--net=/run/netns/{netns}"))
            .arg(program);
        cmd
    }

    /// Runs a shell script inside the private host; fails unless it exits 0.
    pub fn sh(&self, script: &str) -> anyhow::Result<Output> {
        let out = self
            .command("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            bail!(
                "{script:?} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(out)
    }

    /// Starts a real `sshd -D` in network namespace `netns`, listening on
    /// `address:port`, with its own host key, password authentication on, and
    /// logging to syslog (facility AUTH).
    pub fn sshd(&mut self, netns: &str, address: &str, port: u16) -> anyhow::Result<()> {
        let key = self.dir.join("ssh_host_ed25519_key");
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .output()
            .context("ssh-keygen (openssh-client)")?;
        if !out.status.success() {
            bail!("ssh-keygen: {}", String::from_utf8_lossy(&out.stderr));
        }
        let config = self.dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress {address}\nHostKey {}\nPidFile {}\n\
                 UsePAM yes\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\n\
                 PermitRootLogin no\nMaxAuthTries 10\nMaxStartups 100\n\
                 SyslogFacility AUTH\nLogLevel INFO\nStrictModes no\n",
                key.display(),
                self.dir.join("sshd.pid").display()
            ),
        )?;
        let mut cmd = self.command_in(netns, "/usr/sbin/sshd");
        cmd.arg("-D").arg("-f").arg(&config);
        let daemon = Daemon::spawn(cmd, self.dir.join("sshd.log"))?;
        self.daemons.push(daemon);
        // Listening when a TCP connection from inside the namespace succeeds.
        let probe = format!("exec 3<>/dev/tcp/{address}/{port}");
        let up = wait_for(Duration::from_secs(20), || {
            self.command_in(netns, "bash")
                .arg("-c")
                .arg(&probe)
                .stderr(Stdio::null())
                .status()
                .ok()?
                .success()
                .then_some(())
        });
        if up.is_none() {
            bail!(
                "sshd did not start: {}",
                std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
            );
        }
        Ok(())
    }

    /// What `sshd` printed (errors only: it logs to syslog).
    pub fn sshd_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for PrivateHost {
    fn drop(&mut self) {
        for daemon in &mut self.daemons {
            daemon.kill();
        }
        if let Some(rsyslog) = self.rsyslog.as_mut() {
            rsyslog.kill();
        }
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// Two network namespaces joined by a veth pair: `server_ip` in `server`,
/// `attacker_ip` in `attacker`. Removed on drop.
pub struct SshNetwork {
    pub server: String,
    pub attacker: String,
    pub server_ip: String,
    pub attacker_ip: String,
}

impl SshNetwork {
    /// Names are unique to this process (`tag` tells tests of one process apart).
    pub fn create(tag: &str) -> anyhow::Result<Self> {
        let id = std::process::id() % 100_000;
        let server = format!("sb{tag}s{id}");
        let attacker = format!("sb{tag}a{id}");
        let quiet = |args: &[&str]| {
            let _ = Command::new("ip").args(args).stderr(Stdio::null()).status();
        };
        quiet(&["netns", "del", &server]);
        quiet(&["netns", "del", &attacker]);
        let net = SshNetwork {
            server,
            attacker,
            server_ip: "10.233.7.1".into(),
            attacker_ip: "10.233.7.2".into(),
        };
        let (s, a) = (net.server.as_str(), net.attacker.as_str());
        crate::ip(&["netns", "add", s])?;
        crate::ip(&["netns", "add", a])?;
        crate::ip(&[
            "link", "add", "sbv0", "netns", s, "type", "veth", "peer", "name", "sbv1", "netns", a,
        ])?;
        for (ns, dev, addr) in [(s, "sbv0", &net.server_ip), (a, "sbv1", &net.attacker_ip)] {
            crate::ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev])?;
            crate::ip(&["-n", ns, "link", "set", dev, "up"])?;
            crate::ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(net)
    }

    /// `ssh` from the attacker namespace with `password` (through `sshpass`):
    /// password authentication only, one prompt, no host key checks.
    pub fn ssh(&self, user: &str, password: &str, port: u16, remote: &str) -> Command {
        self.ssh_command(user, password, port, remote, false)
    }

    /// Like [`SshNetwork::ssh`] with a terminal (`ssh -tt`): sshd then records
    /// the login in utmp, wtmp and lastlog, as for an interactive session.
    pub fn ssh_tty(&self, user: &str, password: &str, port: u16, remote: &str) -> Command {
        self.ssh_command(user, password, port, remote, true)
    }

    fn ssh_command(
        &self,
        user: &str,
        password: &str,
        port: u16,
        remote: &str,
        tty: bool,
    ) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/run/netns/{}", self.attacker))
            .args(["sshpass", "-p", password, "ssh"])
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "PubkeyAuthentication=no",
                "-o",
                "PreferredAuthentications=password",
                "-o",
                "NumberOfPasswordPrompts=1",
                "-o",
                "LogLevel=ERROR",
                "-o",
                "ConnectTimeout=10",
            ])
            .args(if tty { &["-tt"][..] } else { &[][..] })
            .arg("-p")
            .arg(port.to_string())
            .arg(format!("{user}@{}", self.server_ip))
            .arg(remote)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }
}

impl Drop for SshNetwork {
    fn drop(&mut self) {
        for ns in [&self.server, &self.attacker] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}
