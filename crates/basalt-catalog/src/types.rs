//! SQL types, distribution styles and column encodings as Redshift defines them.

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use serde::{Deserialize, Serialize};

/// A column type with its Redshift/Postgres meaning (length, precision, scale).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SqlType {
    SmallInt,
    Integer,
    BigInt,
    /// DECIMAL(p, s); Redshift's default is (18, 0), maximum precision 38.
    Decimal {
        precision: u8,
        scale: i8,
    },
    Real,
    Double,
    Boolean,
    /// CHAR(n): n bytes, blank-padded; stored without trailing blanks.
    Char(u32),
    /// VARCHAR(n): at most n bytes (Redshift counts bytes, not characters).
    Varchar(u32),
    Date,
    Timestamp,
    TimestampTz,
    Time,
}

/// Arrow field metadata key carrying the SQL type of a column through DataFusion plans, so the
/// wire layer can report typmods (`varchar(10)`, `numeric(12,2)`, `bpchar(3)`).
pub const SQL_TYPE_METADATA_KEY: &str = "basalt.sql_type";

/// Maximum VARCHAR length in bytes (`VARCHAR(MAX)`).
pub const VARCHAR_MAX: u32 = 65535;
/// Maximum CHAR length in bytes (`CHAR(MAX)`).
pub const CHAR_MAX: u32 = 4096;

impl SqlType {
    /// The Arrow type used in segments and in DataFusion plans.
    pub fn to_arrow(&self) -> DataType {
        match self {
            SqlType::SmallInt => DataType::Int16,
            SqlType::Integer => DataType::Int32,
            SqlType::BigInt => DataType::Int64,
            SqlType::Decimal { precision, scale } => DataType::Decimal128(*precision, *scale),
            SqlType::Real => DataType::Float32,
            SqlType::Double => DataType::Float64,
            SqlType::Boolean => DataType::Boolean,
            SqlType::Char(_) | SqlType::Varchar(_) => DataType::Utf8,
            SqlType::Date => DataType::Date32,
            SqlType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            SqlType::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            SqlType::Time => DataType::Time64(TimeUnit::Microsecond),
        }
    }

