//! Parser tests: header formats, every program's messages, hostile input.
//! Real-world sample lines come from OpenSSH, Linux-PAM, sudo, util-linux and
//! shadow sources, and from the loghub Linux dataset (see `loghub_tests.rs`).

use shaobing_wire::v1::{LoginAction, LoginEvent, Outcome};

use super::*;

/// 2026-01-05T10:00:00Z
const NOW: i64 = 1_767_607_200 * 1_000_000_000;

fn ctx() -> ParseContext {
    ParseContext::new(NOW, 0)
}

fn parsed(line: &str) -> ParsedLine {
    match parse_line(line.as_bytes(), &ctx()) {
        ParseOutcome::Parsed(parsed) => *parsed,
        other => panic!("{line:?} gave {other:?}"),
    }
}

fn login(line: &str) -> LoginEvent {
    parsed(line).login
}

fn is(event: &LoginEvent, action: LoginAction, outcome: Outcome) -> bool {
    event.action == action as i32 && event.outcome == outcome as i32
}

fn syslog(program: &str, message: &str) -> String {
    format!("Jan  5 09:59:00 web1 {program}: {message}")
}

#[test]
fn three_header_formats_give_the_same_event() {
    let bsd = parsed(
        "Jan  5 09:59:00 web1 sshd[123]: Failed password for root from 203.0.113.9 port 50022 ssh2",
    );
    let rfc = parsed(
        "2026-01-05T09:59:00.250000+00:00 web1 sshd[123]: Failed password for root from 203.0.113.9 port 50022 ssh2",
    );
    let bare = parsed("Failed password for root from 203.0.113.9 port 50022 ssh2\r\n");
    for p in [&bsd, &rfc, &bare] {
        assert!(is(&p.login, LoginAction::SshFail, Outcome::Failure));
        assert_eq!(p.login.user, "root");
        assert_eq!(p.login.source_ip, "203.0.113.9");
        assert_eq!(p.login.source_port, 50022);
        assert_eq!(p.login.auth_method, "password");
        assert_eq!(p.login.service, "sshd");
    }
    assert_eq!(bsd.login.pid, 123);
    assert_eq!(bsd.hostname, "web1");
    assert_eq!(bsd.time_unix_nano, Some(NOW - 60 * 1_000_000_000));
    assert_eq!(
        rfc.time_unix_nano,
        Some(NOW - 60 * 1_000_000_000 + 250_000_000)
    );
    assert_eq!(bare.time_unix_nano, None);
    assert_eq!(bare.login.pid, 0);
}

#[test]
fn sshd_accepted_methods() {
    let e = login(&syslog(
        "sshd[9]",
        "Accepted publickey for deploy from 10.0.0.5 port 41000 ssh2: ED25519 SHA256:abc",
    ));
    assert!(is(&e, LoginAction::SshAccept, Outcome::Success));
    assert_eq!(
        (e.user.as_str(), e.auth_method.as_str(), e.source_port),
        ("deploy", "publickey", 41000)
    );
    let e = login(&syslog(
        "sshd[9]",
        "Accepted keyboard-interactive/pam for bob from 2001:db8::7 port 2222 ssh2",
    ));
    assert_eq!(
        (e.auth_method.as_str(), e.source_ip.as_str()),
        ("keyboard-interactive/pam", "2001:db8::7")
    );
    let e = login(&syslog(
        "sshd-session[9]",
        "Accepted password for alice from 10.0.0.6 port 1 ssh2",
    ));
    assert_eq!(e.service, "sshd");
}

