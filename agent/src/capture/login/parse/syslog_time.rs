//! Timestamps at the start of log lines: the BSD syslog stamp (`Nov 23 19:21:41`,
//! local time, no year) and the RFC 3339 stamp rsyslog writes on Debian 12
//! (`2026-11-23T19:21:41.123456+00:00`).
//!
//! Pure calendar arithmetic (no clock, no allocation): the caller passes "now"
//! and the UTC offset in a [`Clock`], so parsing is deterministic and testable.

/// Nanoseconds in one second.
const NANOS_PER_SECOND: i64 = 1_000_000_000;
/// Seconds in one day.
const SECONDS_PER_DAY: i64 = 86_400;
/// A BSD stamp more than this far in the future of "now" belongs to last year
/// (a December line read in January). Two days absorb clock skew and time zones.
const FUTURE_TOLERANCE_SECONDS: i64 = 2 * SECONDS_PER_DAY;

/// What the parser knows about the present, fixed when the context is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// "Now" in unix seconds (for year inference).
    pub now_unix_seconds: i64,
    /// Offset of the host's local time from UTC in seconds (BSD stamps are local time).
    pub utc_offset_seconds: i32,
    /// Year of "now" in local time.
    now_local_year: i32,
}

impl Clock {
    /// A clock at `now_unix_seconds` for a host whose local time is `utc_offset_seconds` ahead of UTC.
    pub fn new(now_unix_seconds: i64, utc_offset_seconds: i32) -> Self {
        let local_days =
            (now_unix_seconds + i64::from(utc_offset_seconds)).div_euclid(SECONDS_PER_DAY);
        let (year, _, _) = civil_from_days(local_days);
        Clock {
            now_unix_seconds,
            utc_offset_seconds,
            now_local_year: year,
        }
    }
}

/// Why a stamp could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StampError {
    /// Digits, separators or ranges are wrong.
    Invalid,
}

/// Month number (1-12) of a three-letter English month name.
pub fn month_from_abbrev(name: &[u8]) -> Option<u32> {
    let month = match name {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    };
    Some(month)
}

/// Length of a BSD stamp: `Mmm dd HH:MM:SS`.
pub const BSD_STAMP_LEN: usize = 15;

/// Parses `Mmm dd HH:MM:SS` (day space- or zero-padded) at the start of `s`; the
/// month name must already have been recognised by the caller. Returns unix nanoseconds.
pub fn parse_bsd(s: &[u8], clock: &Clock) -> Result<i64, StampError> {
    if s.len() < BSD_STAMP_LEN || s[3] != b' ' || s[6] != b' ' {
        return Err(StampError::Invalid);
    }
    let month = month_from_abbrev(&s[0..3]).ok_or(StampError::Invalid)?;
    let day = match (s[4], s[5]) {
        (b' ', d) => digit(d)?,
        (t, d) => digit(t)? * 10 + digit(d)?,
    };
    let (hour, minute, second) = parse_hms(&s[7..15])?;
    if day == 0 || day > 31 {
        return Err(StampError::Invalid);
    }
    let offset = i64::from(clock.utc_offset_seconds);
    let seconds_in_day = i64::from(hour * 3600 + minute * 60 + second);
    let at_year = |year: i32| -> Option<i64> {
        if day > days_in_month(year, month) {
            return None;
        }
        Some(days_from_civil(year, month, day) * SECONDS_PER_DAY + seconds_in_day - offset)
    };
    let unix_seconds = infer_year(clock, at_year).ok_or(StampError::Invalid)?;
    unix_seconds
        .checked_mul(NANOS_PER_SECOND)
        .ok_or(StampError::Invalid)
}

/// Picks the most recent year (at most seven back, enough to reach a leap year
/// for `Feb 29`) in which the stamp is not in the future of "now".
fn infer_year(clock: &Clock, at_year: impl Fn(i32) -> Option<i64>) -> Option<i64> {
    let latest = clock.now_unix_seconds + FUTURE_TOLERANCE_SECONDS;
    (0..8)
        .map(|back| clock.now_local_year - back)
        .filter_map(at_year)
        .find(|&seconds| seconds <= latest)
}

