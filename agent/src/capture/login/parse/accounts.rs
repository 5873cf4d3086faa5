//! Account and group administration by the shadow utilities: `useradd`, `userdel`,
//! `usermod`, `groupadd`, `groupdel`, `groupmod`, `gpasswd`, `passwd`, `chpasswd`,
//! `chage`, `chfn`, `chsh`.
//!
//! Group membership changes (`add 'bob' to group 'sudo'` from useradd or `usermod
//! -aG`, `user bob added by root to group sudo` from gpasswd) are `group_mod` events
//! with `target_user` and `group` set. Lines that only repeat another line for the
//! shadow files (`/etc/gshadow`, `shadow group`) are ignored.

use shaobing_wire::v1::{LoginAction, LoginEvent, Outcome};

use super::MessageOutcome;
use super::login_event;
use super::text::{comma_field, quoted_after};

const REPEATS_SHADOW: &str = "repeats the /etc/group line for /etc/gshadow";

/// Parses one message of account tool `program`.
pub(super) fn parse(program: &str, message: &str) -> MessageOutcome {
    if is_shadow_repeat(message) {
        return MessageOutcome::Ignored(REPEATS_SHADOW);
    }
    if message.starts_with("change '") && message.contains("' in group '") {
        return MessageOutcome::Ignored("repeats the user rename for each group");
    }
    if message.starts_with("group '") && message.ends_with("' removed") {
        return MessageOutcome::Ignored("repeats the /etc/group removal");
    }
    if message.starts_with("group added to ") {
        return MessageOutcome::Ignored("repeats the new group line");
    }
    let event = match program {
        "gpasswd" => gpasswd(message),
        "passwd" => passwd(message),
        _ => shadow_tool(message),
    };
    match event {
        Some(event) => MessageOutcome::Event(event),
        None => MessageOutcome::Unrecognised,
    }
}

fn is_shadow_repeat(message: &str) -> bool {
    message.contains("shadow group '")
        || message.starts_with("group added to /etc/gshadow")
        || (message.starts_with("group '") && message.ends_with("removed from /etc/gshadow"))
        || message.starts_with("group changed in /etc/gshadow")
}

fn account_event(action: LoginAction, outcome: Outcome, target: &str) -> LoginEvent {
    let mut event = login_event(action, outcome);
    event.target_user = target.to_string();
    event
}

fn group_event(action: LoginAction, group: &str) -> LoginEvent {
    let mut event = login_event(action, Outcome::Success);
    event.group = group.to_string();
    event
}

/// Messages of useradd, userdel, usermod, groupadd, groupdel, groupmod, chage, chfn, chsh.
fn shadow_tool(message: &str) -> Option<LoginEvent> {
    if let Some(rest) = message.strip_prefix("new user: ") {
        let name = comma_field(rest, "name")?;
        return Some(account_event(LoginAction::UserAdd, Outcome::Success, name));
    }
    if let Some(rest) = message.strip_prefix("new group: ") {
        return Some(group_event(
            LoginAction::GroupAdd,
            comma_field(rest, "name")?,
        ));
    }
    if let Some((user, rest)) = quoted_after(message, "add ") {
        let (group, _) = quoted_after(rest, " to group ")?;
        let mut event = group_event(LoginAction::GroupMod, group);
        event.target_user = user.to_string();
        return Some(event);
    }
    if let Some((user, rest)) = quoted_after(message, "delete ") {
        let (group, _) = quoted_after(rest, " from group ")?;
        let mut event = group_event(LoginAction::GroupMod, group);
        event.target_user = user.to_string();
        return Some(event);
    }
    if let Some((user, _)) = quoted_after(message, "delete user ") {
        return Some(account_event(LoginAction::UserDel, Outcome::Success, user));
    }
    if let Some((user, _)) = quoted_after(message, "failed adding user ") {
        return Some(account_event(LoginAction::UserAdd, Outcome::Failure, user));
    }
    if let Some((group, _)) = quoted_after(message, "removed group ") {
        return Some(group_event(LoginAction::GroupDel, group));
    }
    if let Some((group, rest)) = quoted_after(message, "group ") {
        return (rest == " removed from /etc/group")
            .then(|| group_event(LoginAction::GroupDel, group));
    }
    if let Some(rest) = message.strip_prefix("group changed in /etc/group (") {
        let group = rest
            .strip_prefix("group ")?
            .split(['/', ',', ')', ' '])
            .next()?;
        return Some(group_event(LoginAction::GroupMod, group));
    }
    if let Some((user, rest)) = quoted_after(message, "change user ") {
        let action = if rest == " password" {
            LoginAction::PasswdChange
        } else {
            LoginAction::UserMod
        };
        return Some(account_event(action, Outcome::Success, user));
    }
    if let Some((user, _)) = quoted_after(message, "change user name ") {
        return Some(account_event(LoginAction::UserMod, Outcome::Success, user));
    }
    for prefix in ["lock user ", "unlock user ", "changed user "] {
        if let Some((user, _)) = quoted_after(message, prefix) {
            return Some(account_event(LoginAction::UserMod, Outcome::Success, user));
        }
    }
    if let Some(user) = message.strip_prefix("changed password expiry for ") {
        return Some(account_event(
            LoginAction::UserMod,
            Outcome::Success,
            user.trim(),
        ));
    }
    None
}

/// `user X added by A to group G`, `user X removed by A from group G`,
/// `members of group G set by A to L`.
fn gpasswd(message: &str) -> Option<LoginEvent> {
    if let Some(rest) = message.strip_prefix("user ") {
        let (target, rest) = rest.split_once(' ')?;
        let rest = rest
            .strip_prefix("added by ")
            .or_else(|| rest.strip_prefix("removed by "))?;
        let (actor, group) = rest
            .split_once(" to group ")
            .or_else(|| rest.split_once(" from group "))?;
        let mut event = group_event(LoginAction::GroupMod, group.trim());
        event.user = actor.to_string();
        event.target_user = target.to_string();
        return Some(event);
    }
    if let Some(rest) = message.strip_prefix("members of group ") {
        let (group, rest) = rest.split_once(" set by ")?;
        let actor = rest.split(" to ").next().unwrap_or(rest);
        let mut event = group_event(LoginAction::GroupMod, group);
        event.user = actor.to_string();
        return Some(event);
    }
    None
}

/// `password for 'X' changed by 'A'` (shadow passwd).
fn passwd(message: &str) -> Option<LoginEvent> {
    let (target, rest) = quoted_after(message, "password for ")?;
    let (actor, _) = quoted_after(rest, " changed by ")?;
    let mut event = account_event(LoginAction::PasswdChange, Outcome::Success, target);
    event.user = actor.to_string();
    Some(event)
}
