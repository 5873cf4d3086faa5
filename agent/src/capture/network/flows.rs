//! The bounded flow table: per-flow state keyed by protocol and both endpoints,
//! turning a packet stream into a few records per conversation instead of one
//! per packet.
//!
//! What a flow reports:
//! - TCP: `connect` at the first SYN (a connection attempt; port scans are many
//!   of these), `accept` at the SYN-ACK (the server took it), and a `flow`
//!   summary (bytes, packets, duration) when it closes (both FINs or a RST), idles
//!   out, is evicted, or the table is drained. Attempts that were never
//!   established (scans answered by RST, SYN floods) get no summary: their
//!   `connect` already tells the story.
//! - Flows first seen mid-stream (the agent started during them) report no
//!   `connect`; they count as established once both sides sent non-RST segments.
//! - UDP: `connect` at the first datagram, a `flow` summary at idle or eviction.
//! - ICMP: `icmp` at the first message of an exchange (echoes are matched by
//!   identifier), a `flow` summary at idle or eviction.
//!
//! Memory is bounded by [`LruMap`]: at the cap the least recently seen flow is
//! evicted (summarised first if established) and counted in [`FlowTable::evicted`].
//! Closed TCP flows stay until they idle out so that trailing ACKs do not start a
//! new flow.

use std::net::IpAddr;

use shaobing_wire::v1::{Direction, NetAction};

use super::decode::{Packet, TcpFlags, Transport as Wire};
use super::lru::LruMap;
use super::record::{LocalAddrs, NetRecord, Transport};

const NANOS_PER_SEC: i64 = 1_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FlowKey {
    transport: Transport,
    /// The lower of the two endpoints, so both directions find the same flow.
    low: (IpAddr, u16),
    high: (IpAddr, u16),
}

/// Flag bits of a flow.
mod bit {
    pub const ESTABLISHED: u8 = 0x01;
    pub const CLOSED: u8 = 0x02;
    pub const MIDSTREAM: u8 = 0x04;
    pub const INITIATOR_SPOKE: u8 = 0x08;
    pub const RESPONDER_SPOKE: u8 = 0x10;
    pub const INITIATOR_FIN: u8 = 0x20;
    pub const RESPONDER_FIN: u8 = 0x40;
}

#[derive(Debug, Clone, Default)]
struct FlowState {
    first_ns: i64,
    last_ns: i64,
    bytes: u64,
    packets: u64,
    /// Whether the initiator is the key's `low` endpoint.
    initiator_is_low: bool,
    direction: Direction,
    bits: u8,
    /// ICMP type and code of the first message (reported as ports).
    icmp: (u8, u8),
}

impl FlowState {
    fn has(&self, bits: u8) -> bool {
        self.bits & bits == bits
    }
}

/// Per-interface flow state with a hard cap on the number of flows.
pub struct FlowTable {
    flows: LruMap<FlowKey, FlowState>,
    idle_ns: i64,
    /// Flows evicted at the cap since the last [`FlowTable::take_evicted`].
    evicted: u64,
}

/// What a packet looks like to the flow table.
struct Observed {
    key: FlowKey,
    src_is_low: bool,
    tcp_flags: Option<TcpFlags>,
    /// For UDP and ICMP: whether the packet's source looks like the initiator.
    src_initiates: bool,
    icmp: (u8, u8),
}

impl FlowTable {
    /// A table of at most `max_flows` flows that forgets flows idle for `idle_secs`.
    pub fn new(max_flows: usize, idle_secs: u64) -> Self {
        FlowTable {
            flows: LruMap::new(max_flows),
            idle_ns: (idle_secs.max(1) as i64).saturating_mul(NANOS_PER_SEC),
            evicted: 0,
        }
    }

    /// Flows currently tracked.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// Whether no flow is tracked.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Flows evicted at the cap since the last call (resets the count).
    pub fn take_evicted(&mut self) -> u64 {
        std::mem::take(&mut self.evicted)
    }