/// Parses an RFC 3339 stamp `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` at the start
/// of `s`. Returns (unix nanoseconds, bytes consumed).
pub fn parse_rfc3339(s: &[u8]) -> Result<(i64, usize), StampError> {
    if s.len() < 20
        || s[4] != b'-'
        || s[7] != b'-'
        || !(s[10] == b'T' || s[10] == b't' || s[10] == b' ')
    {
        return Err(StampError::Invalid);
    }
    let year = number(&s[0..4])? as i32;
    let month = number(&s[5..7])?;
    let day = number(&s[8..10])?;
    let (hour, minute, second) = parse_hms(&s[11..19])?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err(StampError::Invalid);
    }
    let mut pos = 19;
    let mut nanos: i64 = 0;
    if s.get(pos) == Some(&b'.') {
        pos += 1;
        let start = pos;
        while let Some(&b) = s.get(pos) {
            if !b.is_ascii_digit() {
                break;
            }
            if pos - start < 9 {
                nanos = nanos * 10 + i64::from(b - b'0');
            }
            pos += 1;
        }
        let digits = pos - start;
        if digits == 0 {
            return Err(StampError::Invalid);
        }
        for _ in digits..9 {
            nanos *= 10;
        }
    }
    let offset_seconds: i64 = match s.get(pos) {
        Some(b'Z' | b'z') => {
            pos += 1;
            0
        }
        Some(&sign @ (b'+' | b'-')) => {
            let tz = s.get(pos + 1..pos + 6).ok_or(StampError::Invalid)?;
            if tz[2] != b':' {
                return Err(StampError::Invalid);
            }
            let hours = number(&tz[0..2])?;
            let minutes = number(&tz[3..5])?;
            if hours > 23 || minutes > 59 {
                return Err(StampError::Invalid);
            }
            pos += 6;
            let magnitude = i64::from(hours * 3600 + minutes * 60);
            if sign == b'+' { magnitude } else { -magnitude }
        }
        _ => return Err(StampError::Invalid),
    };
    let seconds = days_from_civil(year, month, day) * SECONDS_PER_DAY
        + i64::from(hour * 3600 + minute * 60 + second)
        - offset_seconds;
    // Unix nanoseconds in an i64 reach only 1677..2262: anything else is not a real stamp.
    let unix_nanos = seconds
        .checked_mul(NANOS_PER_SECOND)
        .and_then(|n| n.checked_add(nanos))
        .ok_or(StampError::Invalid)?;
    Ok((unix_nanos, pos))
}

/// `HH:MM:SS` with range checks (a leap second `:60` is accepted).
fn parse_hms(s: &[u8]) -> Result<(u32, u32, u32), StampError> {
    if s.len() != 8 || s[2] != b':' || s[5] != b':' {
        return Err(StampError::Invalid);
    }
    let hour = number(&s[0..2])?;
    let minute = number(&s[3..5])?;
    let second = number(&s[6..8])?;
    if hour > 23 || minute > 59 || second > 60 {
        return Err(StampError::Invalid);
    }
    Ok((hour, minute, second))
}

fn digit(b: u8) -> Result<u32, StampError> {
    if b.is_ascii_digit() {
        Ok(u32::from(b - b'0'))
    } else {
        Err(StampError::Invalid)
    }
}

