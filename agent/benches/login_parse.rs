//! Throughput of the auth-log line parser (`capture::login::parse_line`) on real
//! syslog: loghub's `Linux_2k.log` (<https://github.com/logpai/loghub>, Zhu et al.,
//! ISSRE 2023; read from `../shared/data/`, never copied into the repository)
//! repeated 10 times, plus the Debian 12 auth.log recorded for the tests.
//! Target: at least 500k lines per second on one core.
//!
//! Run: `cargo bench -p shaobing-agent --bench login_parse`

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shaobing_agent::capture::login::{ParseContext, ParseOutcome, parse_line};

fn read(relative: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn lines(data: &[u8], repeat: usize) -> Vec<&[u8]> {
    let one: Vec<&[u8]> = data
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    std::iter::repeat_n(one, repeat).flatten().collect()
}

fn parse_all(lines: &[&[u8]], ctx: &ParseContext) -> usize {
    lines
        .iter()
        .filter(|line| matches!(parse_line(black_box(line), ctx), ParseOutcome::Parsed(_)))
        .count()
}

fn bench(c: &mut Criterion) {
    let ctx = ParseContext::new(shaobing_wire::now_unix_nano(), 0);
    let loghub = read("../../shared/data/loghub/Linux_2k.log");
    let debian = read("src/capture/login/testdata/debian12_rsyslog_auth.log");
    let mut group = c.benchmark_group("login_parse");
    for (name, data, repeat) in [
        ("loghub_linux_2k_x10", &loghub, 10),
        ("debian12_auth_log_x100", &debian, 100),
    ] {
        let lines = lines(data, repeat);
        assert!(parse_all(&lines, &ctx) > 0, "{name}: nothing parsed");
        group.throughput(Throughput::Elements(lines.len() as u64));
        group.bench_function(name, |b| b.iter(|| parse_all(&lines, &ctx)));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