    /// Accounts one packet at `now_ns`, appending any records it causes to `out`.
    /// Packets of protocols other than TCP, UDP and ICMP are ignored.
    pub fn observe(
        &mut self,
        packet: &Packet<'_>,
        now_ns: i64,
        locals: &LocalAddrs,
        out: &mut Vec<NetRecord>,
    ) {
        let Some(observed) = observed(packet) else {
            return;
        };
        let bytes = u64::from(packet.ip_len);
        if let Some(state) = self.flows.get_mut(&observed.key) {
            state.last_ns = now_ns;
            state.bytes += bytes;
            state.packets += 1;
            let Some(flags) = observed.tcp_flags else {
                return;
            };
            let new_syn = flags.has(TcpFlags::SYN) && !flags.has(TcpFlags::ACK);
            if !(state.has(bit::CLOSED) && new_syn) {
                let from_initiator = observed.src_is_low == state.initiator_is_low;
                update_tcp(&observed.key, state, flags, from_initiator, out);
                return;
            }
        }
        // A new flow, or a new connection on the ports of a closed one.
        let Some(state) = new_flow(&observed, packet, now_ns, bytes, locals, out) else {
            return;
        };
        if let Some((key, old)) = self.flows.insert(observed.key, state) {
            self.evicted += 1;
            summarise_open(&key, &old, out);
        }
    }

    /// Summarises and forgets flows idle since before `now_ns - idle`.
    pub fn expire(&mut self, now_ns: i64, out: &mut Vec<NetRecord>) {
        while let Some((_, state)) = self.flows.peek_oldest() {
            if state.last_ns.saturating_add(self.idle_ns) > now_ns {
                break;
            }
            if let Some((key, state)) = self.flows.pop_oldest() {
                summarise_open(&key, &state, out);
            }
        }
    }

    /// Summarises and forgets every flow (at shutdown).
    pub fn drain(&mut self, out: &mut Vec<NetRecord>) {
        while let Some((key, state)) = self.flows.pop_oldest() {
            summarise_open(&key, &state, out);
        }
    }
}

fn observed(packet: &Packet<'_>) -> Option<Observed> {
    let (transport, src_port, dst_port, tcp_flags, icmp, src_initiates) = match packet.transport {
        Wire::Tcp {
            src_port,
            dst_port,
            flags,
        } => (
            Transport::Tcp,
            src_port,
            dst_port,
            Some(flags),
            (0, 0),
            true,
        ),
        Wire::Udp {
            src_port, dst_port, ..
        } => {
            // A well-known source port talking to an ephemeral one is a reply.
            let reply = src_port < 1024 && dst_port >= 1024;
            (Transport::Udp, src_port, dst_port, None, (0, 0), !reply)
        }
        Wire::Icmp {
            v6,
            kind,
            code,
            echo_id,
        } => {
            let is_reply = if v6 { kind == 129 } else { kind == 0 };
            // Echoes pair by identifier; other messages by type and code.
            let port = echo_id.unwrap_or(u16::from(kind) << 8 | u16::from(code));
            (Transport::Icmp, port, port, None, (kind, code), !is_reply)
        }
        Wire::Other(_) => return None,
    };
    let src = (packet.src, src_port);
    let dst = (packet.dst, dst_port);
    let src_is_low = src <= dst;
    let (low, high) = if src_is_low { (src, dst) } else { (dst, src) };
    Some(Observed {
        key: FlowKey {
            transport,
            low,
            high,
        },
        src_is_low,
        tcp_flags,
        src_initiates,
        icmp,
    })
}

