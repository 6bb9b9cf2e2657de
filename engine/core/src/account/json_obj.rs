//! Typed field access on a simd-json borrowed object, for [`super::userdata`]: every read
//! names the event and field in its error, and nothing here panics on any input.

use simd_json::borrowed::{Object, Value};
use simd_json::StaticNode;

use super::ids::{Asset, ClientOrderId, IdError};
use super::money::{parse_rounded, Money};
use super::userdata::UserDataError;
use crate::fixed::{parse_fixed, FixedError, Price, Qty};

/// Longest string kept in an error's context.
const MAX_CONTEXT: usize = 64;

pub(super) fn truncate(s: &str) -> String {
    s.chars().take(MAX_CONTEXT).collect()
}

/// JSON type name of a value, for error messages (the decoders' wording).
pub(super) fn type_name(v: &Value<'_>) -> &'static str {
    match v {
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        Value::Static(s) => crate::decode::static_type_name(s),
    }
}

/// The event object inside whichever of the three envelopes the frame uses.
pub(super) fn unwrap_envelope<'a, 'v>(
    root: &'a Value<'v>,
) -> Result<&'a Object<'v>, UserDataError> {
    let Value::Object(map) = root else {
        return Err(UserDataError::NotObject {
            context: "frame",
            found: type_name(root),
        });
    };
    let inner = match (
        map.get("stream"),
        map.get("data"),
        map.get("subscriptionId"),
        map.get("event"),
    ) {
        (Some(_), Some(d), _, _) => Some(("data", d)),
        (_, _, Some(_), Some(e)) => Some(("event", e)),
        _ => None,
    };
    match inner {
        None => Ok(map),
        Some((_, Value::Object(m))) => Ok(m),
        Some((context, v)) => Err(UserDataError::NotObject {
            context,
            found: type_name(v),
        }),
    }
}

/// One JSON object being read, with the event name for error context.
#[derive(Clone, Copy)]
pub(super) struct Obj<'a, 'v> {
    pub(super) map: &'a Object<'v>,
    pub(super) event: &'static str,
}

impl<'a, 'v> Obj<'a, 'v> {
    pub(super) fn named(self, event: &'static str) -> Self {
        Obj { event, ..self }
    }

    /// The value, treating `null` as absent.
    pub(super) fn get(&self, field: &'static str) -> Option<&'a Value<'v>> {
        self.map
            .get(field)
            .filter(|v| !matches!(v, Value::Static(StaticNode::Null)))
    }

    pub(super) fn req(&self, field: &'static str) -> Result<&'a Value<'v>, UserDataError> {
        self.get(field).ok_or(UserDataError::MissingField {
            event: self.event,
            field,
        })
    }

    pub(super) fn wrong(
        &self,
        field: &'static str,
        expected: &'static str,
        v: &Value<'_>,
    ) -> UserDataError {
        UserDataError::WrongType {
            event: self.event,
            field,
            expected,
            found: type_name(v),
        }
    }

    pub(super) fn opt_str(&self, field: &'static str) -> Result<Option<&'a str>, UserDataError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_ref())),
            Some(v) => Err(self.wrong(field, "string", v)),
        }
    }

    pub(super) fn str(&self, field: &'static str) -> Result<&'a str, UserDataError> {
        self.opt_str(field)?.ok_or(UserDataError::MissingField {
            event: self.event,
            field,
        })
    }

    pub(super) fn opt_i64(&self, field: &'static str) -> Result<Option<i64>, UserDataError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Static(StaticNode::I64(v))) => Ok(Some(*v)),
            Some(v @ Value::Static(StaticNode::U64(u))) => i64::try_from(*u)
                .map(Some)
                .map_err(|_| self.wrong(field, "i64", v)),
            Some(v) => Err(self.wrong(field, "integer", v)),
        }
    }

    pub(super) fn u64(&self, field: &'static str) -> Result<u64, UserDataError> {
        match self.req(field)? {
            Value::Static(StaticNode::U64(u)) => Ok(*u),
            v @ Value::Static(StaticNode::I64(i)) => {
                u64::try_from(*i).map_err(|_| self.wrong(field, "non-negative integer", v))
            }
            v => Err(self.wrong(field, "non-negative integer", v)),
        }
    }

    /// An id where a negative value (spot `-1`) or zero (USD-M) means "none".
    pub(super) fn opt_id(&self, field: &'static str) -> Result<Option<u64>, UserDataError> {
        Ok(self
            .opt_i64(field)?
            .and_then(|v| u64::try_from(v).ok())
            .filter(|&v| v > 0))
    }

    pub(super) fn bool_or_false(&self, field: &'static str) -> Result<bool, UserDataError> {
        match self.get(field) {
            None => Ok(false),
            Some(Value::Static(StaticNode::Bool(b))) => Ok(*b),
            Some(v) => Err(self.wrong(field, "bool", v)),
        }
    }

    pub(super) fn bad_number(
        &self,
        field: &'static str,
        s: &str,
        error: FixedError,
    ) -> UserDataError {
        UserDataError::BadNumber {
            event: self.event,
            field,
            value: truncate(s),
            error,
        }
    }

    pub(super) fn fixed(&self, field: &'static str, scale: u8) -> Result<i64, UserDataError> {
        let s = self.str(field)?;
        parse_fixed(s.as_bytes(), scale).map_err(|e| self.bad_number(field, s, e))
    }

    pub(super) fn price(&self, field: &'static str, scale: u8) -> Result<Price, UserDataError> {
        self.fixed(field, scale).map(Price)
    }

    pub(super) fn qty(&self, field: &'static str, scale: u8) -> Result<Qty, UserDataError> {
        self.fixed(field, scale).map(Qty)
    }

    pub(super) fn opt_rounded(
        &self,
        field: &'static str,
        scale: u8,
    ) -> Result<Option<i64>, UserDataError> {
        match self.opt_str(field)? {
            None => Ok(None),
            Some(s) => parse_rounded(s.as_bytes(), scale)
                .map(Some)
                .map_err(|e| self.bad_number(field, s, e)),
        }
    }

    pub(super) fn opt_money(&self, field: &'static str) -> Result<Option<Money>, UserDataError> {
        self.opt_rounded(field, super::money::MONEY_SCALE)
            .map(|v| v.map(Money))
    }

    pub(super) fn money(&self, field: &'static str) -> Result<Money, UserDataError> {
        self.opt_money(field)?.ok_or(UserDataError::MissingField {
            event: self.event,
            field,
        })
    }

    pub(super) fn bad_value(&self, field: &'static str, s: &str) -> UserDataError {
        UserDataError::BadValue {
            event: self.event,
            field,
            value: truncate(s),
        }
    }

    pub(super) fn parsed<T>(
        &self,
        field: &'static str,
        f: impl Fn(&[u8]) -> Option<T>,
    ) -> Result<T, UserDataError> {
        let s = self.str(field)?;
        f(s.as_bytes()).ok_or_else(|| self.bad_value(field, s))
    }

    pub(super) fn client_id(&self, field: &'static str) -> Result<ClientOrderId, UserDataError> {
        let s = self.str(field)?;
        ClientOrderId::new(s).map_err(|_: IdError| self.bad_value(field, s))
    }

    /// A client id where `""` means "none" (spot `C`).
    pub(super) fn opt_client_id(
        &self,
        field: &'static str,
    ) -> Result<Option<ClientOrderId>, UserDataError> {
        match self.opt_str(field)? {
            None | Some("") => Ok(None),
            Some(s) => ClientOrderId::new(s)
                .map(Some)
                .map_err(|_| self.bad_value(field, s)),
        }
    }

    pub(super) fn asset(&self, field: &'static str) -> Result<Asset, UserDataError> {
        let s = self.str(field)?;
        Asset::new(s).map_err(|_| self.bad_value(field, s))
    }

    pub(super) fn opt_asset(&self, field: &'static str) -> Result<Option<Asset>, UserDataError> {
        match self.opt_str(field)? {
            None | Some("") => Ok(None),
            Some(s) => Asset::new(s)
                .map(Some)
                .map_err(|_| self.bad_value(field, s)),
        }
    }

    /// A reason field where `NONE` means none.
    pub(super) fn opt_reason(&self, field: &'static str) -> Result<Option<String>, UserDataError> {
        Ok(self
            .opt_str(field)?
            .filter(|s| !s.is_empty() && *s != "NONE")
            .map(truncate))
    }

    pub(super) fn obj(&self, field: &'static str) -> Result<Obj<'a, 'v>, UserDataError> {
        match self.req(field)? {
            Value::Object(m) => Ok(Obj {
                map: m,
                event: self.event,
            }),
            v => Err(self.wrong(field, "object", v)),
        }
    }

    /// An array of objects (an absent array is empty).
    pub(super) fn objects(&self, field: &'static str) -> Result<Vec<Obj<'a, 'v>>, UserDataError> {
        match self.get(field) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::Object(m) => Ok(Obj {
                        map: m,
                        event: self.event,
                    }),
                    v => Err(self.wrong(field, "array of objects", v)),
                })
                .collect(),
            Some(v) => Err(self.wrong(field, "array", v)),
        }
    }
}
