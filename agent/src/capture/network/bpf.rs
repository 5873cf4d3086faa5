//! The in-kernel classic BPF filter attached to each capture socket.
//!
//! It keeps the kernel from copying what the agent does not need:
//! - non-IP frames (ARP, LLDP, ...) are dropped;
//! - TCP, ICMP and IP fragments are cut to [`SNAP_LEN`] bytes — headers only;
//!   sizes come from the IP header, so byte counts stay exact;
//! - UDP to or from port 53 is kept whole (DNS answers are parsed);
//! - frames still carrying a VLAN tag in their data, and IPv6 packets with
//!   extension headers, are kept whole and left to the decoder.
//!
//! [`program`] builds the instructions; the unit tests run them through a small
//! interpreter, and the namespace tests through the kernel.

/// Bytes kept of packets whose payload is not needed: Ethernet (14) + IPv4 with
/// options (60) + TCP with options (60), rounded up.
pub const SNAP_LEN: u32 = 160;
/// "The whole packet" (what tcpdump uses).
pub const WHOLE: u32 = 262_144;

/// One classic BPF instruction (`struct sock_filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

const LD_H_ABS: u16 = 0x28;
const LD_B_ABS: u16 = 0x30;
const LD_H_IND: u16 = 0x48;
const LDX_B_MSH: u16 = 0xb1;
const ALU_AND_K: u16 = 0x54;
const JEQ_K: u16 = 0x15;
const JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;

/// Where a frame's IP header starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// After a 14-byte Ethernet header.
    Ethernet,
    /// At byte 0 (tun and other devices without a link header).
    RawIp,
}

