//! UPDATE encoding, decoding and the RFC 7606 outcomes, one test per rule.

use super::*;
use crate::bgp::wire::attributes::{Aggregator, AsSegment, SegmentType};
use crate::bgp::wire::nlri::{RtConstraint, VpnRoute};
use crate::bgp::wire::rd::RouteDistinguisher;
use crate::bgp::wire::{Message, Received};

fn s4() -> Session {
    Session::all_families(true)
}

fn attr(flags: u8, t: u8, value: &[u8]) -> Vec<u8> {
    let mut b = vec![flags, t];
    if flags & 0x10 != 0 {
        b.extend_from_slice(&(value.len() as u16).to_be_bytes());
    } else {
        b.push(value.len() as u8);
    }
    b.extend_from_slice(value);
    b
}

fn body(withdrawn: &[u8], attrs: &[Vec<u8>], nlri: &[u8]) -> Vec<u8> {
    let attrs = attrs.concat();
    let mut b = (withdrawn.len() as u16).to_be_bytes().to_vec();
    b.extend_from_slice(withdrawn);
    b.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    b.extend_from_slice(&attrs);
    b.extend_from_slice(nlri);
    b
}

fn origin() -> Vec<u8> {
    attr(0x40, 1, &[0])
}

fn as_path() -> Vec<u8> {
    attr(0x40, 2, &[2, 1, 0, 0, 0xfd, 0xe8])
}

fn next_hop() -> Vec<u8> {
    attr(0x40, 3, &[192, 0, 2, 1])
}

fn rd() -> RouteDistinguisher {
    "65000:100".parse().unwrap()
}

fn vpn(prefix: &str, label: u32) -> Nlri {
    Nlri::Vpn(VpnRoute::new(label, rd(), prefix.parse().unwrap()))
}

/// The route as treat-as-withdraw withdraws it: label 0x800000.
fn vpn_withdrawn(prefix: &str) -> Nlri {
    Nlri::Vpn(VpnRoute::withdrawal(rd(), prefix.parse().unwrap()))
}

/// MP_REACH_NLRI for VPN-IPv4 via 192.0.2.1 with these routes.
fn vpn_reach(routes: &[Nlri]) -> Vec<u8> {
    let mut b = Vec::new();
    PathAttribute::new(AttrValue::MpReach(MpReach::new(
        Family::IPV4_VPN,
        NextHop::VpnIpv4("192.0.2.1".parse().unwrap()),
        routes.to_vec(),
    )))
    .encode(&s4(), &mut b)
    .unwrap();
    b
}

fn decode(b: &[u8]) -> Result<UpdateOutcome, DecodeError> {
    Update::decode(b, &s4())
}

fn reset(b: &[u8]) -> Notification {
    match decode(b) {
        Err(e) => e.notification().clone(),
        Ok(o) => panic!("expected a session reset, got {o:?}"),
    }
}

