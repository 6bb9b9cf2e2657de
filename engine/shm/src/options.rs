//! What the writer's files look like: sizes, modes and groups, checked before anything is
//! created.

use crate::error::OptionsError;
use crate::layout::{MarketLayout, UserLayout, MAX_ENTRIES, MAX_INSTRUMENTS, MAX_LEVELS};

/// Default levels per side.
pub const DEFAULT_LEVELS: u32 = 20;
/// Default instrument slots.
pub const DEFAULT_MAX_INSTRUMENTS: u32 = 1024;
/// Default room for positions in a user file.
pub const DEFAULT_MAX_POSITIONS: u32 = 64;
/// Default room for open orders in a user file.
pub const DEFAULT_MAX_ORDERS: u32 = 256;
/// Default mode of the market file: readable by every local account (it holds public
/// market data), writable by the engine only.
pub const DEFAULT_MARKET_MODE: u32 = 0o644;
/// Default mode of a user file: the engine's OS account only.
pub const DEFAULT_USER_MODE: u32 = 0o600;

/// The market file's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarketOptions {
    /// Levels per side (1 to [`MAX_LEVELS`]).
    pub levels: u32,
    /// Instrument slots (1 to [`MAX_INSTRUMENTS`]); instruments beyond are not published.
    pub max_instruments: u32,
    /// Permission bits of the file.
    pub mode: u32,
}

impl Default for MarketOptions {
    fn default() -> Self {
        MarketOptions {
            levels: DEFAULT_LEVELS,
            max_instruments: DEFAULT_MAX_INSTRUMENTS,
            mode: DEFAULT_MARKET_MODE,
        }
    }
}

impl MarketOptions {
    /// Checks every value.
    ///
    /// # Errors
    /// The first value out of range.
    pub fn validate(&self) -> Result<MarketLayout, OptionsError> {
        if !(1..=MAX_LEVELS).contains(&self.levels) {
            return Err(OptionsError::Levels {
                value: u64::from(self.levels),
                max: MAX_LEVELS,
            });
        }
        size("max_instruments", self.max_instruments, MAX_INSTRUMENTS)?;
        check_mode("market_mode", self.mode, true)?;
        Ok(MarketLayout {
            levels: self.levels,
            max_instruments: self.max_instruments,
        })
    }
}

/// A user file's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserOptions {
    /// Room for positions (1 to [`MAX_ENTRIES`]).
    pub max_positions: u32,
    /// Room for open orders (1 to [`MAX_ENTRIES`]).
    pub max_orders: u32,
    /// Permission bits of the file (never readable by other accounts).
    pub mode: u32,
    /// The file's group; `None` keeps the engine's.
    pub group: Option<u32>,
}

impl Default for UserOptions {
    fn default() -> Self {
        UserOptions {
            max_positions: DEFAULT_MAX_POSITIONS,
            max_orders: DEFAULT_MAX_ORDERS,
            mode: DEFAULT_USER_MODE,
            group: None,
        }
    }
}

impl UserOptions {
    /// Checks every value.
    ///
    /// # Errors
    /// The first value out of range.
    pub fn validate(&self) -> Result<UserLayout, OptionsError> {
        size("max_positions", self.max_positions, MAX_ENTRIES)?;
        size("max_orders", self.max_orders, MAX_ENTRIES)?;
        check_mode("user_mode", self.mode, false)?;
        Ok(UserLayout {
            max_positions: self.max_positions,
            max_orders: self.max_orders,
        })
    }
}

fn size(key: &'static str, value: u32, max: u32) -> Result<(), OptionsError> {
    if (1..=max).contains(&value) {
        Ok(())
    } else {
        Err(OptionsError::Size {
            key,
            value: u64::from(value),
            max,
        })
    }
}

fn mode_err(key: &'static str, value: u32, reason: &'static str) -> OptionsError {
    OptionsError::Mode {
        key,
        value: format!("{value:04o}"),
        reason,
    }
}

/// Checks permission bits: the engine reads and writes (`u+rw`), nobody else writes, nothing
/// is executable; `others_may_read` is false for user files, whose accounts no other OS user
/// may read.
///
/// # Errors
/// [`OptionsError::Mode`] with the reason.
pub fn check_mode(key: &'static str, mode: u32, others_may_read: bool) -> Result<(), OptionsError> {
    if mode & !0o777 != 0 {
        return Err(mode_err(key, mode, "has bits beyond 0777"));
    }
    if mode & 0o600 != 0o600 {
        return Err(mode_err(
            key,
            mode,
            "must let the engine read and write (0600 at least)",
        ));
    }
    if mode & 0o111 != 0 {
        return Err(mode_err(key, mode, "must not be executable"));
    }
    if mode & 0o022 != 0 {
        return Err(mode_err(
            key,
            mode,
            "must not let other accounts write (only the engine writes)",
        ));
    }
    if !others_may_read && mode & 0o004 != 0 {
        return Err(mode_err(
            key,
            mode,
            "lets every OS account read a user's orders and positions: use 0600 or 0640 with a group",
        ));
    }
    Ok(())
}

