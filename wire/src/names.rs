//! Stable lowercase names for the protobuf enums and event kinds.
//!
//! Storage columns, JSON output and Sigma field values use these strings, so they
//! never change once released. `from_name` is the inverse used when reading back.

use crate::v1::{
    AckStatus, CheckStatus, Direction, FileOp, LoginAction, NetAction, Outcome, event::Body,
};

/// The kind of an event body: `login`, `file`, `network`, `check`, `status`, `process`, or `none`.
pub fn body_kind(body: Option<&Body>) -> &'static str {
    match body {
        Some(Body::Login(_)) => "login",
        Some(Body::File(_)) => "file",
        Some(Body::Network(_)) => "network",
        Some(Body::Check(_)) => "check",
        Some(Body::Status(_)) => "status",
        Some(Body::Process(_)) => "process",
        None => "none",
    }
}

macro_rules! enum_names {
    ($ty:ident { $($variant:ident => $name:literal),* $(,)? }) => {
        impl $ty {
            /// Stable lowercase name.
            pub fn name(self) -> &'static str {
                match self { $($ty::$variant => $name),* }
            }
            /// Inverse of [`Self::name`].
            pub fn from_name(s: &str) -> Option<Self> {
                match s { $($name => Some($ty::$variant),)* _ => None }
            }
        }
    };
}

enum_names!(Outcome { Unspecified => "", Success => "success", Failure => "failure" });
enum_names!(LoginAction {
    Unspecified => "",
    SshAccept => "ssh_accept",
    SshFail => "ssh_fail",
    InvalidUser => "invalid_user",
    Su => "su",
    Sudo => "sudo",
    SessionOpen => "session_open",
    SessionClose => "session_close",
    Logout => "logout",
    UserAdd => "user_add",
    UserDel => "user_del",
    UserMod => "user_mod",
    GroupAdd => "group_add",
    GroupDel => "group_del",
    GroupMod => "group_mod",
    PasswdChange => "passwd_change",
    Lockout => "lockout",
    AuthFailure => "auth_failure",
    SshDisconnect => "ssh_disconnect",
    MaxAuthExceeded => "max_auth_exceeded",
    BreakInAttempt => "break_in_attempt",
    Login => "login",
    Reboot => "reboot",
});
enum_names!(FileOp {
    Unspecified => "",
    Create => "create",
    Modify => "modify",
    Delete => "delete",
    Rename => "rename",
    Attrib => "attrib",
    Rescan => "rescan",
});
enum_names!(NetAction {
    Unspecified => "",
    Connect => "connect",
    Accept => "accept",
    Listen => "listen",
    ListenClosed => "listen_closed",
    DnsQuery => "dns_query",
    Flow => "flow",
    Icmp => "icmp",
});
enum_names!(Direction { Unspecified => "", Inbound => "inbound", Outbound => "outbound", Local => "local" });
enum_names!(CheckStatus { Unspecified => "", Pass => "pass", Fail => "fail", Error => "error" });
enum_names!(AckStatus { Unspecified => "", Stored => "stored", Duplicate => "duplicate", Rejected => "rejected" });

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in [LoginAction::SshFail, LoginAction::Sudo, LoginAction::Reboot] {
            assert_eq!(LoginAction::from_name(a.name()), Some(a));
        }
        assert_eq!(FileOp::from_name("rename"), Some(FileOp::Rename));
        assert_eq!(NetAction::from_name("nope"), None);
    }
}
