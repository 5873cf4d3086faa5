//! The four operator roles (三员分立 plus 合规专员). Every account has exactly one.

use serde::{Deserialize, Serialize};

use super::i18n::Lang;

/// An operator role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 系统管理员: agents, users, settings.
    Sysadmin,
    /// 安全管理员: rules, alert triage, notifications.
    Secadmin,
    /// 审计管理员: reads the audit log, nothing else.
    Auditor,
    /// 合规专员: reads reports and exports them.
    Compliance,
}

impl Role {
    /// Every role, in display order.
    pub const ALL: [Role; 4] = [
        Role::Sysadmin,
        Role::Secadmin,
        Role::Auditor,
        Role::Compliance,
    ];

    /// Stable name stored in the database and used in the API.
    pub fn name(self) -> &'static str {
        match self {
            Role::Sysadmin => "sysadmin",
            Role::Secadmin => "secadmin",
            Role::Auditor => "auditor",
            Role::Compliance => "compliance",
        }
    }

    /// Inverse of [`Role::name`].
    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == name)
    }

    /// Label shown to operators.
    pub fn label(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (Role::Sysadmin, Lang::Zh) => "系统管理员",
            (Role::Secadmin, Lang::Zh) => "安全管理员",
            (Role::Auditor, Lang::Zh) => "审计管理员",
            (Role::Compliance, Lang::Zh) => "合规专员",
            (Role::Sysadmin, Lang::En) => "System administrator",
            (Role::Secadmin, Lang::En) => "Security administrator",
            (Role::Auditor, Lang::En) => "Auditor",
            (Role::Compliance, Lang::En) => "Compliance officer",
        }
    }

    /// The page an operator with this role lands on after login.
    pub fn landing_page(self) -> &'static str {
        match self {
            Role::Sysadmin | Role::Secadmin => "/overview",
            Role::Auditor => "/audit",
            Role::Compliance => "/reports",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_is_refused() {
        for role in Role::ALL {
            assert_eq!(Role::from_name(role.name()), Some(role));
        }
        assert_eq!(Role::from_name("root"), None);
        assert_eq!(Role::Auditor.label(Lang::Zh), "审计管理员");
    }
}