fn p(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

#[test]
fn vpn_update_round_trips_byte_for_byte() {
    let routes = [vpn("10.1.0.0/24", 100), vpn("10.2.0.0/16", 200)];
    let b = body(
        &[],
        &[
            vpn_reach(&routes),
            origin(),
            as_path(),
            // MED with the extended-length bit though 4 bytes fit in one length octet.
            attr(0x90, 4, &[0, 0, 0, 7]),
            attr(0x40, 5, &[0, 0, 0, 100]),
            attr(0xc0, 8, &[0xfd, 0xe8, 0, 1]),
            attr(0x80, 9, &[10, 0, 0, 9]),
            attr(0x80, 10, &[10, 0, 0, 1, 10, 0, 0, 2]),
            attr(
                0xc0,
                16,
                &[0, 2, 0xfd, 0xe8, 0, 0, 0, 100, 3, 0x0c, 0, 0, 0, 0, 0, 8],
            ),
            // Tunnel Encapsulation: VXLAN with a Tunnel Egress Endpoint.
            attr(
                0xc0,
                23,
                &[0, 8, 0, 12, 6, 10, 0, 0, 0, 0, 0, 1, 192, 0, 2, 1],
            ),
            attr(0xc0, 32, &[0, 0, 0xfd, 0xe8, 0, 0, 0, 1, 0, 0, 0, 2]),
            // An unknown optional transitive attribute, passed on with the Partial bit.
            attr(0xe0, 99, &[1, 2, 3]),
        ],
        &[],
    );
    let o = decode(&b).unwrap();
    assert_eq!(o.discarded, []);
    assert_eq!(o.treat_as_withdraw, None);
    let u = &o.update;
    assert_eq!(u.announced().len(), 2);
    assert_eq!(u.announced()[0], (Family::IPV4_VPN, routes[0].clone()));
    assert_eq!(u.mp_reach().unwrap().next_hop.to_string(), "192.0.2.1");
    assert_eq!(u.med(), Some(7));
    assert_eq!(u.local_pref(), Some(100));
    assert_eq!(u.originator_id(), Some("10.0.0.9".parse().unwrap()));
    assert_eq!(u.cluster_list().len(), 2);
    assert_eq!(u.route_targets(), ["65000:100".parse().unwrap()]);
    assert_eq!(u.communities(), [Community(0xfde8_0001)]);
    assert_eq!(u.large_communities()[0].to_string(), "65000:1:2");
    assert!(u.tunnel_encap().is_some());
    assert_eq!(u.as_path().unwrap().to_string(), "65000");
    let mut again = Vec::new();
    u.encode_body(&s4(), &mut again).unwrap();
    assert_eq!(again, b);
    // And through Message, header included.
    let msg = Message::Update(u.clone()).encode(&s4()).unwrap();
    assert_eq!(&msg[19..], &b[..]);
    assert_eq!(u.encoded_len(&s4()).unwrap(), msg.len());
    match Message::decode(&msg, &s4()).unwrap() {
        Received::Update(o2) => assert_eq!(o2, o),
        other => panic!("{other:?}"),
    }
}

#[test]
fn ipv4_unicast_round_trips() {
    let b = body(
        &[24, 10, 9, 9],
        &[origin(), as_path(), next_hop()],
        &[24, 10, 1, 0, 32, 192, 0, 2, 55],
    );
    let o = decode(&b).unwrap();
    assert_eq!(o.update.withdrawn, [p("10.9.9.0/24")]);
    assert_eq!(o.update.nlri, [p("10.1.0.0/24"), p("192.0.2.55/32")]);
    assert_eq!(o.update.next_hop(), Some("192.0.2.1".parse().unwrap()));
    let mut again = Vec::new();
    o.update.encode_body(&s4(), &mut again).unwrap();
    assert_eq!(again, b);
}

#[test]
fn two_octet_session_with_as4_attributes() {
    let s = Session::all_families(false);
    // AS_PATH 65001 23456, AS4_PATH 4200000000, AGGREGATOR 23456 + AS4_AGGREGATOR.
    let b = body(
        &[],
        &[
            origin(),
            attr(0x40, 2, &[2, 2, 0xfd, 0xe9, 0x5b, 0xa0]),
            next_hop(),
            attr(0xc0, 7, &[0x5b, 0xa0, 10, 0, 0, 1]),
            attr(0xc0, 17, &[2, 1, 0xfa, 0x56, 0xea, 0]),
            attr(0xc0, 18, &[0xfa, 0x56, 0xea, 0, 10, 0, 0, 1]),
        ],
        &[8, 10],
    );
    let o = Update::decode(&b, &s).unwrap();
    assert_eq!(o.discarded, []);
    let u = &o.update;
    assert_eq!(
        u.as_path_merged().unwrap(),
        AsPath::sequence(vec![65001, 4_200_000_000])
    );
    let mut again = Vec::new();
    u.encode_body(&s, &mut again).unwrap();
    assert_eq!(again, b);
    // An AGGREGATOR that is not AS_TRANS beside AS4_AGGREGATOR: AS4_PATH is ignored.
    let mut odd = u.clone();
    for a in &mut odd.attributes {
        if let AttrValue::Aggregator(ag) = &mut a.value {
            *ag = Aggregator {
                asn: 65001,
                address: ag.address,
            };
        }
    }
    assert_eq!(
        odd.as_path_merged().unwrap(),
        AsPath::sequence(vec![65001, 23456])
    );
    // Between 4-octet speakers the same AS4_* attributes are discarded (RFC 6793 §6).
    let b4 = body(
        &[],
        &[
            origin(),
            as_path(),
            next_hop(),
            attr(0xc0, 17, &[2, 1, 0xfa, 0x56, 0xea, 0]),
        ],
        &[8, 10],
    );
    let o = decode(&b4).unwrap();
    assert_eq!(o.discarded.len(), 1);
    assert_eq!(o.discarded[0].type_code, Some(17));
    assert_eq!(o.update.attribute(17), None);
    assert_eq!(o.update.nlri, [p("10.0.0.0/8")]);
}

// ---- RFC 7606: treat-as-withdraw -------------------------------------------------------

#[test]
fn treat_as_withdraw_turns_every_announcement_into_a_withdrawal() {
    let routes = [vpn("10.1.0.0/24", 100), vpn("10.2.0.0/16", 200)];
    // Bad MED length (RFC 7606 §7.4), routes in MP_REACH *and* the NLRI field, and a
    // withdrawal already there.
    let bad_med = attr(0x80, 4, &[0, 0, 7]);
    let b = body(
        &[16, 10, 9],
        &[
            origin(),
            as_path(),
            next_hop(),
            bad_med.clone(),
            // MP_REACH after the bad attribute: it is parsed first all the same.
            vpn_reach(&routes),
        ],
        &[24, 10, 1, 0],
    );
    let o = decode(&b).unwrap();
    let why = o.treat_as_withdraw.as_ref().expect("treat-as-withdraw");
    assert_eq!(why.handling, Handling::TreatAsWithdraw);
    assert_eq!(why.type_code, Some(4));
    assert_eq!(why.notification, Notification::new(3, 5, bad_med));
    assert!(
        why.to_string().starts_with("MULTI_EXIT_DISC (4): "),
        "{why}"
    );
    let u = &o.update;
    assert_eq!(u.announced(), []);
    assert_eq!(u.nlri, []);
    assert_eq!(u.withdrawn, [p("10.9.0.0/16"), p("10.1.0.0/24")]);
    let w = u.withdrawals();
    assert!(w.contains(&(Family::IPV4_VPN, vpn_withdrawn("10.1.0.0/24"))));
    assert!(w.contains(&(Family::IPV4_VPN, vpn_withdrawn("10.2.0.0/16"))));
    assert_eq!(w.len(), 4);
    assert!(u.med().is_none() && u.origin().is_none());
}

#[test]
fn treat_as_withdraw_merges_into_mp_unreach_of_each_family() {
    let mut unreach = Vec::new();
    PathAttribute::new(AttrValue::MpUnreach(MpUnreach::new(
        Family::IPV4_VPN,
        vec![vpn("10.7.0.0/16", 0)],
    )))
    .encode(&s4(), &mut unreach)
    .unwrap();
    let b = body(
        &[],
        &[
            unreach,
            vpn_reach(&[vpn("10.1.0.0/24", 100)]),
            origin(),
            as_path(),
            attr(0x40, 1, &[7]),
        ],
        &[],
    );
    let o = decode(&b).unwrap();
    // The ORIGIN is repeated (the second is discarded), so the first, good one stands: no
    // error from the undefined ORIGIN value.
    assert!(o.treat_as_withdraw.is_none(), "{:?}", o.treat_as_withdraw);
    assert_eq!(o.discarded.len(), 1);
    // Now an undefined ORIGIN in the only copy.
    let b = body(
        &[],
        &[
            vpn_reach(&[vpn("10.1.0.0/24", 100)]),
            attr(0x40, 1, &[7]),
            as_path(),
        ],
        &[],
    );
    let o = decode(&b).unwrap();
    assert_eq!(
        o.treat_as_withdraw.as_ref().unwrap().notification.subcode,
        6
    );
    assert_eq!(o.update.attributes.len(), 1);
    let u = o.update.mp_unreach().unwrap();
    assert_eq!(u.family, Family::IPV4_VPN);
    assert_eq!(u.withdrawn.routes(), [vpn_withdrawn("10.1.0.0/24")]);
}

#[test]
fn malformed_optional_attribute_still_yields_the_withdrawals() {
    // Malformed COMMUNITIES (treat-as-withdraw) in an update that also withdraws.
    let b = body(
        &[24, 10, 8, 8],
        &[origin(), as_path(), next_hop(), attr(0xc0, 8, &[1, 2, 3])],
        &[24, 10, 1, 0],
    );
    let o = decode(&b).unwrap();
    assert!(o.treat_as_withdraw.is_some());
    assert_eq!(o.update.withdrawn, [p("10.8.8.0/24"), p("10.1.0.0/24")]);
    // Malformed AGGREGATOR (attribute discard): the withdrawal and the announcement stand.
    let b = body(
        &[24, 10, 8, 8],
        &[origin(), as_path(), next_hop(), attr(0xc0, 7, &[1, 2, 3])],
        &[24, 10, 1, 0],
    );
    let o = decode(&b).unwrap();
    assert!(o.treat_as_withdraw.is_none());
    assert_eq!(o.update.withdrawn, [p("10.8.8.0/24")]);
    assert_eq!(o.update.nlri, [p("10.1.0.0/24")]);
}

#[test]
fn wrong_flags_are_treat_as_withdraw() {
    // ORIGIN marked optional (RFC 7606 §3 c).
    let b = body(&[], &[attr(0xc0, 1, &[0]), as_path(), next_hop()], &[8, 10]);
    let why = decode(&b).unwrap().treat_as_withdraw.unwrap();
    assert_eq!((why.notification.code, why.notification.subcode), (3, 4));
    // Tunnel Encapsulation without the transitive bit (RFC 9012 §13).
    let b = body(
        &[],
        &[
            origin(),
            as_path(),
            next_hop(),
            attr(
                0x80,
                23,
                &[0, 8, 0, 12, 6, 10, 0, 0, 0, 0, 0, 1, 192, 0, 2, 1],
            ),
        ],
        &[8, 10],
    );
    let o = decode(&b).unwrap();
    assert_eq!(o.treat_as_withdraw.unwrap().type_code, Some(23));
    assert_eq!(o.update.withdrawn, [p("10.0.0.0/8")]);
}

#[test]
fn missing_mandatory_attribute_is_treat_as_withdraw() {
    let b = body(&[], &[origin(), next_hop()], &[8, 10]);
    let why = decode(&b).unwrap().treat_as_withdraw.unwrap();
    assert_eq!(why.notification, Notification::new(3, 3, vec![2]));
    // NEXT_HOP is needed for the NLRI field only (RFC 4760 §3).
    let b = body(
        &[],
        &[vpn_reach(&[vpn("10.1.0.0/24", 1)]), origin(), as_path()],
        &[],
    );
    assert!(decode(&b).unwrap().treat_as_withdraw.is_none());
    let b = body(&[], &[origin(), as_path()], &[8, 10]);
    let why = decode(&b).unwrap().treat_as_withdraw.unwrap();
    assert_eq!(why.notification.data, [3]);
}

#[test]
fn attribute_overrun_is_treat_as_withdraw_and_the_nlri_are_still_found() {
    // A LOCAL_PREF claiming 9 bytes where 4 remain; the NLRI after the attributes is found
    // through the Total Path Attribute Length (RFC 7606 §4).
    let mut attrs = [origin(), as_path(), next_hop()].concat();
    attrs.extend_from_slice(&[0x40, 5, 9, 0, 0, 0, 1]);
    let b = body(&[], &[attrs], &[8, 10]);
    let o = decode(&b).unwrap();
    assert_eq!(o.treat_as_withdraw.unwrap().type_code, Some(5));
    assert_eq!(o.update.withdrawn, [p("10.0.0.0/8")]);
    // Two bytes left: not even a header.
    let mut attrs = [origin(), as_path(), next_hop()].concat();
    attrs.extend_from_slice(&[0x40, 5]);
    let o = decode(&body(&[], &[attrs], &[8, 10])).unwrap();
    assert!(o.treat_as_withdraw.is_some());
    // An MP attribute that overruns loses its NLRI: session reset.
    let mut attrs = [origin(), as_path()].concat();
    attrs.extend_from_slice(&[0x80, 14, 40, 0, 1, 128]);
    assert_eq!(reset(&body(&[], &[attrs], &[])).subcode, 1);
}

// ---- RFC 7606: attribute discard -------------------------------------------------------

#[test]
fn attribute_discard_keeps_the_rest() {
    let b = body(
        &[],
        &[
            vpn_reach(&[vpn("10.1.0.0/24", 100)]),
            origin(),
            as_path(),
            attr(0x40, 6, &[1]), // ATOMIC_AGGREGATE with a value (RFC 7606 §7.6)
            attr(0x40, 5, &[0, 0, 0, 50]),
        ],
        &[],
    );
    let o = decode(&b).unwrap();
    assert_eq!(o.treat_as_withdraw, None);
    assert_eq!(o.discarded.len(), 1);
    assert_eq!(o.discarded[0].type_code, Some(6));
    assert_eq!(o.discarded[0].handling, Handling::AttributeDiscard);
    assert_eq!(o.update.attribute(6), None);
    assert_eq!(o.update.local_pref(), Some(50));
    assert_eq!(
        o.update.announced(),
        [(Family::IPV4_VPN, vpn("10.1.0.0/24", 100))]
    );
}

#[test]
fn repeated_attribute_keeps_the_first() {
    let b = body(
        &[],
        &[
            origin(),
            as_path(),
            next_hop(),
            attr(0x40, 5, &[0, 0, 0, 1]),
            attr(0x40, 5, &[0, 0, 0, 2]),
        ],
        &[8, 10],
    );
    let o = decode(&b).unwrap();
    assert_eq!(o.update.local_pref(), Some(1));
    assert_eq!(o.discarded[0].type_code, Some(5));
    assert!(o.treat_as_withdraw.is_none());
}

#[test]
fn discard_only_errors_in_an_update_without_routes_are_fine() {
    // RFC 7606 §5.2 escalates only errors stronger than attribute discard.
    let b = body(&[24, 10, 1, 0], &[origin(), attr(0x40, 6, &[1])], &[]);
    let o = decode(&b).unwrap();
    assert_eq!(o.discarded.len(), 1);
    assert_eq!(o.update.withdrawn, [p("10.1.0.0/24")]);
}

// ---- RFC 7606: session reset -----------------------------------------------------------

#[test]
fn repeated_mp_attribute_is_a_session_reset() {
    let r = vpn_reach(&[vpn("10.1.0.0/24", 100)]);
    let n = reset(&body(&[], &[r.clone(), origin(), as_path(), r], &[]));
    assert_eq!((n.code, n.subcode), (3, 1));
}

#[test]
fn mp_reach_next_hop_length_wrong_for_the_family_is_a_session_reset() {
    // VPN-IPv4 with a bare 4-byte next hop (RFC 7606 §7.11).
    let value = [0, 1, 128, 4, 192, 0, 2, 1, 0];
    let a = attr(0x80, 14, &value);
    let n = reset(&body(&[], &[a.clone(), origin(), as_path()], &[]));
    assert_eq!(n, Notification::new(3, 9, a));
}

#[test]
fn mp_nlri_syntax_error_is_a_session_reset() {
    // A VPN route of 88 bits: a label and an RD, then a /0 ... of 8 more bits claimed.
    let value = [
        0, 1, 128, 12, 0, 0, 0, 0, 0, 0, 0, 0, 192, 0, 2, 1, 0, 120, 0, 0, 1,
    ];
    let n = reset(&body(
        &[],
        &[attr(0x80, 14, &value), origin(), as_path()],
        &[],
    ));
    assert_eq!((n.code, n.subcode), (3, 9));
    // MP_REACH with wrong flags (RFC 7606 §5.3).
    let mut r = vpn_reach(&[vpn("10.1.0.0/24", 1)]);
    r[0] = 0xc0;
    assert_eq!(reset(&body(&[], &[r, origin(), as_path()], &[])).subcode, 4);
}

#[test]
fn unrecognized_well_known_attribute_is_a_session_reset() {
    let a = attr(0x40, 42, &[1, 2]);
    let n = reset(&body(
        &[],
        &[origin(), as_path(), next_hop(), a.clone()],
        &[8, 10],
    ));
    assert_eq!(n, Notification::new(3, 2, a));
}

#[test]
fn field_length_errors_are_session_resets() {
    // Withdrawn Routes Length past the end.
    assert_eq!(reset(&[0, 9, 1, 2]).subcode, 1);
    // Total Path Attribute Length past the end.
    assert_eq!(reset(&[0, 0, 0, 9, 0x40, 1]).subcode, 1);
    assert_eq!(reset(&[0]).subcode, 1);
    // Prefix longer than 32 in the NLRI and in the withdrawn routes (RFC 7606 §5.3).
    assert_eq!(
        reset(&body(
            &[],
            &[origin(), as_path(), next_hop()],
            &[33, 1, 2, 3, 4, 5]
        ))
        .subcode,
        10
    );
    assert_eq!(reset(&body(&[24, 10], &[], &[])).subcode, 10);
}

#[test]
fn errors_in_an_update_that_announces_nothing_reset_the_session() {
    // RFC 7606 §5.2: attributes besides MP_UNREACH_NLRI, no reachable NLRI, an error
    // stronger than attribute discard.
    let bad_med = attr(0x80, 4, &[0, 7]);
    let n = reset(&body(&[24, 10, 1, 0], &[origin(), bad_med.clone()], &[]));
    assert_eq!(n, Notification::new(3, 5, bad_med));
    // The same with announced routes is treat-as-withdraw.
    let b = body(
        &[],
        &[origin(), as_path(), next_hop(), attr(0x80, 4, &[0, 7])],
        &[8, 10],
    );
    assert!(decode(&b).unwrap().treat_as_withdraw.is_some());
}

// ---- Families, End-of-RIB, builders ----------------------------------------------------

#[test]
fn unnegotiated_family_is_kept_raw_and_never_resets() {
    let s = Session::new(true, vec![Family::IPV4_UNICAST]);
    // VPN NLRI that would not parse, for a family the session did not negotiate.
    let value = [
        0, 1, 128, 12, 0, 0, 0, 0, 0, 0, 0, 0, 192, 0, 2, 1, 0, 120, 0,
    ];
    let b = body(&[], &[attr(0x80, 14, &value), origin(), as_path()], &[]);
    let o = Update::decode(&b, &s).unwrap();
    assert!(o.treat_as_withdraw.is_none());
    assert_eq!(o.update.mp_reach().unwrap().nlri, MpNlri::Raw(vec![120, 0]));
    assert_eq!(o.update.announced(), []);
    let mut again = Vec::new();
    o.update.encode_body(&s, &mut again).unwrap();
    assert_eq!(again, b);
}

#[test]
fn end_of_rib_markers() {
    for family in [
        Family::IPV4_UNICAST,
        Family::IPV4_VPN,
        Family::IPV6_VPN,
        Family::new(25, 70),
    ] {
        let eor = Update::end_of_rib(family);
        let msg = eor.encode(&s4()).unwrap();
        let o = decode(&msg[19..]).unwrap();
        assert_eq!(o.update.end_of_rib_family(), Some(family));
        assert!(o.discarded.is_empty() && o.treat_as_withdraw.is_none());
    }
    assert_eq!(
        Update::end_of_rib(Family::IPV4_UNICAST)
            .encode(&s4())
            .unwrap()
            .len(),
        23
    );
    assert_eq!(
        &Update::end_of_rib(Family::IPV4_VPN).encode(&s4()).unwrap()[19..],
        &[0, 0, 0, 6, 0x80, 15, 3, 0, 1, 128]
    );
    let w = Update::withdraw(Family::IPV4_VPN, vec![vpn("10.1.0.0/24", 1)]);
    assert_eq!(w.end_of_rib_family(), None);
}

#[test]
fn announce_and_withdraw_builders() {
    let attrs = vec![
        PathAttribute::new(AttrValue::Origin(Origin::Igp)),
        PathAttribute::new(AttrValue::AsPath(AsPath::default())),
        PathAttribute::new(AttrValue::LocalPref(100)),
        PathAttribute::new(AttrValue::ExtCommunities(vec![ExtCommunity::RouteTarget(
            "65000:100".parse().unwrap(),
        )])),
    ];
    let u = Update::announce(
        Family::IPV4_VPN,
        "192.0.2.1".parse().unwrap(),
        attrs.clone(),
        vec![vpn("10.1.0.0/24", 100)],
    );
    assert_eq!(u.attributes[0].type_code(), attr_type::MP_REACH_NLRI);
    assert_eq!(
        u.mp_reach().unwrap().next_hop,
        NextHop::VpnIpv4("192.0.2.1".parse().unwrap())
    );
    let o = decode(&u.encode(&s4()).unwrap()[19..]).unwrap();
    assert_eq!(o.update, u);
    // IPv4 unicast goes in the NLRI field with NEXT_HOP.
    let u = Update::announce(
        Family::IPV4_UNICAST,
        "192.0.2.1".parse().unwrap(),
        attrs.clone(),
        vec![Nlri::Prefix("10.1.0.0/24".parse().unwrap())],
    );
    assert_eq!(u.nlri, [p("10.1.0.0/24")]);
    assert_eq!(u.next_hop(), Some("192.0.2.1".parse().unwrap()));
    assert!(decode(&u.encode(&s4()).unwrap()[19..])
        .unwrap()
        .treat_as_withdraw
        .is_none());
    // IPv6 VPN via an IPv6 next hop.
    let v6 = Nlri::Vpn(VpnRoute::new(7, rd(), "2001:db8:1::/48".parse().unwrap()));
    let u = Update::announce(
        Family::IPV6_VPN,
        "2001:db8::1".parse().unwrap(),
        attrs,
        vec![v6.clone()],
    );
    let o = decode(&u.encode(&s4()).unwrap()[19..]).unwrap();
    assert_eq!(o.update.announced(), [(Family::IPV6_VPN, v6)]);
    // Withdrawals.
    let w = Update::withdraw(
        Family::IPV4_UNICAST,
        vec![Nlri::Prefix("10.1.0.0/24".parse().unwrap())],
    );
    assert_eq!(w.withdrawn, [p("10.1.0.0/24")]);
    let w = Update::withdraw(
        Family::IPV4_VPN,
        vec![Nlri::Vpn(VpnRoute::withdrawal(
            rd(),
            "10.1.0.0/24".parse().unwrap(),
        ))],
    );
    let o = decode(&w.encode(&s4()).unwrap()[19..]).unwrap();
    assert_eq!(o.update.withdrawals().len(), 1);
    // RT membership.
    let rtc = Nlri::RtConstraint(RtConstraint::new(
        65000,
        "65000:100".parse::<RouteTarget>().unwrap().into(),
    ));
    let u = Update::announce(
        Family::IPV4_RT_CONSTRAINT,
        "192.0.2.1".parse().unwrap(),
        vec![
            PathAttribute::new(AttrValue::Origin(Origin::Igp)),
            PathAttribute::new(AttrValue::AsPath(AsPath::default())),
        ],
        vec![rtc.clone(), Nlri::RtConstraint(RtConstraint::Default)],
    );
    let o = decode(&u.encode(&s4()).unwrap()[19..]).unwrap();
    assert_eq!(o.update.announced()[0], (Family::IPV4_RT_CONSTRAINT, rtc));
}

#[test]
fn packing_keeps_every_update_under_4096_bytes() {
    let routes: Vec<Nlri> = (0..2000u32)
        .map(|i| {
            Nlri::Vpn(VpnRoute::new(
                16 + i,
                rd(),
                IpNet::V4(Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + (i << 8)), 24).unwrap()),
            ))
        })
        .collect();
    let attrs = vec![
        PathAttribute::new(AttrValue::Origin(Origin::Igp)),
        PathAttribute::new(AttrValue::AsPath(AsPath::default())),
    ];
    let ups = Update::pack_announcements(
        Family::IPV4_VPN,
        "192.0.2.1".parse().unwrap(),
        attrs,
        routes.clone(),
        &s4(),
    )
    .unwrap();
    assert!(ups.len() > 1);
    let mut seen = Vec::new();
    for u in &ups {
        let msg = u.encode(&s4()).unwrap();
        assert!(msg.len() <= MAX_MESSAGE_LEN);
        // Full: one more route of 15 bytes would not have fitted (but for the last).
        if !std::ptr::eq(u, ups.last().unwrap()) {
            assert!(msg.len() + 15 > MAX_MESSAGE_LEN - 1, "{}", msg.len());
        }
        let o = decode(&msg[19..]).unwrap();
        seen.extend(o.update.announced().into_iter().map(|(_, n)| n));
    }
    assert_eq!(seen, routes);
    let ws = Update::pack_withdrawals(Family::IPV4_VPN, routes.clone(), &s4()).unwrap();
    assert_eq!(
        ws.iter().map(|u| u.withdrawals().len()).sum::<usize>(),
        2000
    );
    let v4: Vec<Nlri> = (0..3000u32)
        .map(|i| Nlri::Prefix(IpNet::V4(Ipv4Net::new(Ipv4Addr::from(i << 8), 24).unwrap())))
        .collect();
    let ws = Update::pack_withdrawals(Family::IPV4_UNICAST, v4, &s4()).unwrap();
    assert!(ws.iter().all(|u| u.encode(&s4()).is_ok()));
    assert_eq!(ws.iter().map(|u| u.withdrawn.len()).sum::<usize>(), 3000);
}

