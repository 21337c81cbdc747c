//! Redshift string functions that DataFusion lacks: STRTOL.
//!
//! (LEN, CHARINDEX and NVL map onto DataFusion functions; see the module header of
//! [`super`].)

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Int64Array};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{exec_datafusion_err, exec_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::util::{check_arg_count, coerce_integer, coerce_string, finish, strings, to_arrays};

/// The scalar functions of this module.
pub(crate) fn udfs() -> Vec<ScalarUDF> {
    vec![ScalarUDF::from(Strtol::new())]
}

/// `STRTOL(num_string, base)`: parses a number written in `base` (2–36) into a `BIGINT`,
/// like C's `strtol`: leading white space, an optional sign, an optional `0x` prefix in base
/// 16, then as many valid digits as follow (none gives 0). A result outside the `BIGINT`
/// range is an error.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct Strtol {
    signature: Signature,
}

impl Strtol {
    const NAME: &'static str = "STRTOL";

    fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// C `strtol` semantics with a 64-bit overflow error.
fn strtol(input: &str, base: i64) -> Result<i64> {
    if !(2..=36).contains(&base) {
        return exec_err!("STRTOL base must be between 2 and 36, got {base}");
    }
    let radix = base as u32;
    let s = input.trim_start();
    let (negative, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let s = if radix == 16 {
        s.strip_prefix("0x")
            .or_else(|| s.strip_prefix("0X"))
            .filter(|rest| rest.chars().next().is_some_and(|c| c.is_ascii_hexdigit()))
            .unwrap_or(s)
    } else {
        s
    };
    let overflow = || exec_datafusion_err!("STRTOL: \"{input}\" is out of range for type BIGINT");
    // Accumulate negatively so that i64::MIN is representable.
    let mut value: i64 = 0;
    for c in s.chars() {
        let Some(digit) = c.to_digit(radix) else {
            break;
        };
        value = value
            .checked_mul(base)
            .and_then(|v| v.checked_sub(i64::from(digit)))
            .ok_or_else(overflow)?;
    }
    if negative {
        Ok(value)
    } else {
        value.checked_neg().ok_or_else(overflow)
    }
}

impl ScalarUDFImpl for Strtol {
    fn name(&self) -> &str {
        "strtol"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        check_arg_count(Self::NAME, arg_types, 2..=2, "STRTOL(num_string, base)")?;
        Ok(vec![
            coerce_string(Self::NAME, "number", &arg_types[0])?,
            coerce_integer(Self::NAME, "base", &arg_types[1])?,
        ])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (arrays, all_scalar) = to_arrays(&args.args)?;
        let numbers = strings(Self::NAME, &arrays[0])?;
        let bases = arrays[1]
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| exec_datafusion_err!("STRTOL: expected an integer base"))?;
        let mut out = Vec::with_capacity(numbers.len());
        for i in 0..numbers.len() {
            if numbers.is_null(i) || bases.is_null(i) {
                out.push(None);
            } else {
                out.push(Some(strtol(numbers.value(i), bases.value(i))?));
            }
        }
        finish(Arc::new(Int64Array::from(out)), all_scalar)
    }
}

#[cfg(test)]
mod tests {
    use super::strtol;

    #[test]
    fn strtol_like_c() {
        assert_eq!(strtol("0xf", 16).unwrap(), 15);
        assert_eq!(strtol("abcd1234", 16).unwrap(), 2_882_343_476);
        assert_eq!(strtol("  -110", 2).unwrap(), -6);
        assert_eq!(strtol("12z", 10).unwrap(), 12);
        assert_eq!(strtol("", 10).unwrap(), 0);
        assert_eq!(strtol("-9223372036854775808", 10).unwrap(), i64::MIN);
        assert!(strtol("9223372036854775808", 10).is_err());
        assert!(strtol("1", 37).is_err());
    }
}