#[test]
fn sshd_failures_and_invalid_users() {
    let e = login(&syslog(
        "sshd[1]",
        "Failed password for invalid user admin from 198.51.100.1 port 4242 ssh2",
    ));
    assert!(is(&e, LoginAction::SshFail, Outcome::Failure));
    assert_eq!(e.user, "admin");
    let e = login(&syslog(
        "sshd[1]",
        "Failed none for invalid user  from 198.51.100.1 port 4242 ssh2",
    ));
    assert_eq!((e.user.as_str(), e.auth_method.as_str()), ("", "none"));
    let e = login(&syslog(
        "sshd[1]",
        "Invalid user oracle from 198.51.100.2 port 50000",
    ));
    assert!(is(&e, LoginAction::InvalidUser, Outcome::Failure));
    assert_eq!(
        (e.user.as_str(), e.source_ip.as_str(), e.source_port),
        ("oracle", "198.51.100.2", 50000)
    );
    let e = login(&syslog("sshd[1]", "Invalid user test from 198.51.100.3"));
    assert_eq!(
        (e.user.as_str(), e.source_ip.as_str(), e.source_port),
        ("test", "198.51.100.3", 0)
    );
    let e = login(&syslog(
        "sshd[1]",
        "User root from 198.51.100.4 not allowed because not listed in AllowUsers",
    ));
    assert!(is(&e, LoginAction::SshFail, Outcome::Failure));
    assert_eq!(
        (e.user.as_str(), e.source_ip.as_str()),
        ("root", "198.51.100.4")
    );
    let e = login(&syslog(
        "sshd[1]",
        "ROOT LOGIN REFUSED FROM 198.51.100.5 port 22",
    ));
    assert_eq!(
        (e.user.as_str(), e.source_ip.as_str()),
        ("root", "198.51.100.5")
    );
}

#[test]
fn forged_from_in_a_user_name_does_not_move_the_source() {
    let e = login(&syslog(
        "sshd[1]",
        "Invalid user root from 6.6.6.6 port 22 from 198.51.100.7 port 1234",
    ));
    assert_eq!(e.user, "root from 6.6.6.6 port 22");
    assert_eq!(
        (e.source_ip.as_str(), e.source_port),
        ("198.51.100.7", 1234)
    );
    let e = login(&syslog(
        "sshd[1]",
        "Failed password for invalid user x from 6.6.6.6 port 22 ssh2 from 198.51.100.8 port 99 ssh2",
    ));
    assert_eq!(e.source_ip, "198.51.100.8");
    assert_eq!(e.user, "x from 6.6.6.6 port 22 ssh2");
}

#[test]
fn sshd_attempts_break_ins_and_disconnects() {
    let e = login(&syslog(
        "sshd[1]",
        "error: maximum authentication attempts exceeded for invalid user pi from 192.0.2.1 port 3333 ssh2 [preauth]",
    ));
    assert!(is(&e, LoginAction::MaxAuthExceeded, Outcome::Failure));
    assert_eq!((e.user.as_str(), e.source_ip.as_str()), ("pi", "192.0.2.1"));
    let e = login(&syslog(
        "sshd[1]",
        "reverse mapping checking getaddrinfo for host.example.net [192.0.2.2] failed - POSSIBLE BREAK-IN ATTEMPT!",
    ));
    assert!(is(&e, LoginAction::BreakInAttempt, Outcome::Failure));
    assert_eq!(e.source_ip, "192.0.2.2");
    let e = login(&syslog(
        "sshd[1]",
        "Address 192.0.2.3 maps to x.example, but this does not map back to the address - POSSIBLE BREAK-IN ATTEMPT!",
    ));
    assert_eq!(e.source_ip, "192.0.2.3");
    for (message, user, ip) in [
        (
            "Connection closed by authenticating user root 192.0.2.4 port 22 [preauth]",
            "root",
            "192.0.2.4",
        ),
        (
            "Connection closed by invalid user a b 192.0.2.5 port 22 [preauth]",
            "a b",
            "192.0.2.5",
        ),
        (
            "Connection closed by 192.0.2.6 port 22 [preauth]",
            "",
            "192.0.2.6",
        ),
        (
            "Disconnected from user alice 192.0.2.7 port 40000",
            "alice",
            "192.0.2.7",
        ),
        (
            "Received disconnect from 192.0.2.8 port 40000:11: disconnected by user",
            "",
            "192.0.2.8",
        ),
        (
            "Received disconnect from 192.0.2.9: 11: Bye Bye",
            "",
            "192.0.2.9",
        ),
        (
            "Disconnecting invalid user x 192.0.2.10 port 5: Too many authentication failures [preauth]",
            "x",
            "192.0.2.10",
        ),
        (
            "Did not receive identification string from 192.0.2.11 port 1",
            "",
            "192.0.2.11",
        ),
        (
            "Unable to negotiate with 192.0.2.12 port 2: no matching key exchange method found.",
            "",
            "192.0.2.12",
        ),
        (
            "Connection reset by 192.0.2.13 port 3 [preauth]",
            "",
            "192.0.2.13",
        ),
    ] {
        let e = login(&syslog("sshd[1]", message));
        assert!(
            is(&e, LoginAction::SshDisconnect, Outcome::Unspecified),
            "{message}"
        );
        assert_eq!(
            (e.user.as_str(), e.source_ip.as_str()),
            (user, ip),
            "{message}"
        );
    }
}

