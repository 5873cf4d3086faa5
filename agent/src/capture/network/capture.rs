//! The per-interface capture loop, run on its own blocking thread: reads frames
//! from a pnet AF_PACKET channel (socket set up by [`super::socket`]), feeds the
//! [`PacketProcessor`], and every tick expires flows, hands records to the
//! enricher, flushes counters, reads kernel drops and refreshes the host's
//! addresses. Reopens the channel with backoff if the interface goes away.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::Duration;

use pnet::datalink::{self, Channel, DataLinkReceiver, NetworkInterface};

use super::bpf::Framing;
use super::config::NetworkConfig;
use super::processor::{LinkType, PacketProcessor};
use super::record::{LocalAddrs, NetRecord};
use super::socket::{self, DropCounter, SocketError};
use crate::counters::Counters;

/// How often the loop wakes without traffic, and flushes records with it.
const TICK: Duration = Duration::from_millis(250);
/// Ticks between reads of the kernel's drop counters.
const STATS_EVERY_TICKS: u32 = 20;
/// Ticks between refreshes of the host's addresses.
const ADDRS_EVERY_TICKS: u32 = 40;
/// Records handed on as soon as this many are waiting.
const RECORD_BATCH: usize = 256;
/// Read buffer: a whole jumbo frame (DNS is kept whole by the filter).
const READ_BUFFER: usize = 65_536;
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Why capturing on an interface failed to start.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error(transparent)]
    Socket(#[from] SocketError),
    #[error("cannot open a capture channel on {interface}: {source}")]
    Channel {
        interface: String,
        source: io::Error,
    },
    #[error("{0} is not an ethernet-like interface")]
    NotEthernet(String),
    #[error("interface {0} no longer exists")]
    Gone(String),
}

/// How an interface's frames start, from its ARP hardware type
/// (`/sys/class/net/<name>/type`), or `None` for link types the decoder does not
/// know (the interface is then skipped).
pub fn link_type(interface: &NetworkInterface) -> Option<LinkType> {
    let path = format!("/sys/class/net/{}/type", interface.name);
    match std::fs::read_to_string(path).map(|t| t.trim().parse::<u32>()) {
        // ARPHRD_ETHER, ARPHRD_LOOPBACK.
        Ok(Ok(1 | 772)) => Some(LinkType::Ethernet),
        // ARPHRD_NONE (tun, wireguard), ARPHRD_TUNNEL, ARPHRD_TUNNEL6, ARPHRD_SIT.
        Ok(Ok(65534 | 768 | 769 | 776)) => Some(LinkType::RawIp),
        Ok(_) => None,
        Err(_) if interface.is_point_to_point() => Some(LinkType::RawIp),
        Err(_) => Some(LinkType::Ethernet),
    }
}

/// The host's addresses on every interface.
pub fn local_addrs() -> LocalAddrs {
    LocalAddrs::new(
        datalink::interfaces()
            .iter()
            .flat_map(|interface| interface.ips.iter().map(|network| network.ip())),
    )
}

/// Hands records to the enricher, within the per-second event budget; what does
/// not fit or finds the queue full is dropped and counted, never blocking capture.
pub struct RecordSink {
    pub tx: SyncSender<Vec<NetRecord>>,
    pub max_per_sec: u64,
    window_start_ns: i64,
    sent_in_window: u64,
}

impl RecordSink {
    pub fn new(tx: SyncSender<Vec<NetRecord>>, max_per_sec: u64) -> Self {
        RecordSink {
            tx,
            max_per_sec,
            window_start_ns: 0,
            sent_in_window: 0,
        }
    }

