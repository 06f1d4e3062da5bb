//! Debug text with the numbers of address-like fields in hex, for
//! divergence messages.

use std::fmt;

/// Field names whose values read better in hex.
const HEX_FIELDS: [&str; 5] = ["addr: ", "frame: ", "start: ", "checksum: ", "raw: "];

/// `{:?}` of `value` with the numbers of address-like fields in hex.
pub fn hex_debug(value: &impl fmt::Debug) -> String {
    let text = format!("{value:?}");
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some((at, field)) = HEX_FIELDS
        .iter()
        .filter_map(|h| rest.find(h).map(|i| (i, *h)))
        .min()
    {
        let value_at = at + field.len();
        out.push_str(&rest[..value_at]);
        rest = &rest[value_at..];
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        match rest[..digits].parse::<u64>() {
            Ok(n) => out.push_str(&format!("{n:#x}")),
            Err(_) => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}
