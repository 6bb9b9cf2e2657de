//! [`Role`]s and the [`Roles`] set a configured user holds.

use std::fmt;

use super::AuthConfigError;

/// What a user may do. Roles come from the configuration, never from the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// May read its own private channels.
    Viewer = 0,
    /// Viewer, plus placing and cancelling orders.
    Trader = 1,
    /// May publish `signal` and `bot_status` messages (implies nothing else: a bot that only
    /// publishes cannot read private channels unless it is also a viewer).
    Publisher = 2,
    /// Everything.
    Admin = 3,
    /// May replay recorded journals over `/replay` (market data, and its own private
    /// channels there), without seeing anything live that `viewer` would.
    Replay = 4,
}

impl Role {
    /// Every role, in order.
    pub const ALL: [Role; 5] = [
        Role::Viewer,
        Role::Trader,
        Role::Publisher,
        Role::Admin,
        Role::Replay,
    ];

    /// The configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Trader => "trader",
            Role::Publisher => "publisher",
            Role::Admin => "admin",
            Role::Replay => "replay",
        }
    }

    /// Parses a configuration name (exact, lower case).
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// This role and every role it implies, as bits.
    fn closure(self) -> u8 {
        match self {
            Role::Viewer | Role::Publisher | Role::Replay => 1 << self as u8,
            Role::Trader => 1 << Role::Trader as u8 | 1 << Role::Viewer as u8,
            Role::Admin => 0b1_1111,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of roles, closed under implication: adding `Trader` adds `Viewer`, adding `Admin`
/// adds every role, so [`Roles::contains`] is one bit test.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Roles(u8);

impl Roles {
    /// No roles: the user authenticates but may do nothing.
    pub const NONE: Roles = Roles(0);

    /// Whether the set grants `role` (directly or by implication).
    #[inline]
    pub fn contains(self, role: Role) -> bool {
        self.0 & 1 << role as u8 != 0
    }

    /// The set with `role` and the roles it implies added.
    #[must_use]
    pub fn with(self, role: Role) -> Roles {
        Roles(self.0 | role.closure())
    }

    /// Parses configuration names such as `["trader", "publisher"]`.
    ///
    /// # Errors
    /// [`AuthConfigError::UnknownRole`] for a name that is not a role.
    pub fn from_names<'a>(
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<Roles, AuthConfigError> {
        names.into_iter().try_fold(Roles::NONE, |acc, n| {
            Role::parse(n)
                .map(|r| acc.with(r))
                .ok_or_else(|| AuthConfigError::UnknownRole(n.chars().take(64).collect()))
        })
    }

    /// The roles in the set (implied ones included), in [`Role::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Role> {
        Role::ALL.into_iter().filter(move |r| self.contains(*r))
    }
}

impl From<Role> for Roles {
    fn from(role: Role) -> Roles {
        Roles::NONE.with(role)
    }
}

impl FromIterator<Role> for Roles {
    fn from_iter<I: IntoIterator<Item = Role>>(iter: I) -> Roles {
        iter.into_iter().fold(Roles::NONE, Roles::with)
    }
}

/// Comma-separated names, e.g. `viewer,trader`; empty for no roles.
impl fmt::Display for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(r.as_str())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Roles({self})")
    }
}