    /// The closest SQL type for an Arrow type produced by a query (used by CTAS).
    pub fn from_arrow(dt: &DataType) -> Option<SqlType> {
        Some(match dt {
            DataType::Int8 | DataType::Int16 | DataType::UInt8 => SqlType::SmallInt,
            DataType::Int32 | DataType::UInt16 => SqlType::Integer,
            DataType::Int64 | DataType::UInt32 => SqlType::BigInt,
            DataType::UInt64 => SqlType::Decimal {
                precision: 20,
                scale: 0,
            },
            DataType::Decimal128(p, s) => SqlType::Decimal {
                precision: (*p).min(38),
                scale: *s,
            },
            DataType::Float16 | DataType::Float32 => SqlType::Real,
            DataType::Float64 => SqlType::Double,
            DataType::Boolean => SqlType::Boolean,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                SqlType::Varchar(VARCHAR_MAX)
            }
            DataType::Null => SqlType::Varchar(VARCHAR_MAX),
            DataType::Date32 | DataType::Date64 => SqlType::Date,
            DataType::Timestamp(_, None) => SqlType::Timestamp,
            DataType::Timestamp(_, Some(_)) => SqlType::TimestampTz,
            DataType::Time32(_) | DataType::Time64(_) => SqlType::Time,
            _ => return None,
        })
    }

    /// Parse the string stored under [`SQL_TYPE_METADATA_KEY`].
    pub fn from_metadata(s: &str) -> Option<SqlType> {
        serde_json::from_str(s).ok()
    }

    /// The string stored under [`SQL_TYPE_METADATA_KEY`].
    pub fn to_metadata(&self) -> String {
        serde_json::to_string(self).expect("SqlType serializes")
    }

    /// Postgres type OID reported on the wire and in pg_attribute.
    pub fn pg_oid(&self) -> u32 {
        match self {
            SqlType::SmallInt => 21,
            SqlType::Integer => 23,
            SqlType::BigInt => 20,
            SqlType::Decimal { .. } => 1700,
            SqlType::Real => 700,
            SqlType::Double => 701,
            SqlType::Boolean => 16,
            SqlType::Char(_) => 1042,
            SqlType::Varchar(_) => 1043,
            SqlType::Date => 1082,
            SqlType::Timestamp => 1114,
            SqlType::TimestampTz => 1184,
            SqlType::Time => 1083,
        }
    }

    /// Postgres type modifier (atttypmod): -1 when the type has none.
    pub fn typmod(&self) -> i32 {
        match self {
            SqlType::Char(n) | SqlType::Varchar(n) => *n as i32 + 4,
            SqlType::Decimal { precision, scale } => {
                (((*precision as i32) << 16) | (*scale as i32 & 0xffff)) + 4
            }
            _ => -1,
        }
    }

    /// The type as `format_type()` / `PG_TABLE_DEF.type` prints it.
    pub fn display_name(&self) -> String {
        match self {
            SqlType::SmallInt => "smallint".into(),
            SqlType::Integer => "integer".into(),
            SqlType::BigInt => "bigint".into(),
            SqlType::Decimal { precision, scale } => format!("numeric({precision},{scale})"),
            SqlType::Real => "real".into(),
            SqlType::Double => "double precision".into(),
            SqlType::Boolean => "boolean".into(),
            SqlType::Char(n) => format!("character({n})"),
            SqlType::Varchar(n) => format!("character varying({n})"),
            SqlType::Date => "date".into(),
            SqlType::Timestamp => "timestamp without time zone".into(),
            SqlType::TimestampTz => "timestamp with time zone".into(),
            SqlType::Time => "time without time zone".into(),
        }
    }

    /// SQL text usable in a CAST to this type.
    pub fn cast_name(&self) -> String {
        match self {
            SqlType::Char(_) | SqlType::Varchar(_) => "VARCHAR".into(),
            SqlType::Decimal { precision, scale } => format!("DECIMAL({precision},{scale})"),
            SqlType::Timestamp => "TIMESTAMP".into(),
            SqlType::TimestampTz => "TIMESTAMPTZ".into(),
            other => other.display_name().to_uppercase(),
        }
    }

    /// Redshift's default column encoding for this type when a table is not ENCODE AUTO.
    pub fn default_encoding(&self) -> Encoding {
        match self {
            SqlType::Boolean | SqlType::Real | SqlType::Double => Encoding::Raw,
            SqlType::Char(_) | SqlType::Varchar(_) => Encoding::Lzo,
            _ => Encoding::Az64,
        }
    }

    pub fn is_string(&self) -> bool {
        matches!(self, SqlType::Char(_) | SqlType::Varchar(_))
    }
}

/// How a table's rows are placed on slices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DistStyle {
    /// Starts as ALL; the leader redistributes it to EVEN or KEY in the background once it
    /// grows past a threshold (`TableMeta::auto_style`).
    Auto,
    Even,
    Key,
    All,
}

impl DistStyle {
    pub fn as_str(&self) -> &'static str {
        match self {
            DistStyle::Auto => "AUTO",
            DistStyle::Even => "EVEN",
            DistStyle::Key => "KEY",
            DistStyle::All => "ALL",
        }
    }

    /// Redshift's `pg_class.reldiststyle` code: 0 EVEN, 1 KEY, 8 ALL, 9 AUTO.
    pub fn reldiststyle(&self) -> i32 {
        match self {
            DistStyle::Even => 0,
            DistStyle::Key => 1,
            DistStyle::All => 8,
            DistStyle::Auto => 9,
        }
    }
}

/// A column's `ENCODE` as declared (or chosen) in the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    Raw,
    Az64,
    Bytedict,
    Delta,
    Delta32k,
    Lzo,
    Mostly8,
    Mostly16,
    Mostly32,
    Runlength,
    Text255,
    Text32k,
    Zstd,
    Auto,
}