    /// Sends `records` seen at `now_ns`, counting what is dropped.
    pub fn send(&mut self, mut records: Vec<NetRecord>, now_ns: i64, counters: &Counters) {
        if records.is_empty() {
            return;
        }
        if self.max_per_sec > 0 {
            if now_ns - self.window_start_ns >= 1_000_000_000 {
                self.window_start_ns = now_ns;
                self.sent_in_window = 0;
            }
            let room = self.max_per_sec.saturating_sub(self.sent_in_window) as usize;
            if records.len() > room {
                counters.add("network.events_rate_limited", (records.len() - room) as u64);
                records.truncate(room);
            }
            self.sent_in_window += records.len() as u64;
            if records.is_empty() {
                return;
            }
        }
        match self.tx.try_send(records) {
            Ok(()) => {}
            Err(TrySendError::Full(records) | TrySendError::Disconnected(records)) => {
                counters.add("network.events_dropped", records.len() as u64);
            }
        }
    }
}

/// Everything one interface's capture thread needs.
pub struct InterfaceCapture {
    pub interface: NetworkInterface,
    pub link: LinkType,
    pub config: NetworkConfig,
    /// This interface's share of the flow cap.
    pub max_flows: usize,
    pub counters: Arc<Counters>,
    pub sink: RecordSink,
    pub stop: Arc<AtomicBool>,
}

