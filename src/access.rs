//! Access control: the permissions patchbay knows, the grants that hand them to guild roles,
//! and the one decision every front asks for before it acts ("may this caller do this, and
//! why?"). Pure: callers arrive as [`Caller`] (a Discord [`Member`] with our own [`Snowflake`]
//! ids, an API key with its scopes, or patchbay's own process), so the Discord front, the REST
//! API, the scheduler and tests all reach the same verdict from the same facts.
//!
//! The rules for a member, in order:
//! 1. The guild owner and members with Discord's Administrator permission hold every permission.
//! 2. `status.view` is granted to everyone unless `[bot].public_status = false`.
//! 3. Otherwise a member holds a permission when one of their roles is granted it, by a
//!    `[[grant]]` in the config (in every guild) or by `/perms grant` (in that guild).
//!
//! An API key holds exactly the permissions of its scopes. The scheduler and the command line
//! run on the operator's machine with the config file's authority, and hold every permission.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::model::Snowflake;

/// Something a member may be allowed to do. Serialized as its stable name (`status.view`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    /// `/status`: read integration health.
    StatusView,
    /// The "Re-check now" button: run a live check.
    StatusRecheck,
    /// `/sync`: start a Notion sync.
    SyncRun,
    /// `/action`: run a Retool workflow action.
    ActionRun,
    /// Approve an action that needs a second person.
    ActionApprove,
    /// `/alerts`: acknowledge, silence and unsilence.
    AlertsManage,
    /// `/audit`: read the audit log.
    AuditView,
    /// `/perms`: grant and revoke permissions.
    PermsManage,
}

impl Permission {
    /// Every permission, in the order they are listed to users.
    pub const ALL: [Permission; 8] = [
        Permission::StatusView,
        Permission::StatusRecheck,
        Permission::SyncRun,
        Permission::ActionRun,
        Permission::ActionApprove,
        Permission::AlertsManage,
        Permission::AuditView,
        Permission::PermsManage,
    ];

    /// The stable name users type and the database stores, e.g. `status.view`.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::StatusView => "status.view",
            Permission::StatusRecheck => "status.recheck",
            Permission::SyncRun => "sync.run",
            Permission::ActionRun => "action.run",
            Permission::ActionApprove => "action.approve",
            Permission::AlertsManage => "alerts.manage",
            Permission::AuditView => "audit.view",
            Permission::PermsManage => "perms.manage",
        }
    }
}

impl Serialize for Permission {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Permission {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Permission::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Permission::ALL.iter().map(|p| p.as_str()).collect();
                format!("unknown permission {s:?}; known: {}", names.join(", "))
            })
    }
}

/// Where a grant comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantSource {
    /// A `[[grant]]` table in the config: applies in every guild, cannot be revoked from Discord.
    Config,
    /// `/perms grant` in one guild, by a member.
    Command {
        /// The guild it was granted in.
        guild: Snowflake,
        /// Who granted it.
        by: Snowflake,
    },
}

/// A role holding a permission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The role (a Discord role id).
    pub role: Snowflake,
    /// The permission it holds.
    pub permission: Permission,
    /// Where the grant comes from.
    pub source: GrantSource,
}

impl Grant {
    /// Whether this grant counts in `guild`: config grants everywhere, command grants where made.
    pub fn applies_in(&self, guild: Snowflake) -> bool {
        match self.source {
            GrantSource::Config => true,
            GrantSource::Command { guild: made_in, .. } => made_in == guild,
        }
    }
}

/// The facts about a member that decide what they may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The user.
    pub user: Snowflake,
    /// The guild; `None` in a direct message.
    pub guild: Option<Snowflake>,
    /// The member's roles in that guild.
    pub roles: Vec<Snowflake>,
    /// Whether the member owns the guild.
    pub is_owner: bool,
    /// Whether one of the member's roles has Discord's Administrator permission.
    pub is_administrator: bool,
}