#[test]
fn sshd_known_noise_is_ignored_and_the_rest_unrecognised() {
    for message in [
        "Postponed publickey for root from 10.0.0.1 port 1 ssh2 [preauth]",
        "PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=10.0.0.1  user=root",
        "Disconnecting: Too many authentication failures for root [preauth]",
        // Recorded on Debian 12 (OpenSSH 9.2).
        "Server listening on 0.0.0.0 port 22.",
        "error: kex_exchange_identification: Connection closed by remote host",
    ] {
        assert!(matches!(
            parse_line(syslog("sshd[1]", message).as_bytes(), &ctx()),
            ParseOutcome::Ignored(_)
        ));
    }
    for message in [
        "Something sshd never says",
        "Accepted",
        "Failed password for root from nowhere",
    ] {
        assert_eq!(
            parse_line(syslog("sshd[1]", message).as_bytes(), &ctx()),
            ParseOutcome::Unrecognised
        );
    }
}

#[test]
fn pam_failures_sessions_and_lockouts() {
    let e = login(&syslog(
        "sshd[5]",
        "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.20  user=root",
    ));
    assert!(is(&e, LoginAction::AuthFailure, Outcome::Failure));
    assert_eq!(
        (e.user.as_str(), e.source_ip.as_str(), e.service.as_str()),
        ("root", "192.0.2.20", "sshd")
    );
    let e = login(&syslog(
        "su[6]",
        "pam_unix(su:auth): authentication failure; logname=alice uid=1000 euid=0 tty=/dev/pts/0 ruser=alice rhost=  user=root",
    ));
    assert_eq!(
        (e.user.as_str(), e.target_user.as_str(), e.service.as_str()),
        ("alice", "root", "su")
    );
    let e = login(&syslog(
        "sshd[5]",
        "pam_unix(sshd:session): session opened for user root(uid=0) by (uid=0)",
    ));
    assert!(is(&e, LoginAction::SessionOpen, Outcome::Success));
    assert_eq!(e.user, "root");
    let e = login(&syslog(
        "sudo[7]",
        "pam_unix(sudo:session): session opened for user root(uid=0) by alice(uid=1000)",
    ));
    assert_eq!(
        (e.user.as_str(), e.target_user.as_str(), e.service.as_str()),
        ("alice", "root", "sudo")
    );
    let e = login(&syslog(
        "login[8]",
        "pam_unix(login:session): session opened for user root by LOGIN(uid=0)",
    ));
    assert_eq!((e.user.as_str(), e.service.as_str()), ("root", "login"));
    let e = login(&syslog(
        "sshd[5]",
        "pam_unix(sshd:session): session closed for user root",
    ));
    assert!(is(&e, LoginAction::SessionClose, Outcome::Success));
    let e = login(&syslog(
        "passwd[9]",
        "pam_unix(passwd:chauthtok): password changed for bob",
    ));
    assert!(is(&e, LoginAction::PasswdChange, Outcome::Success));
    assert_eq!(e.target_user, "bob");
    let e = login(&syslog(
        "sshd[5]",
        "pam_faillock(sshd:auth): Consecutive login failures for user root account temporarily locked",
    ));
    assert!(is(&e, LoginAction::Lockout, Outcome::Failure));
    assert_eq!(e.user, "root");
    let e = login(&syslog(
        "sshd[5]",
        "pam_tally2(sshd:auth): user bob (1001) tally 4, deny 3",
    ));
    assert!(is(&e, LoginAction::Lockout, Outcome::Failure));
    assert_eq!(e.user, "bob");
    let old = parse_line(
        b"Jun 14 15:16:02 combo sshd(pam_unix)[19937]: check pass; user unknown\r\n",
        &ctx(),
    );
    assert!(matches!(old, ParseOutcome::Ignored(_)));
    assert_eq!(
        parse_line(
            syslog(
                "sshd[5]",
                "pam_systemd(sshd:session): New sd-bus connection"
            )
            .as_bytes(),
            &ctx()
        ),
        ParseOutcome::Unrecognised
    );
}