#[derive(Clone, Copy)]
enum Target {
    Next,
    To(&'static str),
}

/// A tiny assembler: instructions with jump targets named by label.
#[derive(Default)]
struct Assembler {
    code: Vec<(u16, Target, Target, u32)>,
    labels: Vec<(&'static str, usize)>,
}

impl Assembler {
    fn label(&mut self, name: &'static str) -> &mut Self {
        self.labels.push((name, self.code.len()));
        self
    }
    fn op(&mut self, code: u16, k: u32) -> &mut Self {
        self.code.push((code, Target::Next, Target::Next, k));
        self
    }
    fn jump(&mut self, code: u16, k: u32, jt: Target, jf: Target) -> &mut Self {
        self.code.push((code, jt, jf, k));
        self
    }
    fn assemble(&self) -> Vec<Insn> {
        let resolve = |at: usize, target: Target| -> u8 {
            match target {
                Target::Next => 0,
                Target::To(name) => {
                    let position = self
                        .labels
                        .iter()
                        .find(|(label, _)| *label == name)
                        .map_or(at + 1, |(_, position)| *position);
                    // Classic BPF jumps forward only; the program is short.
                    u8::try_from(position.saturating_sub(at + 1)).unwrap_or(u8::MAX)
                }
            }
        };
        self.code
            .iter()
            .enumerate()
            .map(|(at, &(code, jt, jf, k))| Insn {
                code,
                jt: resolve(at, jt),
                jf: resolve(at, jf),
                k,
            })
            .collect()
    }
}

/// The filter program for an interface with `framing`.
pub fn program(framing: Framing) -> Vec<Insn> {
    use Target::{Next, To};
    let mut asm = Assembler::default();
    let ip = match framing {
        Framing::Ethernet => {
            asm.op(LD_H_ABS, 12)
                .jump(JEQ_K, 0x0800, To("v4"), Next)
                .jump(JEQ_K, 0x86dd, To("v6"), Next)
                .jump(JEQ_K, 0x8100, To("whole"), Next)
                .jump(JEQ_K, 0x88a8, To("whole"), Next)
                .jump(JEQ_K, 0x9100, To("whole"), To("drop"));
            14
        }
        Framing::RawIp => {
            asm.op(LD_B_ABS, 0)
                .op(ALU_AND_K, 0xf0)
                .jump(JEQ_K, 0x40, To("v4"), Next)
                .jump(JEQ_K, 0x60, To("v6"), To("drop"));
            0
        }
    };
    asm.label("v4")
        .op(LD_H_ABS, ip + 6)
        .jump(JSET_K, 0x3fff, To("snap"), Next)
        .op(LD_B_ABS, ip + 9)
        .jump(JEQ_K, 17, Next, To("snap"))
        .op(LDX_B_MSH, ip)
        .op(LD_H_IND, ip)
        .jump(JEQ_K, 53, To("whole"), Next)
        .op(LD_H_IND, ip + 2)
        .jump(JEQ_K, 53, To("whole"), To("snap"));
    asm.label("v6")
        .op(LD_B_ABS, ip + 6)
        .jump(JEQ_K, 17, To("v6udp"), Next)
        .jump(JEQ_K, 6, To("snap"), Next)
        .jump(JEQ_K, 58, To("snap"), To("whole"));
    asm.label("v6udp")
        .op(LD_H_ABS, ip + 40)
        .jump(JEQ_K, 53, To("whole"), Next)
        .op(LD_H_ABS, ip + 42)
        .jump(JEQ_K, 53, To("whole"), To("snap"));
    asm.label("whole").op(RET_K, WHOLE);
    asm.label("snap").op(RET_K, SNAP_LEN);
    asm.label("drop").op(RET_K, 0);
    asm.assemble()
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::capture::network::frames;

    /// Runs a program the way the kernel does for the subset it uses; a load past
    /// the end of the packet drops it.
    fn run(program: &[Insn], packet: &[u8]) -> u32 {
        let (mut a, mut x, mut pc) = (0u32, 0u32, 0usize);
        let byte = |at: usize| packet.get(at).map(|b| u32::from(*b));
        let half = |at: usize| Some(byte(at)? << 8 | byte(at + 1)?);
        while let Some(insn) = program.get(pc) {
            let k = insn.k as usize;
            let loaded = match insn.code {
                LD_H_ABS => Some(half(k)),
                LD_B_ABS => Some(byte(k)),
                LD_H_IND => Some(half(x as usize + k)),
                _ => None,
            };
            match loaded {
                Some(Some(value)) => a = value,
                Some(None) => return 0,
                None => {}
            }
            pc += 1;
            match insn.code {
                LDX_B_MSH => match byte(k) {
                    Some(b) => x = (b & 0x0f) * 4,
                    None => return 0,
                },
                ALU_AND_K => a &= insn.k,
                JEQ_K => pc += usize::from(if a == insn.k { insn.jt } else { insn.jf }),
                JSET_K => pc += usize::from(if a & insn.k != 0 { insn.jt } else { insn.jf }),
                RET_K => return insn.k,
                _ => {}
            }
        }
        panic!("program ran off its end");
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address")
    }

    #[test]
    fn ethernet_program_keeps_dns_whole_and_cuts_the_rest() {
        let program = program(Framing::Ethernet);
        assert!(program.len() < 64);
        let v4 = (ip("10.0.0.1"), ip("10.0.0.2"));
        let v6 = (ip("2001:db8::1"), ip("2001:db8::2"));
        let syn = frames::tcp(v4.0, 40000, v4.1, 443, 0x02, 0);
        assert_eq!(run(&program, &syn), SNAP_LEN);
        assert_eq!(
            run(&program, &frames::udp(v4.0, 40000, v4.1, 53, b"q")),
            WHOLE
        );
        assert_eq!(
            run(&program, &frames::udp(v4.1, 53, v4.0, 40000, b"r")),
            WHOLE
        );
        assert_eq!(
            run(&program, &frames::udp(v4.0, 40000, v4.1, 123, b"n")),
            SNAP_LEN
        );
        assert_eq!(
            run(&program, &frames::icmp(v4.0, v4.1, 8, 0, [0; 4])),
            SNAP_LEN
        );
        assert_eq!(
            run(&program, &frames::udp(v6.0, 40000, v6.1, 53, b"q")),
            WHOLE
        );
        assert_eq!(
            run(&program, &frames::udp(v6.1, 53, v6.0, 40000, b"r")),
            WHOLE
        );
        assert_eq!(
            run(&program, &frames::udp(v6.0, 1, v6.1, 2, b"x")),
            SNAP_LEN
        );
        assert_eq!(
            run(&program, &frames::tcp(v6.0, 1, v6.1, 2, 0x10, 0)),
            SNAP_LEN
        );
        assert_eq!(
            run(&program, &frames::icmp(v6.0, v6.1, 128, 0, [0; 4])),
            SNAP_LEN
        );
        let extension = frames::ip_frame(v6.0, v6.1, 0, &[17, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(run(&program, &extension), WHOLE);
        assert_eq!(run(&program, &frames::with_vlan(&syn, 5)), WHOLE);

        // IPv4 with options: the UDP ports sit after the longer header.
        let mut with_options = frames::udp(v4.0, 40000, v4.1, 53, b"q");
        with_options[14] = 0x46;
        with_options.splice(34..34, [1u8, 1, 1, 1]);
        assert_eq!(run(&program, &with_options), WHOLE);

        let mut fragment = frames::udp(v4.0, 40000, v4.1, 53, b"q");
        fragment[20] = 0x20;
        assert_eq!(run(&program, &fragment), SNAP_LEN);

        let mut arp = vec![0u8; 42];
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert_eq!(run(&program, &arp), 0);
    }

    #[test]
    fn raw_ip_program_reads_from_byte_zero() {
        let program = program(Framing::RawIp);
        let v4 = (ip("10.0.0.1"), ip("10.0.0.2"));
        let v6 = (ip("2001:db8::1"), ip("2001:db8::2"));
        let strip = |frame: Vec<u8>| frame[14..].to_vec();
        assert_eq!(
            run(&program, &strip(frames::udp(v4.0, 1, v4.1, 53, b"q"))),
            WHOLE
        );
        assert_eq!(
            run(&program, &strip(frames::tcp(v4.0, 1, v4.1, 2, 0x02, 0))),
            SNAP_LEN
        );
        assert_eq!(
            run(&program, &strip(frames::udp(v6.1, 53, v6.0, 9, b"r"))),
            WHOLE
        );
        assert_eq!(run(&program, &[0x10, 0, 0, 0]), 0);
    }

    #[test]
    fn jumps_resolve_forward_within_the_program() {
        for framing in [Framing::Ethernet, Framing::RawIp] {
            let program = program(framing);
            let last = program.len() - 1;
            for (at, insn) in program.iter().enumerate() {
                if !matches!(insn.code, JEQ_K | JSET_K) {
                    continue;
                }
                assert!(
                    at + 1 + usize::from(insn.jt) <= last,
                    "jt out of range at {at}"
                );
                assert!(
                    at + 1 + usize::from(insn.jf) <= last,
                    "jf out of range at {at}"
                );
            }
            assert_eq!(program.last().map(|i| i.code), Some(RET_K));
        }
    }
}