/// Who asks, with the facts that decide what they may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A Discord member (or a user in a direct message).
    Member(Member),
    /// A REST API key, with the permissions it was issued for.
    ApiKey {
        /// The permissions the key holds.
        scopes: Vec<Permission>,
    },
    /// patchbay's own process (the scheduler, the command line): it runs on the operator's
    /// machine with the config file's authority.
    Local,
}

impl Caller {
    /// The guild a member asks from (`None` for every other caller, and in a DM).
    pub fn guild(&self) -> Option<Snowflake> {
        match self {
            Caller::Member(member) => member.guild,
            Caller::ApiKey { .. } | Caller::Local => None,
        }
    }
}

/// Why a caller holds a permission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed {
    /// The guild owner holds everything.
    Owner,
    /// Administrators hold everything.
    Administrator,
    /// `status.view` is public in this deployment.
    Public,
    /// A role of the member is granted it.
    Role {
        /// The role.
        role: Snowflake,
        /// Whether the grant is from the config or a command.
        source: GrantSource,
    },
    /// The API key was issued with it.
    Scope,
    /// patchbay's own process (scheduler, command line).
    Local,
}

impl Allowed {
    /// The stable text the audit log stores: `owner`, `administrator`, `public`,
    /// `role:<id>:config`, `role:<id>:command`, `scope`, `local`.
    pub fn code(&self) -> String {
        match self {
            Allowed::Owner => "owner".into(),
            Allowed::Administrator => "administrator".into(),
            Allowed::Public => "public".into(),
            Allowed::Role {
                role,
                source: GrantSource::Config,
            } => format!("role:{}:config", role.0),
            Allowed::Role { role, .. } => format!("role:{}:command", role.0),
            Allowed::Scope => "scope".into(),
            Allowed::Local => "local".into(),
        }
    }

    /// Reads [`Allowed::code`] back. A command grant's guild and granter are not stored with
    /// the entry, so they come back as zero.
    pub fn from_code(code: &str) -> Option<Allowed> {
        Some(match code {
            "owner" => Allowed::Owner,
            "administrator" => Allowed::Administrator,
            "public" => Allowed::Public,
            "scope" => Allowed::Scope,
            "local" => Allowed::Local,
            role => {
                let mut parts = role.strip_prefix("role:")?.split(':');
                let role = Snowflake(parts.next()?.parse().ok()?);
                let source = match parts.next()? {
                    "config" => GrantSource::Config,
                    "command" => GrantSource::Command {
                        guild: Snowflake(0),
                        by: Snowflake(0),
                    },
                    _ => return None,
                };
                Allowed::Role { role, source }
            }
        })
    }
}

impl fmt::Display for Allowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Allowed::Owner => f.write_str("guild owner"),
            Allowed::Administrator => f.write_str("Administrator permission"),
            Allowed::Public => f.write_str("public to everyone"),
            Allowed::Role {
                role,
                source: GrantSource::Config,
            } => write!(f, "role {} (config grant)", role.0),
            Allowed::Role { role, .. } => write!(f, "role {} (granted by command)", role.0),
            Allowed::Scope => f.write_str("the API key's scope"),
            Allowed::Local => f.write_str("patchbay's own process"),
        }
    }
}

/// Why a member may not do something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// Commands are refused outside guilds.
    DirectMessage,
    /// None of the member's roles holds the permission.
    Missing(Permission),
    /// The action is limited to roles the member holds none of.
    ActionRoles {
        /// The action.
        action: String,
        /// The roles it is limited to.
        roles: Vec<Snowflake>,
    },
    /// The action is limited by roles, and this API key is not among them.
    ActionKey {
        /// The action.
        action: String,
        /// The key's name.
        key: String,
    },
    /// A member may not approve their own request.
    OwnRequest,
    /// Only the member who asked may confirm or cancel a request.
    NotRequester,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denied::DirectMessage => {
                f.write_str("patchbay's commands work in a server, not in direct messages")
            }
            Denied::Missing(permission) => write!(f, "you need the {permission} permission"),
            Denied::ActionRoles { action, roles } => {
                let roles: Vec<String> = roles.iter().map(|r| r.0.to_string()).collect();
                write!(
                    f,
                    "{action} is limited to members with one of the roles {}; you hold none of them",
                    roles.join(", ")
                )
            }
            Denied::ActionKey { action, key } => write!(
                f,
                "{action} is limited by roles: add \"apikey:{key}\" to its roles for this key to run it"
            ),
            Denied::OwnRequest => f.write_str(
                "you asked for this action: another member holding action.approve must approve it",
            ),
            Denied::NotRequester => {
                f.write_str("only the member who asked for this action may confirm or cancel it")
            }
        }
    }
}