impl Encoding {
    pub fn parse(s: &str) -> Option<Encoding> {
        Some(match s.to_ascii_lowercase().as_str() {
            "raw" | "none" => Encoding::Raw,
            "az64" => Encoding::Az64,
            "bytedict" => Encoding::Bytedict,
            "delta" => Encoding::Delta,
            "delta32k" => Encoding::Delta32k,
            "lzo" => Encoding::Lzo,
            "mostly8" => Encoding::Mostly8,
            "mostly16" => Encoding::Mostly16,
            "mostly32" => Encoding::Mostly32,
            "runlength" => Encoding::Runlength,
            "text255" => Encoding::Text255,
            "text32k" => Encoding::Text32k,
            "zstd" => Encoding::Zstd,
            "auto" => Encoding::Auto,
            _ => return None,
        })
    }

    /// Can a column of type `ty` be declared with this encoding? Redshift's type matrix
    /// ("Compression encodings" in its developer guide); AUTO and RAW take every type.
    pub fn accepts(&self, ty: &SqlType) -> bool {
        use SqlType as T;
        let int = matches!(ty, T::SmallInt | T::Integer | T::BigInt | T::Decimal { .. });
        let datetime = matches!(ty, T::Date | T::Timestamp | T::TimestampTz);
        let text = matches!(ty, T::Char(_) | T::Varchar(_));
        let float = matches!(ty, T::Real | T::Double);
        match self {
            Encoding::Raw | Encoding::Auto | Encoding::Zstd | Encoding::Runlength => true,
            Encoding::Az64 => int || datetime || matches!(ty, T::Time),
            Encoding::Bytedict => int || datetime || text || float,
            Encoding::Lzo => int || datetime || text,
            Encoding::Delta => int || matches!(ty, T::Date | T::Timestamp),
            Encoding::Delta32k => {
                (int && *ty != T::SmallInt) || matches!(ty, T::Date | T::Timestamp)
            }
            Encoding::Mostly8 => int,
            Encoding::Mostly16 => int && *ty != T::SmallInt,
            Encoding::Mostly32 => matches!(ty, T::BigInt | T::Decimal { .. }),
            Encoding::Text255 | Encoding::Text32k => matches!(ty, T::Varchar(_)),
        }
    }

    /// Every encoding, in the order of [`Encoding::code`].
    pub const ALL: [Encoding; 14] = [
        Encoding::Raw,
        Encoding::Bytedict,
        Encoding::Delta,
        Encoding::Delta32k,
        Encoding::Lzo,
        Encoding::Mostly8,
        Encoding::Mostly16,
        Encoding::Mostly32,
        Encoding::Runlength,
        Encoding::Text255,
        Encoding::Text32k,
        Encoding::Zstd,
        Encoding::Az64,
        Encoding::Auto,
    ];

    /// The number in `pg_attribute.attencodingtype`, which `format_encoding()` turns back
    /// into the name.
    pub fn code(&self) -> i16 {
        Encoding::ALL
            .iter()
            .position(|e| e == self)
            .expect("every encoding is listed") as i16
    }

    pub fn from_code(code: i64) -> Option<Encoding> {
        usize::try_from(code)
            .ok()
            .and_then(|i| Encoding::ALL.get(i).copied())
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Encoding::Raw => "none",
            Encoding::Az64 => "az64",
            Encoding::Bytedict => "bytedict",
            Encoding::Delta => "delta",
            Encoding::Delta32k => "delta32k",
            Encoding::Lzo => "lzo",
            Encoding::Mostly8 => "mostly8",
            Encoding::Mostly16 => "mostly16",
            Encoding::Mostly32 => "mostly32",
            Encoding::Runlength => "runlength",
            Encoding::Text255 => "text255",
            Encoding::Text32k => "text32k",
            Encoding::Zstd => "zstd",
            Encoding::Auto => "auto",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typmods_match_postgres() {
        assert_eq!(SqlType::Varchar(10).typmod(), 14);
        assert_eq!(
            SqlType::Decimal {
                precision: 12,
                scale: 2
            }
            .typmod(),
            (12 << 16 | 2) + 4
        );
        assert_eq!(SqlType::Integer.typmod(), -1);
    }

    #[test]
    fn metadata_round_trips() {
        let t = SqlType::Decimal {
            precision: 15,
            scale: 2,
        };
        assert_eq!(SqlType::from_metadata(&t.to_metadata()), Some(t));
    }
}