#[test]
fn su_in_both_implementations() {
    let e = login(&syslog("su[10]", "(to root) alice on pts/1"));
    assert!(is(&e, LoginAction::Su, Outcome::Success));
    assert_eq!(
        (e.user.as_str(), e.target_user.as_str(), e.tty.as_str()),
        ("alice", "root", "pts/1")
    );
    let e = login(&syslog("su[10]", "FAILED SU (to root) mallory on pts/2"));
    assert!(is(&e, LoginAction::Su, Outcome::Failure));
    assert_eq!(e.user, "mallory");
    let e = login(&syslog("su[10]", "Successful su for postgres by root"));
    assert_eq!(
        (e.user.as_str(), e.target_user.as_str()),
        ("root", "postgres")
    );
    let e = login(&syslog("su[10]", "FAILED su for root by eve"));
    assert!(is(&e, LoginAction::Su, Outcome::Failure));
    assert!(matches!(
        parse_line(
            syslog("su[10]", "+ /dev/pts/0 root:postgres").as_bytes(),
            &ctx()
        ),
        ParseOutcome::Ignored(_)
    ));
}

#[test]
fn sudo_commands_and_refusals() {
    let e = login(&syslog(
        "sudo",
        "   alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id -u",
    ));
    assert!(is(&e, LoginAction::Sudo, Outcome::Success));
    assert_eq!(
        (e.user.as_str(), e.target_user.as_str(), e.tty.as_str()),
        ("alice", "root", "pts/0")
    );
    assert_eq!(e.command, "/usr/bin/id -u");
    let e = login(&syslog(
        "sudo",
        "bob : TTY=pts/1 ; PWD=/ ; USER=www-data ; ENV=A=1 ; COMMAND=/bin/sh -c echo a ; echo b",
    ));
    assert_eq!(
        (e.target_user.as_str(), e.command.as_str()),
        ("www-data", "/bin/sh -c echo a ; echo b")
    );
    let e = login(&syslog(
        "sudo",
        "  mallory : 3 incorrect password attempts ; TTY=pts/2 ; PWD=/tmp ; USER=root ; COMMAND=/bin/bash",
    ));
    assert!(is(&e, LoginAction::Sudo, Outcome::Failure));
    assert_eq!(
        (e.auth_method.as_str(), e.command.as_str()),
        ("password", "/bin/bash")
    );
    let e = login(&syslog(
        "sudo",
        "eve : user NOT in sudoers ; TTY=pts/3 ; PWD=/ ; USER=root ; COMMAND=/bin/cat /etc/shadow",
    ));
    assert!(is(&e, LoginAction::Sudo, Outcome::Failure));
    assert_eq!(e.user, "eve");
    let e = login(&syslog(
        "sudo",
        "eve : command not allowed ; TTY=pts/3 ; PWD=/ ; USER=root ; COMMAND=/bin/su",
    ));
    assert!(is(&e, LoginAction::Sudo, Outcome::Failure));
    assert_eq!(
        parse_line(
            syslog(
                "sudo",
                "unable to resolve host web1: Name or service not known"
            )
            .as_bytes(),
            &ctx()
        ),
        ParseOutcome::Unrecognised
    );
}

