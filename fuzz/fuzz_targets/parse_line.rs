//! Fuzzes the auth-log line parser: any bytes must give an outcome (never a panic
//! or a stall), the same outcome twice, and fields no longer than the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shaobing_agent::capture::login::{ParseContext, ParseOutcome, parse_line};

fuzz_target!(|data: &[u8]| {
    // 2026-01-05T10:00:00Z, a host in UTC+8.
    let ctx = ParseContext::new(1_767_607_200_000_000_000, 8 * 3600);
    let outcome = parse_line(data, &ctx);
    assert_eq!(outcome, parse_line(data, &ctx));
    if let ParseOutcome::Parsed(parsed) = &outcome {
        // Lossy UTF-8 turns one bad byte into three: bound by that.
        let limit = data.len() * 3;
        let login = &parsed.login;
        for field in [
            &login.user,
            &login.target_user,
            &login.source_ip,
            &login.command,
            &login.tty,
        ] {
            assert!(field.len() <= limit);
        }
    }
});
