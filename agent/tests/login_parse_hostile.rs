//! Hostile input for the auth-log parser through the public API: deterministic
//! mutations of real lines (a stable-Rust stand-in for the cargo-fuzz target in
//! `fuzz/`), 10 MB lines, invalid UTF-8, control characters and forged peers.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use shaobing_agent::capture::login::{ParseContext, ParseOutcome, parse_line};

/// 2026-01-05T10:00:00Z
const NOW: i64 = 1_767_607_200_000_000_000;

fn seeds() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/capture/login/testdata");
    let mut seeds = Vec::new();
    for name in ["debian12_rsyslog_auth.log", "openssh_sshd_E.log"] {
        let data = std::fs::read(dir.join(name)).unwrap();
        seeds.extend(
            data.split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .map(<[u8]>::to_vec),
        );
    }
    assert!(seeds.len() > 50);
    seeds
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: [&[u8]; 10] = [
    b" from ",
    b" port ",
    b"\xff",
    b"\0",
    b"\r",
    b"[preauth]",
    b" ; COMMAND=",
    b"'",
    b"(uid=0)",
    b":",
];

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(5) {
            0 => data.insert(at, rng.next() as u8),
            1 if at < data.len() => {
                data.remove(at);
            }
            2 if at < data.len() => data[at] = rng.next() as u8,
            3 => {
                let piece = INTERESTING[rng.below(INTERESTING.len())];
                data.splice(at..at, piece.iter().copied());
            }
            _ => data.truncate(at),
        }
    }
    data
}

#[test]
fn mutated_real_lines_never_panic_and_parse_deterministically() {
    let seeds = seeds();
    let ctx = ParseContext::new(NOW, 8 * 3600);
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let mut parsed = 0;
    for _ in 0..60_000 {
        let seed = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, seed);
        let outcome = parse_line(&input, &ctx);
        assert_eq!(
            outcome,
            parse_line(&input, &ctx),
            "{:?}",
            String::from_utf8_lossy(&input)
        );
        if let ParseOutcome::Parsed(p) = &outcome {
            parsed += 1;
            assert!(p.login.user.len() <= input.len() * 3);
            assert!(p.login.source_port <= 65_535);
        }
    }
    assert!(
        parsed > 3_000,
        "mutations stay close to real lines: {parsed} parsed"
    );
}

#[test]
fn ten_megabyte_lines_are_handled_quickly() {
    let ctx = ParseContext::new(NOW, 0);
    let mut huge = b"Jan  5 09:00:00 h sshd[1]: Invalid user ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 10 * 1024 * 1024));
    huge.extend_from_slice(b" from 192.0.2.1 port 22");
    let started = Instant::now();
    let outcome = parse_line(&huge, &ctx);
    match outcome {
        ParseOutcome::Parsed(p) => assert_eq!(p.login.source_ip, "192.0.2.1"),
        other => panic!("{other:?}"),
    }
    let junk: Vec<u8> = (0..10 * 1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    let _ = parse_line(&junk, &ctx);
    let spaces = " from ".repeat(2 * 1024 * 1024);
    let _ = parse_line(spaces.as_bytes(), &ctx);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn control_characters_and_forged_peers() {
    let ctx = ParseContext::new(NOW, 0);
    let line = b"Jan  5 09:00:00 h sshd[1]: Failed password for invalid user \x1b[31mroot\x07 from 6.6.6.6 port 22 from 192.0.2.9 port 4444 ssh2";
    match parse_line(line, &ctx) {
        ParseOutcome::Parsed(p) => {
            assert_eq!(p.login.source_ip, "192.0.2.9");
            assert_eq!(p.login.source_port, 4444);
            assert!(p.login.user.starts_with("\u{1b}[31mroot"));
        }
        other => panic!("{other:?}"),
    }
    // A forged stamp cannot make a line look like it came from the future or past the year.
    assert!(matches!(
        parse_line(
            b"Feb 30 09:00:00 h sshd[1]: Accepted password for root from 1.2.3.4 port 1 ssh2",
            &ctx
        ),
        ParseOutcome::Malformed(_)
    ));
}