#[test]
fn encoding_refuses_oversized_updates() {
    let u = Update {
        nlri: vec![p("10.0.0.0/24"); 1100],
        ..Update::default()
    };
    assert!(matches!(u.encode(&s4()), Err(EncodeError::TooLong { .. })));
    assert!(u.encoded_len(&s4()).unwrap() > MAX_MESSAGE_LEN);
}

#[test]
fn as_confed_segments_in_as_path_are_kept() {
    let path = AsPath {
        segments: vec![
            AsSegment {
                kind: SegmentType::ConfedSequence,
                asns: vec![64512, 64513],
            },
            AsSegment {
                kind: SegmentType::Sequence,
                asns: vec![65000],
            },
        ],
    };
    let u = Update::announce(
        Family::IPV4_UNICAST,
        "192.0.2.1".parse().unwrap(),
        vec![
            PathAttribute::new(AttrValue::Origin(Origin::Igp)),
            PathAttribute::new(AttrValue::AsPath(path.clone())),
        ],
        vec![Nlri::Prefix("10.0.0.0/8".parse().unwrap())],
    );
    let o = decode(&u.encode(&s4()).unwrap()[19..]).unwrap();
    assert_eq!(o.update.as_path(), Some(&path));
}

#[test]
fn treat_as_withdraw_result_reads_back_the_same() {
    // Found by the fuzzer: a label stack with a 0x000000 entry in the middle is read whole in
    // MP_REACH_NLRI but ends at that entry in MP_UNREACH_NLRI, so the withdrawal carries the
    // compatibility label instead of the announced stack.
    let route = Nlri::Vpn(VpnRoute {
        labels: vec![
            Label::new(0x1_0000, false),
            Label::from_raw(0),
            Label::new(5, true),
        ],
        rd: rd(),
        prefix: "10.1.0.0/24".parse().unwrap(),
    });
    let b = body(
        &[],
        &[
            vpn_reach(&[route]),
            origin(),
            as_path(),
            attr(0x80, 4, &[0]),
        ],
        &[],
    );
    let o = decode(&b).unwrap();
    assert!(o.treat_as_withdraw.is_some());
    let again = decode(&o.update.encode(&s4()).unwrap()[19..]).unwrap();
    assert_eq!(again.update, o.update);
    assert_eq!(
        again.update.withdrawals(),
        [(Family::IPV4_VPN, vpn_withdrawn("10.1.0.0/24"))]
    );
}

