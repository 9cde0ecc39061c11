//! Time values in the model: milliseconds since the Unix epoch, parsed from RFC 3339 or
//! relative durations.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The latest time `parse_time` returns: 9999-12-31T23:59:59.999Z. Later years do not fit the
/// four digits of RFC 3339, and such a time is a typo, not an expiry.
pub const TIME_MS_MAX: u64 = 253_402_300_799_999;

/// What `parse_time` accepts, for its error messages.
const FORMS: &str = "use an RFC 3339 time (2026-11-28T12:00:00Z, 2026-11-28T14:00:00+02:00, fractions allowed), \
                     a date (2026-11-28, midnight UTC) or a duration from now (90s, 15m, 12h, 30d, 2w; \
                     -24h for 24 hours ago)";

/// Which way a bare duration (`24h`, without a sign) counts from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bare {
    /// Into the future: expiry times (`--valid-until 30d`).
    Ahead,
    /// Into the past: search ranges (`--since 24h` means the last 24 hours).
    Ago,
}

/// Parses an RFC 3339 time or a duration from `now_ms` (`30d`, `12h`) into ms since the epoch.
/// The error is a reason sentence for a `ModelError`.
///
/// Accepted: RFC 3339 with any offset and fraction (truncated to ms; a space may stand for the
/// `T`), a bare date `YYYY-MM-DD` (midnight UTC), and `[+|-]N` followed by `s`, `m`, `h`, `d` or
/// `w` counted from `now_ms`, forward with `+` or no sign, backward with `-`. Results before 1970
/// or after `TIME_MS_MAX` are errors.
pub fn parse_time(s: &str, now_ms: u64) -> Result<u64, String> {
    parse_time_bare(s, now_ms, Bare::Ahead)
}

/// Like [`parse_time`] for the bounds of a search, where an unsigned duration counts back:
/// `24h` is 24 hours ago (`+24h` still means ahead).
pub fn parse_time_ago(s: &str, now_ms: u64) -> Result<u64, String> {
    parse_time_bare(s, now_ms, Bare::Ago)
}

fn parse_time_bare(s: &str, now_ms: u64, bare: Bare) -> Result<u64, String> {
    let s = s.trim();
    let shown =
        if s.len() <= 64 { format!("{s:?}") } else { format!("{:?}…", s.chars().take(40).collect::<String>()) };
    let too_late = || format!("{shown} is after the year 9999: check for a typo");
    let ms = if let Some(ms) = parse_duration(s, now_ms, bare) {
        ms.ok_or_else(too_late)?
    } else if let Some(date) = parse_date(s) {
        date.ok_or_else(|| format!("{shown} is not a calendar date; {FORMS}"))?
    } else {
        // The time crate's reason helps only when the input was meant as a date and time.
        let looks_dated = s.len() > 4 && s.as_bytes()[..4].iter().all(u8::is_ascii_digit) && s.as_bytes()[4] == b'-';
        parse_rfc3339(s).map_err(|e| match looks_dated {
            true => format!("{shown} is not an RFC 3339 time ({e}); {FORMS}"),
            false => format!("{shown} is not a time; {FORMS}"),
        })?
    };
    match ms {
        ..0 => Err(format!("{shown} is before 1970: give a time from 1970-01-01 on")),
        0..=TIME_MS_MAX_I128 => Ok(ms as u64),
        _ => Err(too_late()),
    }
}

const TIME_MS_MAX_I128: i128 = TIME_MS_MAX as i128;