#[test]
fn console_logins() {
    let e = login("Jul  7 08:06:15 combo  -- root[2421]: ROOT LOGIN ON tty2");
    assert!(is(&e, LoginAction::Login, Outcome::Success));
    assert_eq!(
        (e.user.as_str(), e.tty.as_str(), e.service.as_str()),
        ("root", "tty2", "login")
    );
    let e = login(&syslog("login[3]", "ROOT LOGIN  on '/dev/tty1'"));
    assert_eq!(e.tty, "tty1");
    let e = login(&syslog(
        "login[3]",
        "LOGIN ON pts/4 BY alice FROM 192.0.2.30",
    ));
    assert_eq!(
        (e.user.as_str(), e.tty.as_str(), e.source_ip.as_str()),
        ("alice", "pts/4", "192.0.2.30")
    );
    let e = login(&syslog(
        "login[3]",
        "FAILED LOGIN (1) on '/dev/tty1' FOR 'UNKNOWN', Authentication failure",
    ));
    assert!(is(&e, LoginAction::Login, Outcome::Failure));
    assert_eq!((e.user.as_str(), e.tty.as_str()), ("UNKNOWN", "tty1"));
    let e = login(&syslog(
        "login[3]",
        "FAILED LOGIN 2 FROM tty3 FOR root, Authentication failure",
    ));
    assert_eq!((e.user.as_str(), e.tty.as_str()), ("root", "tty3"));
    let e = login(&syslog(
        "login[3]",
        "TOO MANY LOGIN TRIES (5) on '/dev/tty1' FOR 'root'",
    ));
    assert!(is(&e, LoginAction::MaxAuthExceeded, Outcome::Failure));
    let e = login(&syslog(
        "klogind[4]",
        "Authentication failed from 163.27.187.39 (163.27.187.39): Permission denied",
    ));
    assert!(is(&e, LoginAction::AuthFailure, Outcome::Failure));
    assert_eq!(e.source_ip, "163.27.187.39");
}

#[test]
fn account_and_group_administration() {
    let e = login(&syslog(
        "useradd[20]",
        "new user: name=backdoor, UID=0, GID=0, home=/root, shell=/bin/bash, from=/dev/pts/0",
    ));
    assert!(is(&e, LoginAction::UserAdd, Outcome::Success));
    assert_eq!(e.target_user, "backdoor");
    let e = login(&syslog("useradd[20]", "new group: name=dev, GID=1002"));
    assert!(is(&e, LoginAction::GroupAdd, Outcome::Success));
    assert_eq!(e.group, "dev");
    for (program, message) in [
        ("useradd[20]", "add 'bob' to group 'sudo'"),
        ("usermod[21]", "add 'bob' to group 'sudo'"),
    ] {
        let e = login(&syslog(program, message));
        assert!(is(&e, LoginAction::GroupMod, Outcome::Success));
        assert_eq!((e.target_user.as_str(), e.group.as_str()), ("bob", "sudo"));
    }
    let e = login(&syslog(
        "gpasswd[22]",
        "user bob added by root to group wheel",
    ));
    assert_eq!(
        (e.user.as_str(), e.target_user.as_str(), e.group.as_str()),
        ("root", "bob", "wheel")
    );
    let e = login(&syslog("userdel[23]", "delete user 'bob'"));
    assert!(is(&e, LoginAction::UserDel, Outcome::Success));
    let e = login(&syslog("userdel[23]", "removed group 'bob' owned by 'bob'"));
    assert!(is(&e, LoginAction::GroupDel, Outcome::Success));
    let e = login(&syslog(
        "groupdel[24]",
        "group 'dev' removed from /etc/group",
    ));
    assert_eq!(e.group, "dev");
    let e = login(&syslog(
        "usermod[21]",
        "change user 'bob' UID from '1001' to '0'",
    ));
    assert!(is(&e, LoginAction::UserMod, Outcome::Success));
    assert_eq!(e.target_user, "bob");
    let e = login(&syslog("usermod[21]", "lock user 'bob' password"));
    assert!(is(&e, LoginAction::UserMod, Outcome::Success));
    let e = login(&syslog(
        "passwd[25]",
        "password for 'bob' changed by 'root'",
    ));
    assert!(is(&e, LoginAction::PasswdChange, Outcome::Success));
    assert_eq!((e.user.as_str(), e.target_user.as_str()), ("root", "bob"));
    let e = login(&syslog("chage[26]", "changed password expiry for bob"));
    assert!(is(&e, LoginAction::UserMod, Outcome::Success));
    for message in [
        "add 'bob' to shadow group 'sudo'",
        "group added to /etc/gshadow: name=dev",
        "group added to /etc/group: name=dev, GID=1002",
    ] {
        assert!(matches!(
            parse_line(syslog("groupadd[1]", message).as_bytes(), &ctx()),
            ParseOutcome::Ignored(_)
        ));
    }
}