/// State for the first packet of a flow, or `None` when the packet should not
/// start one (a stray RST).
fn new_flow(
    observed: &Observed,
    packet: &Packet<'_>,
    now_ns: i64,
    bytes: u64,
    locals: &LocalAddrs,
    out: &mut Vec<NetRecord>,
) -> Option<FlowState> {
    let mut state = FlowState {
        first_ns: now_ns,
        last_ns: now_ns,
        bytes,
        packets: 1,
        icmp: observed.icmp,
        ..FlowState::default()
    };
    let (src_initiates, action) = match observed.tcp_flags {
        Some(flags) if flags.has(TcpFlags::RST) => return None,
        Some(flags) if flags.has(TcpFlags::SYN) && !flags.has(TcpFlags::ACK) => {
            state.bits |= bit::INITIATOR_SPOKE;
            (true, Some(NetAction::Connect))
        }
        Some(flags) if flags.has(TcpFlags::SYN | TcpFlags::ACK) => {
            state.bits |= bit::ESTABLISHED | bit::RESPONDER_SPOKE;
            (false, Some(NetAction::Accept))
        }
        Some(flags) => {
            let (src_port, dst_port) = ports(&observed.key, observed.src_is_low);
            let src_initiates = !(src_port < 1024 && dst_port >= 1024);
            state.bits |= bit::MIDSTREAM;
            state.bits |= if src_initiates {
                bit::INITIATOR_SPOKE
            } else {
                bit::RESPONDER_SPOKE
            };
            if flags.has(TcpFlags::FIN) {
                state.bits |= if src_initiates {
                    bit::INITIATOR_FIN
                } else {
                    bit::RESPONDER_FIN
                };
            }
            (src_initiates, None)
        }
        None => {
            state.bits |= bit::ESTABLISHED;
            let action = if observed.key.transport == Transport::Icmp {
                NetAction::Icmp
            } else {
                NetAction::Connect
            };
            (observed.src_initiates, Some(action))
        }
    };
    state.initiator_is_low = observed.src_is_low == src_initiates;
    let (initiator, responder) = if src_initiates {
        (packet.src, packet.dst)
    } else {
        (packet.dst, packet.src)
    };
    state.direction = locals.direction(&initiator, &responder);
    if let Some(action) = action {
        out.push(record(&observed.key, &state, action, now_ns));
    }
    Some(state)
}

fn update_tcp(
    key: &FlowKey,
    state: &mut FlowState,
    flags: TcpFlags,
    from_initiator: bool,
    out: &mut Vec<NetRecord>,
) {
    if state.has(bit::CLOSED) {
        return;
    }
    if flags.has(TcpFlags::RST) {
        summarise_open(key, state, out);
        state.bits |= bit::CLOSED;
        return;
    }
    state.bits |= if from_initiator {
        bit::INITIATOR_SPOKE
    } else {
        bit::RESPONDER_SPOKE
    };
    if flags.has(TcpFlags::SYN | TcpFlags::ACK) && !from_initiator && !state.has(bit::ESTABLISHED) {
        state.bits |= bit::ESTABLISHED;
        out.push(record(key, state, NetAction::Accept, state.last_ns));
    }
    if state.has(bit::MIDSTREAM | bit::INITIATOR_SPOKE | bit::RESPONDER_SPOKE) {
        state.bits |= bit::ESTABLISHED;
    }
    if flags.has(TcpFlags::FIN) {
        state.bits |= if from_initiator {
            bit::INITIATOR_FIN
        } else {
            bit::RESPONDER_FIN
        };
        if state.has(bit::INITIATOR_FIN | bit::RESPONDER_FIN) {
            summarise_open(key, state, out);
            state.bits |= bit::CLOSED;
        }
    }
}

/// Emits the summary of a flow that was established and is not yet closed.
fn summarise_open(key: &FlowKey, state: &FlowState, out: &mut Vec<NetRecord>) {
    if state.has(bit::ESTABLISHED) && !state.has(bit::CLOSED) {
        out.push(record(key, state, NetAction::Flow, state.last_ns));
    }
}

/// Ports as seen from the packet's source when `src_is_low` says which side it is.
fn ports(key: &FlowKey, src_is_low: bool) -> (u16, u16) {
    if src_is_low {
        (key.low.1, key.high.1)
    } else {
        (key.high.1, key.low.1)
    }
}

fn record(key: &FlowKey, state: &FlowState, action: NetAction, time_unix_nano: i64) -> NetRecord {
    let (initiator, responder) = if state.initiator_is_low {
        (key.low, key.high)
    } else {
        (key.high, key.low)
    };
    let (src_port, dst_port) = if key.transport == Transport::Icmp {
        (u16::from(state.icmp.0), u16::from(state.icmp.1))
    } else {
        (initiator.1, responder.1)
    };
    let summary = action == NetAction::Flow;
    NetRecord {
        action,
        transport: key.transport,
        src: initiator.0,
        src_port,
        dst: responder.0,
        dst_port,
        direction: state.direction,
        time_unix_nano,
        bytes: if summary { state.bytes } else { 0 },
        packets: if summary { state.packets } else { 0 },
        duration_ms: if summary {
            ((state.last_ns - state.first_ns).max(0) / 1_000_000) as u64
        } else {
            0
        },
        dns: None,
    }
}

#[cfg(test)]
#[path = "flows_tests.rs"]
mod tests;
