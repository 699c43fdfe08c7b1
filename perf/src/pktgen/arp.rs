//! Sans-IO ARP for the generator: answering who-has requests for our addresses, learning the
//! gateway's MAC from a reply, and the retry / give-up schedule of the gateway resolution.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use sdwan_dataplane::wire::arp::{self, Packet, FRAME_LEN, OP_REPLY, OP_REQUEST};
use sdwan_dataplane::wire::ethernet::{self, ETHERTYPE_ARP};
use sdwan_dataplane::wire::MacAddr;

pub use arp::FRAME_LEN as ARP_FRAME_LEN;

/// What an ARP frame means to us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpEvent {
    /// Not ARP, malformed, or not about us.
    Ignore,
    /// A request for one of `ours`: the reply (FRAME_LEN bytes) was written to the output buffer.
    Reply,
    /// A reply (or a gratuitous request) from `ip` telling its MAC.
    Learned { ip: Ipv4Addr, mac: MacAddr },
}

/// Handles one received frame on a port whose MAC is `port_mac` and that answers for the
/// addresses in `ours`. Learns the sender of any reply or request whose sender is `want`. Never panics.
pub fn handle(
    frame: &[u8],
    port_mac: &MacAddr,
    ours: &[Ipv4Addr],
    want: Option<Ipv4Addr>,
    out: &mut [u8; FRAME_LEN],
) -> ArpEvent {
    let Ok(eth) = ethernet::Frame::new_checked(frame) else {
        return ArpEvent::Ignore;
    };
    if eth.ethertype() != ETHERTYPE_ARP {
        return ArpEvent::Ignore;
    }
    let Ok(p) = Packet::new_checked(eth.payload()) else {
        return ArpEvent::Ignore;
    };
    let op = p.operation();
    if op == OP_REQUEST && ours.contains(&p.target_ip()) {
        write_reply(&p, port_mac, out);
        return ArpEvent::Reply;
    }
    // A reply to our request, or the gateway asking for someone: both tell its MAC.
    if want.is_some() && Some(p.sender_ip()) == want && (op == OP_REPLY || op == OP_REQUEST) {
        return ArpEvent::Learned {
            ip: p.sender_ip(),
            mac: p.sender_mac(),
        };
    }
    ArpEvent::Ignore
}

fn write_reply(req: &Packet<&[u8]>, port_mac: &MacAddr, out: &mut [u8; FRAME_LEN]) {
    let asker_mac = req.sender_mac();
    ethernet::write_header(out, &asker_mac, port_mac, ETHERTYPE_ARP);
    arp::write(
        &mut out[ethernet::HEADER_LEN..],
        OP_REPLY,
        port_mac,
        req.target_ip(),
        &asker_mac,
        req.sender_ip(),
    );
    out[ethernet::HEADER_LEN + arp::PACKET_LEN..].fill(0);
}

/// Writes a broadcast who-has request for `target` from `src` into `out`.
pub fn request(out: &mut [u8; FRAME_LEN], mac: &MacAddr, src: Ipv4Addr, target: Ipv4Addr) {
    arp::build_request(out, mac, src, target);
}

/// The gateway resolution schedule: a request now and every `interval`, giving up after
/// `give_up`.
#[derive(Debug)]
pub struct Resolver {
    pub target: Ipv4Addr,
    start: Instant,
    next: Instant,
    interval: Duration,
    give_up: Duration,
    learned: Option<MacAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolverAction {
    SendRequest,
    Wait,
    Done(MacAddr),
    GiveUp,
}

impl Resolver {
    pub fn new(target: Ipv4Addr, now: Instant, interval: Duration, give_up: Duration) -> Self {
        Self {
            target,
            start: now,
            next: now,
            interval,
            give_up,
            learned: None,
        }
    }

    pub fn on_event(&mut self, ev: ArpEvent) {
        if let ArpEvent::Learned { ip, mac } = ev {
            if ip == self.target {
                self.learned = Some(mac);
            }
        }
    }

    pub fn poll(&mut self, now: Instant) -> ResolverAction {
        if let Some(mac) = self.learned {
            return ResolverAction::Done(mac);
        }
        if now.duration_since(self.start) >= self.give_up {
            return ResolverAction::GiveUp;
        }
        if now >= self.next {
            self.next = now + self.interval;
            return ResolverAction::SendRequest;
        }
        ResolverAction::Wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: MacAddr = [2, 0, 0, 0, 0, 1];
    const GW: MacAddr = [2, 0, 0, 0, 0, 0xfe];
    const SRC: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 2);
    const GWIP: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);