/// Parses an octal mode as written in a config (`"0640"`, `"640"`, `"0o640"`).
///
/// # Errors
/// [`OptionsError::Mode`] when it is not octal.
pub fn parse_mode(key: &'static str, s: &str) -> Result<u32, OptionsError> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b))
    {
        return Err(OptionsError::Mode {
            key,
            value: s.to_owned(),
            reason: "is not an octal mode like \"0640\"",
        });
    }
    u32::from_str_radix(digits, 8).map_err(|_| OptionsError::Mode {
        key,
        value: s.to_owned(),
        reason: "is not an octal mode like \"0640\"",
    })
}

/// A group by number, or by name from `/etc/group` (groups only a directory service knows need
/// their number).
///
/// # Errors
/// [`OptionsError::Group`] when it is neither.
pub fn resolve_group(key: &str, s: &str) -> Result<u32, OptionsError> {
    resolve_group_in(
        key,
        s,
        &std::fs::read_to_string("/etc/group").unwrap_or_default(),
    )
}

/// [`resolve_group`] against the text of a group file.
///
/// # Errors
/// [`OptionsError::Group`].
pub fn resolve_group_in(key: &str, s: &str, group_file: &str) -> Result<u32, OptionsError> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        // u32::MAX is chown's "-1" ("leave the group"), never a group.
        if let Some(gid) = s.parse::<u32>().ok().filter(|g| *g != u32::MAX) {
            return Ok(gid);
        }
        return Err(OptionsError::Group {
            key: key.to_owned(),
            value: s.to_owned(),
        });
    }
    group_file
        .lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let _password = f.next()?;
            let gid = f.next()?.parse::<u32>().ok()?;
            Some((name, gid))
        })
        .find(|(name, _)| !s.is_empty() && *name == s)
        .map(|(_, gid)| gid)
        .ok_or_else(|| OptionsError::Group {
            key: key.to_owned(),
            value: s.to_owned(),
        })
}

/// A user name usable as part of a file name.
///
/// # Errors
/// [`OptionsError::User`].
pub fn check_user(user: &str) -> Result<(), OptionsError> {
    let ok = !user.is_empty()
        && user.len() <= crate::layout::MAX_USER
        && user
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'@' | b'-'))
        && user != "."
        && user != "..";
    if ok {
        Ok(())
    } else {
        Err(OptionsError::User(user.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_unsafe_ones_are_refused_with_reasons() {
        assert_eq!(parse_mode("user_mode", "0640"), Ok(0o640));
        assert_eq!(parse_mode("user_mode", "600"), Ok(0o600));
        assert_eq!(parse_mode("user_mode", "0o644"), Ok(0o644));
        for bad in ["", "0999", "rw-r-----", "12345", "-1"] {
            assert!(
                matches!(parse_mode("user_mode", bad), Err(OptionsError::Mode { .. })),
                "{bad}"
            );
        }
        assert!(check_mode("user_mode", 0o600, false).is_ok());
        assert!(check_mode("user_mode", 0o640, false).is_ok());
        assert!(check_mode("market_mode", 0o644, true).is_ok());
        let e = check_mode("user_mode", 0o644, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("every OS account"), "{e}");
        assert!(check_mode("market_mode", 0o666, true).is_err());
        assert!(check_mode("market_mode", 0o755, true).is_err());
        assert!(check_mode("market_mode", 0o400, true).is_err());
        assert!(check_mode("market_mode", 0o1644, true).is_err());
    }

    #[test]
    fn groups_by_number_or_name() {
        let file = "root:x:0:\ntraders:x:1234:alice,bob\nbroken line\n";
        assert_eq!(resolve_group_in("k", "1234", file), Ok(1234));
        assert_eq!(resolve_group_in("k", "traders", file), Ok(1234));
        assert_eq!(resolve_group_in("k", "root", file), Ok(0));
        assert!(matches!(
            resolve_group_in("k", "nobody-here", file),
            Err(OptionsError::Group { .. })
        ));
        assert!(resolve_group_in("k", "", file).is_err());
    }

    #[test]
    fn sizes_are_bounded() {
        let mut m = MarketOptions::default();
        assert!(m.validate().is_ok());
        m.levels = 0;
        assert!(matches!(m.validate(), Err(OptionsError::Levels { .. })));
        m.levels = MAX_LEVELS + 1;
        assert!(m.validate().is_err());
        m = MarketOptions {
            max_instruments: 0,
            ..MarketOptions::default()
        };
        assert!(matches!(
            m.validate(),
            Err(OptionsError::Size {
                key: "max_instruments",
                ..
            })
        ));
        let u = UserOptions {
            max_orders: 0,
            ..UserOptions::default()
        };
        assert!(u.validate().is_err());
        assert!(check_user("alice").is_ok());
        for bad in ["", ".", "..", "a/b", &"x".repeat(65)] {
            assert!(check_user(bad).is_err(), "{bad}");
        }
    }
}