#[test]
fn broken_headers_are_malformed() {
    for line in [
        "Jan 32 10:00:00 h sshd[1]: Failed password for root from 1.2.3.4 port 1 ssh2",
        "Jan  5 1O:00:00 h sshd[1]: x",
        "Jan  5",
        "2026-01-05T25:00:00Z h sshd[1]: x",
        "2026-01-05 h sshd[1]: x",
        "Jan  5 10:00:00",
        "Jan  5 10:00:00x h sshd[1]: x",
    ] {
        assert!(
            matches!(
                parse_line(line.as_bytes(), &ctx()),
                ParseOutcome::Malformed(_)
            ),
            "{line:?}"
        );
    }
    assert_eq!(
        parse_line(b"Jan  5 10:00:00 ", &ctx()),
        ParseOutcome::Malformed(MalformedReason::MissingHostname)
    );
}

#[test]
fn hostile_input_never_panics() {
    let ctx = ctx();
    let mut samples: Vec<Vec<u8>> = vec![
        vec![0xff; 10 * 1024 * 1024],
        b"Jan  5 10:00:00 h sshd[\xff]: Invalid user \xff\xfe from 1.2.3.4 port 22".to_vec(),
        b"Jan  5 10:00:00 h sshd[99999999999999]: Invalid user a from 1.2.3.4 port 99999999"
            .to_vec(),
        b"\0\0\0\r\n".to_vec(),
        "Jan  5 10:00:00 h ".repeat(10_000).into_bytes(),
        "Failed password for ".repeat(100_000).into_bytes(),
        b"Jan  5 10:00:00 h sudo: : : COMMAND=".to_vec(),
        b"Jan  5 10:00:00 h su: (to ".to_vec(),
        b"Jan  5 10:00:00 h sshd: pam_unix(".to_vec(),
        b"Jan  5 10:00:00 h useradd: add ''".to_vec(),
        "2026-01-05T10:00:00.".to_string().into_bytes(),
        "é".repeat(1000).into_bytes(),
    ];
    for len in 0..40 {
        samples.push(
            "Jan  5 10:00:00 h sshd[1]: Failed password for root from 1.2.3.4 port 22 ssh2"
                .as_bytes()[..len]
                .to_vec(),
        );
    }
    for sample in &samples {
        let _ = parse_line(sample, &ctx);
    }
    let e = match parse_line(&samples[1], &ctx) {
        ParseOutcome::Parsed(p) => p.login,
        other => panic!("{other:?}"),
    };
    assert_eq!(e.user, "\u{fffd}\u{fffd}");
    assert_eq!(e.pid, 0);
}

#[test]
fn journald_messages_parse_without_a_header() {
    match parse_message(
        "sshd",
        "Accepted password for root from 10.0.0.1 port 22 ssh2",
    ) {
        MessageOutcome::Event(e) => {
            assert!(is(&e, LoginAction::SshAccept, Outcome::Success));
            assert_eq!(e.service, "sshd");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        parse_message(
            "kernel",
            "Accepted password for root from 10.0.0.1 port 22 ssh2"
        ),
        MessageOutcome::Unrecognised
    );
}

#[test]
fn debian12_pam_session_noise_is_ignored() {
    // Recorded on Debian 12 (pam 1.5.2) for sshd, su and sudo in a namespace.
    for line in [
        "2026-11-23T22:30:58.082397+00:00 vm sshd[22543]: pam_limits(sshd:session): Could not set limit for 'nofile' to soft=1024, hard=32768: Operation not permitted; uid=0,euid=0",
        "2026-11-23T22:30:41.741500+00:00 vm sudo: pam_limits(sudo:session): Could not set limit for 'core' to soft=0, hard=-1: Operation not permitted; uid=1001,euid=0",
        "2026-11-23T22:30:58.082581+00:00 vm sshd[22543]: pam_env(sshd:session): deprecated reading of user environment enabled",
        "2026-11-23T23:29:19.274367+00:00 vm sudo: pam_unix(sudo:auth): conversation failed",
        "2026-11-23T23:29:19.274392+00:00 vm sudo: pam_unix(sudo:auth): auth could not identify password for [sbbob]",
    ] {
        assert!(
            matches!(
                parse_line(line.as_bytes(), &ctx()),
                ParseOutcome::Ignored(_)
            ),
            "{line}"
        );
    }
    // Other pam_limits messages are still looked at.
    assert_eq!(
        parse_line(
            syslog("sshd[1]", "pam_limits(sshd:session): something new").as_bytes(),
            &ctx()
        ),
        ParseOutcome::Unrecognised
    );
}