    fn frame_of(op: u16, smac: &MacAddr, sip: Ipv4Addr, tmac: &MacAddr, tip: Ipv4Addr) -> Vec<u8> {
        let mut f = vec![0u8; FRAME_LEN];
        ethernet::write_header(&mut f, &[0xff; 6], smac, ETHERTYPE_ARP);
        arp::write(&mut f[14..], op, smac, sip, tmac, tip);
        f
    }

    #[test]
    fn answers_requests_for_our_address_only() {
        let mut out = [0u8; FRAME_LEN];
        let req = frame_of(OP_REQUEST, &GW, GWIP, &[0; 6], SRC);
        assert_eq!(handle(&req, &ME, &[SRC], None, &mut out), ArpEvent::Reply);
        let eth = ethernet::Frame::new_checked(&out[..]).unwrap();
        assert_eq!(eth.dst(), GW);
        assert_eq!(eth.src(), ME);
        let p = Packet::new_checked(eth.payload()).unwrap();
        assert_eq!(p.operation(), OP_REPLY);
        assert_eq!((p.sender_mac(), p.sender_ip()), (ME, SRC));
        assert_eq!((p.target_mac(), p.target_ip()), (GW, GWIP));

        let other = frame_of(OP_REQUEST, &GW, GWIP, &[0; 6], Ipv4Addr::new(10, 1, 0, 9));
        assert_eq!(
            handle(&other, &ME, &[SRC], None, &mut out),
            ArpEvent::Ignore
        );
        assert_eq!(handle(&req, &ME, &[], None, &mut out), ArpEvent::Ignore);
    }

    #[test]
    fn a_port_may_answer_for_two_addresses() {
        let mut out = [0u8; FRAME_LEN];
        let rx_ip = Ipv4Addr::new(10, 2, 0, 2);
        for ip in [SRC, rx_ip] {
            let req = frame_of(OP_REQUEST, &GW, GWIP, &[0; 6], ip);
            assert_eq!(
                handle(&req, &ME, &[SRC, rx_ip], None, &mut out),
                ArpEvent::Reply
            );
            let p = Packet::new_checked(&out[14..]).unwrap();
            assert_eq!(p.sender_ip(), ip);
        }
    }

    #[test]
    fn request_for_us_from_the_gateway_is_answered() {
        let mut out = [0u8; FRAME_LEN];
        let req = frame_of(OP_REQUEST, &GW, GWIP, &[0; 6], SRC);
        assert_eq!(
            handle(&req, &ME, &[SRC], Some(GWIP), &mut out),
            ArpEvent::Reply
        );
    }

    #[test]
    fn learns_from_reply_and_resolver_schedule() {
        let mut out = [0u8; FRAME_LEN];
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut r = Resolver::new(GWIP, t0, ms(100), ms(5000));
        assert_eq!(r.poll(t0), ResolverAction::SendRequest);
        assert_eq!(r.poll(t0 + ms(50)), ResolverAction::Wait);
        assert_eq!(r.poll(t0 + ms(100)), ResolverAction::SendRequest);
        // Our own request looped back teaches nothing.
        let mut ours = [0u8; FRAME_LEN];
        request(&mut ours, &ME, SRC, GWIP);
        let ev = handle(&ours, &ME, &[SRC], Some(GWIP), &mut out);
        assert_eq!(ev, ArpEvent::Ignore);
        r.on_event(ev);
        let reply = frame_of(OP_REPLY, &GW, GWIP, &ME, SRC);
        let ev = handle(&reply, &ME, &[SRC], Some(GWIP), &mut out);
        assert_eq!(ev, ArpEvent::Learned { ip: GWIP, mac: GW });
        r.on_event(ev);
        assert_eq!(r.poll(t0 + ms(150)), ResolverAction::Done(GW));
    }

    #[test]
    fn gives_up() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut r = Resolver::new(GWIP, t0, ms(100), ms(5000));
        assert_eq!(r.poll(t0), ResolverAction::SendRequest);
        assert_eq!(r.poll(t0 + ms(5000)), ResolverAction::GiveUp);
    }

    #[test]
    fn garbage_is_ignored() {
        let mut out = [0u8; FRAME_LEN];
        let req = frame_of(OP_REQUEST, &GW, GWIP, &[0; 6], SRC);
        for n in 0..req.len() {
            let ev = handle(&req[..n], &ME, &[SRC], Some(GWIP), &mut out);
            assert!(n >= 42 || ev == ArpEvent::Ignore);
        }
        let mut x = 0x1234_5678u32;
        let mut buf = [0u8; 64];
        for _ in 0..50_000 {
            for b in buf.iter_mut() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = x as u8;
            }
            buf[12] = 8;
            buf[13] = 6;
            let _ = handle(&buf[..(x % 65) as usize], &ME, &[SRC], Some(GWIP), &mut out);
        }
    }
}
