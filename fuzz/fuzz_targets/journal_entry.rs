//! Fuzzes the decoding of `journalctl -o json` lines and the parsing of their message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shaobing_agent::capture::login::journald::parse_entry;
use shaobing_agent::capture::login::parse_message;

fuzz_target!(|data: &[u8]| {
    if let Ok(entry) = parse_entry(data) {
        let _ = parse_message(&entry.identifier, &entry.message);
    }
});