fn number(s: &[u8]) -> Result<u32, StampError> {
    s.iter().try_fold(0u32, |acc, &b| Ok(acc * 10 + digit(b)?))
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let m = i64::from(month);
    let day_of_year = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Inverse of [`days_from_civil`]: (year, month, day).
pub fn civil_from_days(days: i64) -> (i32, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = (year_of_era + era * 400 + i64::from(month <= 2)) as i32;
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-01-05T10:00:00Z
    const JAN_5_2026: i64 = 1_767_607_200;

    fn secs(nanos: i64) -> i64 {
        nanos / NANOS_PER_SECOND
    }

    #[test]
    fn civil_round_trip() {
        for days in [-800_000, -1, 0, 1, 10_957, 20_000, 2_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn bsd_stamp_this_year_in_utc() {
        let clock = Clock::new(JAN_5_2026, 0);
        let t = parse_bsd(b"Jan  5 09:59:00", &clock).unwrap();
        assert_eq!(secs(t), JAN_5_2026 - 60);
    }

    #[test]
    fn december_line_read_in_january_is_last_year() {
        let clock = Clock::new(JAN_5_2026, 0);
        let t = parse_bsd(b"Dec 31 23:59:59", &clock).unwrap();
        assert_eq!(
            secs(t),
            days_from_civil(2025, 12, 31) * SECONDS_PER_DAY + 86_399
        );
    }

    #[test]
    fn local_offset_is_applied() {
        // Beijing time is UTC+8: 18:00 local is 10:00 UTC.
        let clock = Clock::new(JAN_5_2026, 8 * 3600);
        let t = parse_bsd(b"Jan 05 18:00:00", &clock).unwrap();
        assert_eq!(secs(t), JAN_5_2026);
    }

    #[test]
    fn feb_29_goes_back_to_a_leap_year() {
        let clock = Clock::new(JAN_5_2026, 0);
        let t = parse_bsd(b"Feb 29 12:00:00", &clock).unwrap();
        assert_eq!(
            civil_from_days(secs(t).div_euclid(SECONDS_PER_DAY)),
            (2024, 2, 29)
        );
        // An archive read with its own modification time as "now" gets its own year.
        let archive = Clock::new(days_from_civil(2005, 7, 27) * SECONDS_PER_DAY, 0);
        let t = parse_bsd(b"Jun 14 15:16:01", &archive).unwrap();
        assert_eq!(
            civil_from_days(secs(t).div_euclid(SECONDS_PER_DAY)),
            (2005, 6, 14)
        );
    }

    #[test]
    fn bsd_rejects_broken_stamps() {
        let clock = Clock::new(JAN_5_2026, 0);
        for bad in [
            &b"Jan 5 10:00:00 x"[..],
            b"Jan 32 10:00:00",
            b"Jan  5 24:00:00",
            b"Jan  5 10:61:00",
            b"Jan  5 1O:00:00",
            b"Jan  5",
            b"Foo  5 10:00:00",
        ] {
            assert_eq!(
                parse_bsd(bad, &clock),
                Err(StampError::Invalid),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn rfc3339_with_fraction_and_offsets() {
        let (t, used) = parse_rfc3339(b"2026-01-05T18:00:00.123456+08:00 host").unwrap();
        assert_eq!(t, JAN_5_2026 * NANOS_PER_SECOND + 123_456_000);
        assert_eq!(used, 32);
        let (t, used) = parse_rfc3339(b"2026-01-05T10:00:00Z").unwrap();
        assert_eq!(t, JAN_5_2026 * NANOS_PER_SECOND);
        assert_eq!(used, 20);
        let (t, _) = parse_rfc3339(b"2026-01-05T09:00:00.5-01:00").unwrap();
        assert_eq!(t, JAN_5_2026 * NANOS_PER_SECOND + 500_000_000);
        let (t, _) = parse_rfc3339(b"2026-01-05T10:00:00.1234567890123Z").unwrap();
        assert_eq!(t, JAN_5_2026 * NANOS_PER_SECOND + 123_456_789);
    }

    #[test]
    fn rfc3339_rejects_broken_stamps() {
        for bad in [
            &b"2026-13-05T10:00:00Z"[..],
            b"2026-02-30T10:00:00Z",
            b"2026-01-05T10:00:00",
            b"2026-01-05T10:00:00.Z",
            b"2026-01-05T10:00:00+0800",
            b"2026-01-05T10:00:00+08",
            b"2026-01-05X10:00:00Z",
            b"20x6-01-05T10:00:00Z",
            b"9999-12-31T23:59:59.999999999Z",
            b"2262-04-12T00:00:00Z",
        ] {
            assert!(
                parse_rfc3339(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