/// The whole access policy of a deployment: config grants plus those made by command.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Whether `status.view` is everyone's (`[bot].public_status`, on by default).
    pub public_status: bool,
    /// Every grant, from both sources.
    pub grants: Vec<Grant>,
}

impl Policy {
    /// Decides whether `caller` holds `permission`, and why.
    pub fn admit(&self, caller: &Caller, permission: Permission) -> Result<Allowed, Denied> {
        match caller {
            Caller::Member(member) => self.decide(member, permission),
            Caller::ApiKey { scopes } if scopes.contains(&permission) => Ok(Allowed::Scope),
            Caller::ApiKey { .. } => Err(Denied::Missing(permission)),
            Caller::Local => Ok(Allowed::Local),
        }
    }

    /// Decides whether `member` holds `permission`, and why.
    pub fn decide(&self, member: &Member, permission: Permission) -> Result<Allowed, Denied> {
        let Some(guild) = member.guild else {
            return Err(Denied::DirectMessage);
        };
        if member.is_owner {
            return Ok(Allowed::Owner);
        }
        if member.is_administrator {
            return Ok(Allowed::Administrator);
        }
        if permission == Permission::StatusView && self.public_status {
            return Ok(Allowed::Public);
        }
        self.grants
            .iter()
            .filter(|grant| {
                grant.permission == permission
                    && grant.applies_in(guild)
                    && member.roles.contains(&grant.role)
            })
            // Config grants first: they are the ones nobody can take away from Discord.
            .min_by_key(|grant| !matches!(grant.source, GrantSource::Config))
            .map(|grant| Allowed::Role {
                role: grant.role,
                source: grant.source.clone(),
            })
            .ok_or(Denied::Missing(permission))
    }

