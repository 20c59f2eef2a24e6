//! Serde helpers that make Rust values look on the wire the way Go's `encoding/json` makes
//! moby's values look: `omitempty` predicates, `null` accepted wherever Go would send a nil
//! slice or map, timestamps in Go's RFC 3339 with nanoseconds, and `float32` numbers without a
//! trailing `.0`. It owns formatting only; it knows nothing about any object.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serializer};

/// `skip_serializing_if` for Go's `omitempty` on scalars: `0`, `false`, `""`.
pub fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// Deserializes `null` as the type's default (Go sends `null` for a nil slice or map that has
/// no `omitempty`, e.g. `"Labels": null` from `docker swarm init`).
pub fn null_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Formats a timestamp exactly like Go's `time.Time` JSON encoding (RFC 3339 with up to nine
/// fractional digits, trailing zeros trimmed, `Z` for UTC): `2016-06-07T20:31:11.853781916Z`.
pub fn format_time(t: &DateTime<Utc>) -> String {
    let seconds = t.to_rfc3339_opts(SecondsFormat::Secs, true);
    // Leap seconds show up in chrono as nanos >= 1e9; Go cannot represent them.
    let nanos = t.timestamp_subsec_nanos().min(999_999_999);
    if nanos == 0 {
        return seconds;
    }
    let digits = format!("{nanos:09}");
    let digits = digits.trim_end_matches('0');
    let stem = seconds.strip_suffix('Z').unwrap_or(&seconds);
    format!("{stem}.{digits}Z")
}

/// Parses any RFC 3339 timestamp (what Go's `time.Time` accepts) into UTC.
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc))
}

/// Go's zero `time.Time`, `0001-01-01T00:00:00Z`: what Go sends for a time it never set.
pub fn go_zero_time() -> DateTime<Utc> {
    DateTime::from_timestamp(-62_135_596_800, 0).unwrap_or_default()
}

/// `#[serde(with = "crate::wire::time")]` for a `DateTime<Utc>` field.
pub mod time {
    use super::*;

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_time(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(go_zero_time()),
            Some(s) => parse_time(&s).map_err(|e| {
                serde::de::Error::custom(format_args!("invalid timestamp {s:?}: {e}"))
            }),
        }
    }
}

/// `#[serde(with = "crate::wire::time_opt")]` for an `Option<DateTime<Utc>>` that mirrors a Go
/// `*time.Time` with `omitempty` (pair it with `skip_serializing_if = "Option::is_none"`).
pub mod time_opt {
    use super::*;

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&format_time(t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) => parse_time(&s).map(Some).map_err(|e| {
                serde::de::Error::custom(format_args!("invalid timestamp {s:?}: {e}"))
            }),
        }
    }
}

/// `#[serde(with = "crate::wire::time_or_zero")]` for an `Option<DateTime<Utc>>` that mirrors a
/// Go `time.Time` value which may be unset: `None` is sent as Go's zero time
/// (`0001-01-01T00:00:00Z`), and the zero time reads back as `None`.
pub mod time_or_zero {
    use super::*;

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_time(&t.unwrap_or_else(go_zero_time)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        let t = super::time_opt::deserialize(d)?;
        Ok(t.filter(|t| *t != go_zero_time()))
    }
}

/// `#[serde(serialize_with = "crate::wire::go_f32")]`: Go prints a whole `float32` without a
/// fraction (`0`, not `0.0`).
pub fn go_f32<S: Serializer>(v: &f32, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        s.serialize_i64(*v as i64)
    } else {
        s.serialize_f32(*v)
    }
}

/// Declares a Go string enum: a Rust enum whose JSON form is the Go constant's string.
///
/// Deserializing is case-insensitive (moby upper-cases these before looking them up) and an
/// empty string means the default variant (Go's zero value for an `omitempty` field); an
/// unknown string is an error that lists the accepted values.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $s:literal ),+ $(,)?
        }
        default = $default:ident;
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The Docker API string.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $s, )+
                }
            }

            /// Parses the Docker API string, ignoring ASCII case; `None` if unknown.
            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str().eq_ignore_ascii_case(s))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                $name::$default
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                Self::parse(s).ok_or_else(|| {
                    let accepted: Vec<String> =
                        Self::ALL.iter().map(|v| format!("{:?}", v.as_str())).collect();
                    format!("invalid {} {:?}: expected one of {}", $what, s, accepted.join(", "))
                })
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <Option<String> as serde::Deserialize>::deserialize(d)?.unwrap_or_default();
                if s.is_empty() {
                    return Ok(Self::default());
                }
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use wire_enum;

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn time_is_formatted_like_go_rfc3339nano() {
        let t = parse_time("2016-06-07T20:31:11.853781916Z").unwrap();
        assert_eq!(format_time(&t), "2016-06-07T20:31:11.853781916Z");
        let t = parse_time("2024-01-02T03:04:05.1234567Z").unwrap();
        assert_eq!(format_time(&t), "2024-01-02T03:04:05.1234567Z");
        let t = Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(format_time(&t), "2024-01-02T03:04:05Z");
        assert_eq!(format_time(&go_zero_time()), "0001-01-01T00:00:00Z");
    }

    #[test]
    fn offsets_are_converted_to_utc() {
        let t = parse_time("2024-01-02T05:04:05.5+02:00").unwrap();
        assert_eq!(format_time(&t), "2024-01-02T03:04:05.5Z");
    }
}