/// Formats ms since the epoch as RFC 3339 UTC with millisecond precision.
///
/// A time past `TIME_MS_MAX`, which `parse_time` never returns but a peer could send, has no
/// RFC 3339 form; it is shown as the raw number, e.g. `253402300800000ms`.
pub fn format_time(ms: u64) -> String {
    if ms > TIME_MS_MAX {
        return format!("{ms}ms");
    }
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .expect("times up to TIME_MS_MAX are in the range of the time crate");
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// `[+]N{s,m,h,d,w}`: `None` if `s` is not of that shape; `Some(None)` if the sum overflows.
fn parse_duration(s: &str, now_ms: u64, bare: Bare) -> Option<Option<i128>> {
    let (back, body) = match s.as_bytes().first()? {
        b'+' => (false, &s[1..]),
        b'-' => (true, &s[1..]),
        _ => (bare == Bare::Ago, s),
    };
    let unit_ms: u64 = match body.as_bytes().last()? {
        b's' => 1_000,
        b'm' => 60_000,
        b'h' => 3_600_000,
        b'd' => 86_400_000,
        b'w' => 604_800_000,
        _ => return None,
    };
    let digits = &body[..body.len() - 1];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Any count over 20 digits overflows u64, and so does the result (an i128 holds both
    // directions; a result before 1970 is reported by the caller).
    let d = digits.parse::<u64>().ok().and_then(|n| n.checked_mul(unit_ms));
    Some(d.map(|d| if back { i128::from(now_ms) - i128::from(d) } else { i128::from(now_ms) + i128::from(d) }))
}

/// `YYYY-MM-DD` at midnight UTC: `None` if `s` is not of that shape; `Some(None)` if it is but
/// names no day (`2026-02-30`).
fn parse_date(s: &str) -> Option<Option<i128>> {
    let b = s.as_bytes();
    let digit_at = |i: usize| b[i].is_ascii_digit();
    let shape = b.len() == 10 && b[4] == b'-' && b[7] == b'-' && [0, 1, 2, 3, 5, 6, 8, 9].into_iter().all(digit_at);
    if !shape {
        return None;
    }
    let year: i32 = s[0..4].parse().ok()?;
    let month: u8 = s[5..7].parse().ok()?;
    let day: u8 = s[8..10].parse().ok()?;
    let date = time::Month::try_from(month).ok().and_then(|m| time::Date::from_calendar_date(year, m, day).ok());
    Some(date.map(|d| d.midnight().assume_utc().unix_timestamp_nanos() / 1_000_000))
}

/// An absolute RFC 3339 time (no durations, no bare dates), as ms since the Unix epoch, for
/// settings that must not depend on when they are read, such as a key's retirement time.
pub fn parse_rfc3339_ms(s: &str) -> Result<u64, String> {
    let ms = parse_rfc3339(s.trim()).map_err(|e| e.to_string())?;
    u64::try_from(ms)
        .ok()
        .filter(|&ms| ms <= TIME_MS_MAX)
        .ok_or_else(|| "must be between 1970 and the end of the year 9999".to_string())
}

/// RFC 3339, with a space allowed in place of `T` (RFC 3339 §5.6 permits it; `date --rfc-3339`
/// prints it). Fractions below a millisecond are truncated.
fn parse_rfc3339(s: &str) -> Result<i128, time::error::Parse> {
    let mut text = s.to_owned();
    if text.len() > 10 && text.as_bytes()[10] == b' ' {
        text.replace_range(10..11, "T");
    }
    let t = OffsetDateTime::parse(&text, &Rfc3339)?;
    Ok(t.unix_timestamp_nanos().div_euclid(1_000_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_time(TIME_MS_MAX), "9999-12-31T23:59:59.999Z");
        assert_eq!(parse_time("9999-12-31T23:59:59.999Z", 0), Ok(TIME_MS_MAX));
        assert!(parse_time("9999-12-31T23:59:59-01:00", 0).is_err());
        assert!(parse_time("1969-12-31T23:59:59.999Z", 0).is_err());
        assert_eq!(format_time(TIME_MS_MAX + 1), "253402300800000ms");
    }

    #[test]
    fn durations_count_ahead_or_back() {
        let now = 1_800_000_000_000;
        assert_eq!(parse_time("30d", now), Ok(now + 30 * 86_400_000));
        assert_eq!(parse_time("+2h", now), Ok(now + 7_200_000));
        assert_eq!(parse_time("-24h", now), Ok(now - 86_400_000));
        // In a search range a bare duration means "the last …".
        assert_eq!(parse_time_ago("24h", now), Ok(now - 86_400_000));
        assert_eq!(parse_time_ago("-15m", now), Ok(now - 900_000));
        assert_eq!(parse_time_ago("+1w", now), Ok(now + 604_800_000));
        // Dates and RFC 3339 times do not depend on the direction.
        assert_eq!(parse_time_ago("1970-01-02", now), Ok(86_400_000));
        let before_1970 = parse_time("-1d", 1_000).unwrap_err();
        assert!(before_1970.contains("before 1970"), "{before_1970}");
        let huge = parse_time("99999999999999999999w", now).unwrap_err();
        assert!(huge.contains("after the year 9999"), "{huge}");
        assert!(parse_time("-", now).is_err() && parse_time("-h", now).is_err() && parse_time("--1h", now).is_err());
    }
}