    /// Every permission `member` holds, each with its reason (for `/perms check` and `/help`).
    pub fn explain(&self, member: &Member) -> Vec<(Permission, Result<Allowed, Denied>)> {
        Permission::ALL
            .into_iter()
            .map(|permission| (permission, self.decide(member, permission)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUILD: Snowflake = Snowflake(1);
    const OTHER_GUILD: Snowflake = Snowflake(2);
    const OPS: Snowflake = Snowflake(10);
    const DEVS: Snowflake = Snowflake(11);

    fn member(roles: &[Snowflake]) -> Member {
        Member {
            user: Snowflake(100),
            guild: Some(GUILD),
            roles: roles.to_vec(),
            is_owner: false,
            is_administrator: false,
        }
    }

    fn policy(public_status: bool) -> Policy {
        Policy {
            public_status,
            grants: vec![
                Grant {
                    role: OPS,
                    permission: Permission::AlertsManage,
                    source: GrantSource::Config,
                },
                Grant {
                    role: DEVS,
                    permission: Permission::SyncRun,
                    source: GrantSource::Command {
                        guild: GUILD,
                        by: Snowflake(5),
                    },
                },
                Grant {
                    role: OPS,
                    permission: Permission::SyncRun,
                    source: GrantSource::Command {
                        guild: OTHER_GUILD,
                        by: Snowflake(5),
                    },
                },
            ],
        }
    }

    #[test]
    fn names_round_trip() {
        for permission in Permission::ALL {
            assert_eq!(permission.as_str().parse::<Permission>(), Ok(permission));
        }
        assert!(
            "status.edit"
                .parse::<Permission>()
                .unwrap_err()
                .contains("status.view")
        );
    }

    #[test]
    fn owner_and_administrator_hold_everything() {
        let policy = policy(false);
        let owner = Member {
            is_owner: true,
            ..member(&[])
        };
        let admin = Member {
            is_administrator: true,
            ..member(&[])
        };
        for permission in Permission::ALL {
            assert_eq!(policy.decide(&owner, permission), Ok(Allowed::Owner));
            assert_eq!(
                policy.decide(&admin, permission),
                Ok(Allowed::Administrator)
            );
        }
    }

    #[test]
    fn status_is_public_unless_turned_off() {
        let nobody = member(&[]);
        assert_eq!(
            policy(true).decide(&nobody, Permission::StatusView),
            Ok(Allowed::Public)
        );
        assert_eq!(
            policy(false).decide(&nobody, Permission::StatusView),
            Err(Denied::Missing(Permission::StatusView))
        );
        assert_eq!(
            policy(true).decide(&nobody, Permission::StatusRecheck),
            Err(Denied::Missing(Permission::StatusRecheck))
        );
    }

    #[test]
    fn grants_apply_by_role_and_guild() {
        let policy = policy(true);
        let ops = member(&[OPS]);
        // Config grants apply in every guild.
        assert_eq!(
            policy.decide(&ops, Permission::AlertsManage),
            Ok(Allowed::Role {
                role: OPS,
                source: GrantSource::Config
            })
        );
        // A command grant made in another guild does not.
        assert_eq!(
            policy.decide(&ops, Permission::SyncRun),
            Err(Denied::Missing(Permission::SyncRun))
        );
        let dev = member(&[DEVS]);
        assert!(matches!(
            policy.decide(&dev, Permission::SyncRun),
            Ok(Allowed::Role {
                role: DEVS,
                source: GrantSource::Command { .. }
            })
        ));
        assert_eq!(
            policy.decide(&dev, Permission::PermsManage),
            Err(Denied::Missing(Permission::PermsManage))
        );
    }

    #[test]
    fn direct_messages_are_refused_even_for_public_status() {
        let dm = Member {
            guild: None,
            ..member(&[OPS])
        };
        assert_eq!(
            policy(true).decide(&dm, Permission::StatusView),
            Err(Denied::DirectMessage)
        );
    }

    #[test]
    fn denials_name_the_permission() {
        let text = Denied::Missing(Permission::SyncRun).to_string();
        assert_eq!(text, "you need the sync.run permission");
    }

    #[test]
    fn api_keys_hold_their_scopes_and_the_local_process_everything() {
        let policy = policy(false);
        let key = Caller::ApiKey {
            scopes: vec![Permission::StatusView],
        };
        assert_eq!(
            policy.admit(&key, Permission::StatusView),
            Ok(Allowed::Scope)
        );
        assert_eq!(
            policy.admit(&key, Permission::SyncRun),
            Err(Denied::Missing(Permission::SyncRun))
        );
        for permission in Permission::ALL {
            assert_eq!(policy.admit(&Caller::Local, permission), Ok(Allowed::Local));
        }
        assert_eq!(
            policy.admit(&Caller::Member(member(&[OPS])), Permission::AlertsManage),
            policy.decide(&member(&[OPS]), Permission::AlertsManage)
        );
    }

    #[test]
    fn allowed_codes_round_trip() {
        for allowed in [
            Allowed::Owner,
            Allowed::Administrator,
            Allowed::Public,
            Allowed::Scope,
            Allowed::Local,
            Allowed::Role {
                role: OPS,
                source: GrantSource::Config,
            },
        ] {
            assert_eq!(Allowed::from_code(&allowed.code()), Some(allowed));
        }
        assert_eq!(
            Allowed::from_code("role:10:command").map(|a| a.code()),
            Some("role:10:command".to_string())
        );
        assert_eq!(Allowed::from_code("role:x:config"), None);
    }

    #[test]
    fn explain_lists_every_permission() {
        let explained = policy(true).explain(&member(&[OPS]));
        assert_eq!(explained.len(), Permission::ALL.len());
        let held: Vec<Permission> = explained
            .iter()
            .filter(|(_, verdict)| verdict.is_ok())
            .map(|(permission, _)| *permission)
            .collect();
        assert_eq!(held, [Permission::StatusView, Permission::AlertsManage]);
    }
}
