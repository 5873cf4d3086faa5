//! Fuzzes the packet path of the network capture: any bytes, read as an Ethernet
//! frame, a raw IP packet or a DNS message, must decode or be refused (never a
//! panic or a stall), and a decoded packet never points outside the input. The
//! frame is also pushed through the whole per-interface pipeline (DNS matching and
//! the flow table) twice, as a packet and as its own reply would.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shaobing_agent::capture::network::decode::{Transport, decode, decode_ip};
use shaobing_agent::capture::network::dns;
use shaobing_agent::capture::network::processor::{LinkType, PacketProcessor};
use shaobing_agent::capture::network::record::LocalAddrs;

fuzz_target!(|data: &[u8]| {
    for decoded in [decode(data), decode_ip(data)] {
        if let Ok(packet) = decoded {
            if let Transport::Udp { payload, .. } = packet.transport {
                assert!(payload.len() <= data.len());
                let _ = dns::parse(payload);
            }
        }
    }
    if let Ok(message) = dns::parse(data) {
        assert!(message.answers.len() <= dns::MAX_ANSWERS);
        assert!(message.name.len() <= data.len() * 4);
    }
    let mut processor = PacketProcessor::new(LinkType::Ethernet, 8, 1, LocalAddrs::default());
    processor.process(data, 1);
    processor.process(data, 2_000_000_000);
    processor.expire(10_000_000_000);
    processor.drain();
    let _ = processor.take_records();
});