impl InterfaceCapture {
    /// Captures until `stop` is set, then summarises open flows and returns.
    pub fn run(mut self) {
        let mut processor = PacketProcessor::new(
            self.link,
            self.max_flows,
            self.config.flow_idle_secs,
            local_addrs(),
        );
        let mut backoff = Duration::from_secs(1);
        while !self.stop.load(Ordering::Relaxed) {
            match self.open() {
                Ok((mut receiver, drops)) => {
                    tracing::info!(interface = %self.interface.name, bpf = self.config.bpf, "capturing");
                    backoff = Duration::from_secs(1);
                    if let Err(error) = self.pump(receiver.as_mut(), &drops, &mut processor) {
                        self.counters.inc("network.capture_errors");
                        tracing::warn!(interface = %self.interface.name, %error, "capture interrupted; reopening");
                    }
                }
                Err(error) => {
                    self.counters.inc("network.capture_errors");
                    tracing::warn!(interface = %self.interface.name, %error, retry_in = ?backoff, "cannot capture");
                }
            }
            self.sleep(backoff);
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        processor.drain();
        let now = shaobing_wire::now_unix_nano();
        self.sink
            .send(processor.take_records(), now, &self.counters);
        processor.flush_counters(&self.counters);
        tracing::info!(interface = %self.interface.name, "capture stopped");
    }

    fn open(&mut self) -> Result<(Box<dyn DataLinkReceiver>, DropCounter), CaptureError> {
        // An interface removed and created again has a new index: look it up afresh.
        let name = self.interface.name.clone();
        self.interface = datalink::interfaces()
            .into_iter()
            .find(|interface| interface.name == name)
            .ok_or(CaptureError::Gone(name))?;
        let framing = match self.link {
            LinkType::Ethernet => Framing::Ethernet,
            LinkType::RawIp => Framing::RawIp,
        };
        let (fd, drops) = socket::open(framing, self.config.bpf, self.config.socket_buffer_bytes)?;
        let config = datalink::Config {
            read_buffer_size: READ_BUFFER,
            read_timeout: Some(TICK),
            promiscuous: false,
            socket_fd: Some(fd),
            ..datalink::Config::default()
        };
        match datalink::channel(&self.interface, config) {
            Ok(Channel::Ethernet(_sender, receiver)) => Ok((receiver, drops)),
            Ok(_) => Err(CaptureError::NotEthernet(self.interface.name.clone())),
            Err(source) => Err(CaptureError::Channel {
                interface: self.interface.name.clone(),
                source,
            }),
        }
    }

    /// Reads frames until `stop` (Ok) or a read error (Err).
    fn pump(
        &mut self,
        receiver: &mut dyn DataLinkReceiver,
        drops: &DropCounter,
        processor: &mut PacketProcessor,
    ) -> io::Result<()> {
        let tick_ns = TICK.as_nanos() as i64;
        let mut next_tick = shaobing_wire::now_unix_nano() + tick_ns;
        let mut ticks = 0u32;
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let now = match receiver.next() {
                Ok(frame) => {
                    let now = shaobing_wire::now_unix_nano();
                    processor.process(frame, now);
                    if processor.pending_records() >= RECORD_BATCH {
                        self.sink
                            .send(processor.take_records(), now, &self.counters);
                    }
                    now
                }
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::TimedOut
                            | io::ErrorKind::WouldBlock
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    shaobing_wire::now_unix_nano()
                }
                Err(error) => return Err(error),
            };
            if now < next_tick {
                continue;
            }
            next_tick = now + tick_ns;
            ticks = ticks.wrapping_add(1);
            processor.expire(now);
            self.sink
                .send(processor.take_records(), now, &self.counters);
            processor.flush_counters(&self.counters);
            if ticks % STATS_EVERY_TICKS == 1 {
                self.read_drops(drops);
            }
            if ticks.is_multiple_of(ADDRS_EVERY_TICKS) {
                processor.set_local_addrs(local_addrs());
            }
        }
    }

    fn read_drops(&self, drops: &DropCounter) {
        match drops.take() {
            Ok((_, 0)) => {}
            Ok((received, dropped)) => {
                self.counters.add("network.kernel_drops", dropped);
                tracing::warn!(interface = %self.interface.name, dropped, received, "kernel dropped captured packets");
            }
            Err(error) => tracing::debug!(%error, "cannot read packet statistics"),
        }
    }

    /// Sleeps up to `duration`, waking early when `stop` is set.
    fn sleep(&self, duration: Duration) {
        let step = Duration::from_millis(100);
        let mut left = duration;
        while !left.is_zero() && !self.stop.load(Ordering::Relaxed) {
            std::thread::sleep(step.min(left));
            left = left.saturating_sub(step);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::sync::mpsc::sync_channel;

    use shaobing_wire::v1::{Direction, NetAction};

    use super::*;
    use crate::capture::network::record::Transport;

    fn record() -> NetRecord {
        let ip: IpAddr = "10.0.0.1".parse().expect("address");
        NetRecord {
            action: NetAction::Connect,
            transport: Transport::Tcp,
            src: ip,
            src_port: 1,
            dst: ip,
            dst_port: 2,
            direction: Direction::Local,
            time_unix_nano: 0,
            bytes: 0,
            packets: 0,
            duration_ms: 0,
            dns: None,
        }
    }

    #[test]
    fn sink_enforces_the_budget_and_counts_drops() {
        let counters = Counters::default();
        let (tx, rx) = sync_channel(1);
        let mut sink = RecordSink::new(tx, 3);
        sink.send(vec![record(), record()], 1_000_000_000, &counters);
        sink.send(vec![record(), record()], 1_500_000_000, &counters);
        assert_eq!(counters.get("network.events_rate_limited"), 1);
        assert_eq!(
            counters.get("network.events_dropped"),
            1,
            "the queue holds one batch"
        );
        assert_eq!(rx.try_recv().map(|b| b.len()).ok(), Some(2));
        sink.send(vec![record(), record()], 2_000_000_000, &counters);
        assert_eq!(
            rx.try_recv().map(|b| b.len()).ok(),
            Some(2),
            "a new second, a new budget"
        );
        drop(rx);
        sink.send(vec![record()], 3_000_000_000, &counters);
        assert_eq!(counters.get("network.events_dropped"), 2);
    }

    #[test]
    fn loopback_is_ethernet_framed() {
        let loopback = datalink::interfaces()
            .into_iter()
            .find(NetworkInterface::is_loopback)
            .expect("a loopback interface");
        assert_eq!(link_type(&loopback), Some(LinkType::Ethernet));
        assert!(local_addrs().contains(&"127.0.0.1".parse().expect("address")));
    }
}