#[test]
fn sdwan_update_builder() {
    use crate::bgp::wire::sdwan::SdWanNlri;
    let n = SdWanNlri {
        port_local_id: 1,
        color: 100,
        node: "192.0.2.7".parse().unwrap(),
    };
    let mut own = Vec::new();
    n.encode(&mut own);
    assert!(SdWanNlri::decode(&own).is_ok());
    // The underlay UPDATE of the draft: the SD-WAN NLRI with a Tunnel Encapsulation attribute.
    let tunnel = TunnelEncap::decode(&[0, 8, 0, 12, 6, 10, 0, 0, 0, 0, 0, 1, 192, 0, 2, 7])
        .expect("a VXLAN tunnel TLV");
    let u = Update::announce(
        Family::IPV4_SDWAN,
        "192.0.2.7".parse().unwrap(),
        vec![
            PathAttribute::new(AttrValue::Origin(Origin::Igp)),
            PathAttribute::new(AttrValue::AsPath(AsPath::default())),
            PathAttribute::new(AttrValue::TunnelEncap(tunnel)),
        ],
        vec![Nlri::SdWan(n)],
    );
    let o = decode(&u.encode(&s4()).unwrap()[19..]).unwrap();
    assert_eq!(o.update, u);
    assert_eq!(o.update.announced(), [(Family::IPV4_SDWAN, Nlri::SdWan(n))]);
}
