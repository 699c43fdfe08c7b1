//! ESP against published vectors, through every AEAD backend (`Backend::ALL`: RustCrypto,
//! AWS-LC, intel-ipsec-mb):
//! - Wycheproof AES-GCM (every group with a 96-bit IV and a 128-bit tag),
//! - the whole-packet ESP tunnel-mode vectors of draft-mcgrew-gcm-test-01,
//! - the backends against each other on random packets,
//! - truncated, bit-flipped and random packets into `open`: errors, never a panic.
//!
//! The vectors are copies of the project's shared test data, kept in `tests/vectors/` so the
//! suite runs from any clone (see the README there).

use sdwan_dataplane::esp::replay::DEFAULT_WINDOW;
use sdwan_dataplane::esp::sa::encapsulate;
use sdwan_dataplane::esp::{
    AeadKey, Backend, EspError, InboundSa, OutboundSa, ReplayWindow, Suite,
};
use sdwan_dataplane::forward::{ByteBuf, PacketBuf};
use sdwan_dataplane::testing::Rng;
use serde_json::Value;

const WYCHEPROOF: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/wycheproof/aes_gcm_test.json"
);
const MCGREW: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/esp/mcgrew_gcm_esp_vectors.json"
);

fn load(path: &str) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn field(v: &Value, name: &str) -> Vec<u8> {
    hex(v[name].as_str().unwrap_or_else(|| panic!("no {name}")))
}

fn suite_for_key(len: usize) -> Suite {
    match len {
        16 => Suite::Aes128Gcm,
        24 => Suite::Aes192Gcm,
        32 => Suite::Aes256Gcm,
        n => panic!("key length {n}"),
    }
}

#[test]
fn wycheproof_aes_gcm_every_backend() {
    let doc = load(WYCHEPROOF);
    for backend in Backend::ALL {
        let (mut valid, mut invalid) = (0, 0);
        for group in doc["testGroups"].as_array().unwrap() {
            if group["ivSize"] != 96 || group["tagSize"] != 128 {
                continue;
            }
            let key_bits = group["keySize"].as_u64().unwrap();
            assert!([128, 192, 256].contains(&key_bits));
            for t in group["tests"].as_array().unwrap() {
                let id = &t["tcId"];
                let (key, iv, aad) = (field(t, "key"), field(t, "iv"), field(t, "aad"));
                let (msg, ct, tag) = (field(t, "msg"), field(t, "ct"), field(t, "tag"));
                // RFC 4106's view of a 12-byte nonce: salt (keying material) || explicit IV.
                let keymat = [&key[..], &iv[..4]].concat();
                let explicit: [u8; 8] = iv[4..].try_into().unwrap();
                let k = AeadKey::new(backend, suite_for_key(key.len()), &keymat).unwrap();
                let mut text = ct.clone();
                let opened = k.open(&explicit, &aad, &mut text, &tag);
                match t["result"].as_str().unwrap() {
                    "valid" => {
                        assert!(opened, "{backend:?} tc {id}: open");
                        assert_eq!(text, msg, "{backend:?} tc {id}: plaintext");
                        let mut text = msg.clone();
                        let mut out_tag = [0u8; 16];
                        assert!(k.seal(&explicit, &aad, &mut text, &mut out_tag));
                        assert_eq!(text, ct, "{backend:?} tc {id}: ciphertext");
                        assert_eq!(out_tag.to_vec(), tag, "{backend:?} tc {id}: tag");
                        valid += 1;
                    }
                    "invalid" => {
                        assert!(!opened, "{backend:?} tc {id}: accepted an invalid tag");
                        invalid += 1;
                    }
                    r => panic!("tc {id}: result {r}"),
                }
            }
        }
        // The three 96-bit-IV groups (128, 192, 256-bit keys) of this file.
        assert_eq!(valid + invalid, 67 + 64 + 66, "{backend:?}");
        assert!(
            invalid > 0 && valid > 100,
            "{backend:?}: {valid} valid, {invalid} invalid"
        );
    }
}

/// The outer header of a vector's ESP packet: its length, checked against its length field.
fn outer_header_len(esp_packet: &[u8]) -> usize {
    match esp_packet[0] >> 4 {
        4 => {
            let ihl = usize::from(esp_packet[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([esp_packet[2], esp_packet[3]]));
            assert_eq!(total, esp_packet.len());
            assert_eq!(esp_packet[9], 50, "protocol ESP");
            ihl
        }
        6 => {
            let payload = usize::from(u16::from_be_bytes([esp_packet[4], esp_packet[5]]));
            assert_eq!(payload + 40, esp_packet.len());
            assert_eq!(esp_packet[6], 50, "next header ESP");
            40
        }
        v => panic!("IP version {v}"),
    }
}

#[test]
fn mcgrew_whole_packet_vectors_every_backend() {
    let doc = load(MCGREW);
    let vectors = doc["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 4);
    for backend in Backend::ALL {
        for v in vectors {
            let name = v["name"].as_str().unwrap();
            assert_eq!(v["mode"], "tunnel", "{name}");
            assert_eq!(v["aead"], "aes-gcm-16", "{name}");
            let key = field(v, "key");
            let keymat = [key, field(v, "salt")].concat();
            let suite = suite_for_key(keymat.len() - 4);
            let iv: [u8; 8] = field(v, "iv").try_into().unwrap();
            let spi = u32::try_from(v["spi"].as_u64().unwrap()).unwrap();
            let seq = v["seq"].as_u64().unwrap();
            let inner = field(v, "inner_packet");
            let outer = field(v, "esp_packet");
            let esp = &outer[outer_header_len(&outer)..];
            let nh = sdwan_dataplane::esp::sa::inner_next_header(&inner).unwrap();

            // Seal: the vector's IV is not the sequence number, so the low-level call.
            let k = AeadKey::new(backend, suite, &keymat).unwrap();
            let mut b = ByteBuf::new(&inner);
            encapsulate(&k, spi, seq, false, &iv, nh, &mut b).unwrap();
            assert_eq!(b.data(), esp, "{backend:?} {name}: sealed bytes");

            // Open with an inbound SA: the inner packet back.
            let k = AeadKey::new(backend, suite, &keymat).unwrap();
            let win = ReplayWindow::new(DEFAULT_WINDOW, false).unwrap();
            let mut sa = InboundSa::new(spi, k, win);
            let mut b = ByteBuf::new(esp);
            let o = sa
                .open(&mut b)
                .unwrap_or_else(|e| panic!("{backend:?} {name}: {e}"));
            assert_eq!(&b.data()[o.inner.clone()], &inner[..], "{backend:?} {name}");
            assert_eq!((o.seq, o.next_header), (seq, nh), "{backend:?} {name}");
            let mut b = ByteBuf::new(esp);
            assert_eq!(sa.open(&mut b), Err(EspError::Replay), "{name}");
        }
    }
}

#[test]
fn outbound_sa_reproduces_a_vector_when_iv_equals_seq() {
    // The AES-128 vector resealed by an SA (IV = sequence number 1) opens to the same
    // inner packet and differs from the vector only in the IV and what depends on it.
    let doc = load(MCGREW);
    let v = &doc["vectors"][0];
    let keymat = [field(v, "key"), field(v, "salt")].concat();
    let spi = u32::try_from(v["spi"].as_u64().unwrap()).unwrap();
    let inner = field(v, "inner_packet");
    let outer = field(v, "esp_packet");
    let esp = &outer[outer_header_len(&outer)..];
    for backend in Backend::ALL {
        let mut out = OutboundSa::new(
            spi,
            false,
            AeadKey::new(backend, Suite::Aes128Gcm, &keymat).unwrap(),
        );
        let mut b = ByteBuf::new(&inner);
        assert_eq!(out.seal(&mut b), Ok(1));
        let d = b.data();
        assert_eq!(d.len(), esp.len());
        assert_eq!(&d[..8], &esp[..8], "SPI and sequence number");
        assert_eq!(&d[8..16], &1u64.to_be_bytes());
        let k = AeadKey::new(backend, Suite::Aes128Gcm, &keymat).unwrap();
        let mut want = ByteBuf::new(&inner);
        encapsulate(&k, spi, 1, false, &1u64.to_be_bytes(), 4, &mut want).unwrap();
        assert_eq!(d, want.data());
    }
}

fn random_inner(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut p = rng.bytes(len);
    p[0] = if rng.below(2) == 0 { 0x45 } else { 0x60 };
    p
}

const SUITES: [Suite; 3] = [Suite::Aes128Gcm, Suite::Aes192Gcm, Suite::Aes256Gcm];

#[test]
fn backends_agree_on_random_packets() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let n = Backend::ALL.len();
    for suite in SUITES {
        for esn in [false, true] {
            let keymat = rng.bytes(suite.keymat_len());
            let spi = rng.next_u64() as u32 | 1;
            let key = |b| AeadKey::new(b, suite, &keymat).unwrap();
            let win = || ReplayWindow::new(DEFAULT_WINDOW, esn).unwrap();
            let mut outs: Vec<OutboundSa> = Backend::ALL
                .iter()
                .map(|&b| OutboundSa::new(spi, esn, key(b)))
                .collect();
            let mut w = win();
            if esn {
                // Start just below 2^32 so the run crosses the wrap of the low bits.
                let start = (1u64 << 32) - 150;
                for sa in &mut outs {
                    assert!(sa.advance_seq_to(start));
                }
                w.update(start).unwrap();
            }
            let mut ins: Vec<InboundSa> = Backend::ALL
                .iter()
                .map(|&b| InboundSa::new(spi, key(b), w.clone()))
                .collect();
            let mut sizes: Vec<usize> = (1..=80).collect();
            sizes.extend((0..220).map(|_| 1 + rng.below(1500) as usize));
            for len in sizes {
                let inner = random_inner(&mut rng, len);
                let mut bufs: Vec<ByteBuf> = (0..n).map(|_| ByteBuf::new(&inner)).collect();
                let seqs: Vec<u64> = outs
                    .iter_mut()
                    .zip(&mut bufs)
                    .map(|(sa, b)| sa.seal(b).unwrap())
                    .collect();
                for i in 1..n {
                    assert_eq!(seqs[i], seqs[0]);
                    assert_eq!(
                        bufs[i].data(),
                        bufs[0].data(),
                        "{suite:?} esn {esn} len {len}: {:?} vs {:?}",
                        Backend::ALL[i],
                        Backend::ALL[0]
                    );
                }
                // What backend i sealed, backend i + 1 opens (every backend seals for, and
                // opens from, another one).
                for (i, b) in bufs.iter_mut().enumerate() {
                    let o = ins[(i + 1) % n].open(b).unwrap();
                    assert_eq!(&b.data()[o.inner], &inner[..]);
                    assert_eq!(o.seq, seqs[0]);
                }
            }
        }
    }
}

/// Feeds `bytes` to `open` of every SA; must not panic. Returns the outcomes.
fn try_open(sas: &mut [InboundSa], bytes: &[u8]) -> Vec<Result<u64, EspError>> {
    sas.iter_mut()
        .map(|sa| {
            let mut b = ByteBuf::new(bytes);
            sa.open(&mut b).map(|o| o.seq)
        })
        .collect()
}

#[test]
fn open_refuses_truncated_flipped_and_random_packets_without_panicking() {
    let mut rng = Rng(0xdead_beef_f00d_0042);
    for esn in [false, true] {
        let suite = Suite::Aes256Gcm;
        let keymat = rng.bytes(suite.keymat_len());
        let spi = 0x0a0b_0c0d;
        let key = |b| AeadKey::new(b, suite, &keymat).unwrap();
        let mut out = OutboundSa::new(spi, esn, key(Backend::AwsLc));
        let mut sas: Vec<InboundSa> = Backend::ALL
            .iter()
            .map(|&b| InboundSa::new(spi, key(b), ReplayWindow::new(64, esn).unwrap()))
            .collect();
        for round in 0..40 {
            let len = 1 + rng.below(300) as usize;
            let inner = random_inner(&mut rng, len);
            let mut b = ByteBuf::new(&inner);
            let seq = out.seal(&mut b).unwrap();
            let good = b.data().to_vec();

            // Every truncation (a buffer that ends early, or starts late).
            for cut in 0..good.len() {
                for r in try_open(&mut sas, &good[..cut]) {
                    assert!(r.is_err(), "round {round}: prefix {cut} accepted");
                }
                for r in try_open(&mut sas, &good[cut + 1..]) {
                    assert!(
                        r.is_err(),
                        "round {round}: suffix from {} accepted",
                        cut + 1
                    );
                }
            }
            // Single bit flips (all of them in the first rounds, a sample afterwards), and
            // bytes appended after the ICV.
            let flips: Vec<usize> = if round < 3 {
                (0..good.len() * 8).collect()
            } else {
                (0..64)
                    .map(|_| rng.below(good.len() as u64 * 8) as usize)
                    .collect()
            };
            for bit in flips {
                let mut bad = good.clone();
                bad[bit / 8] ^= 1 << (bit % 8);
                for r in try_open(&mut sas, &bad) {
                    let e = r.expect_err("a flipped bit was accepted");
                    let want = if bit < 32 {
                        EspError::UnknownSpi
                    } else if bit < 64 {
                        // A flipped sequence number may land outside the window (it is
                        // refused before decryption) or inside it (the AAD differs).
                        e
                    } else {
                        EspError::AuthFailed
                    };
                    assert_eq!(e, want, "round {round} bit {bit}");
                }
            }
            let mut longer = good.clone();
            longer.push(0);
            assert!(try_open(&mut sas, &longer).iter().all(Result::is_err));
            // Random garbage of every small length, with the right SPI half the time.
            for len in 0..80 {
                let mut junk = rng.bytes(len);
                if len >= 4 && rng.below(2) == 0 {
                    junk[..4].copy_from_slice(&spi.to_be_bytes());
                }
                assert!(try_open(&mut sas, &junk).iter().all(Result::is_err));
            }
            // None of that moved the windows: the genuine packet is still accepted.
            assert_eq!(try_open(&mut sas, &good), vec![Ok(seq); sas.len()]);
        }
        for sa in &sas {
            assert_eq!(sa.counters.packets, 40);
            assert!(sa.counters.auth_failed > 0 && sa.counters.malformed > 0);
        }
    }
}

#[test]
fn open_batch_handles_garbage_like_open() {
    for (i, &backend) in Backend::ALL.iter().enumerate() {
        // Sealed by one backend, opened in batches by the next.
        let sealer = Backend::ALL[(i + Backend::ALL.len() - 1) % Backend::ALL.len()];
        open_batch_handles_garbage_like_open_with(sealer, backend);
    }
}

fn open_batch_handles_garbage_like_open_with(sealer: Backend, opener: Backend) {
    let mut rng = Rng(7);
    let suite = Suite::Aes128Gcm;
    let keymat = rng.bytes(suite.keymat_len());
    let mut out = OutboundSa::new(9, false, AeadKey::new(sealer, suite, &keymat).unwrap());
    let mut inb = InboundSa::new(
        9,
        AeadKey::new(opener, suite, &keymat).unwrap(),
        ReplayWindow::new(DEFAULT_WINDOW, false).unwrap(),
    );
    let mut bufs = Vec::new();
    let mut want = Vec::new();
    for i in 0..100 {
        let len = 1 + rng.below(200) as usize;
        let inner = random_inner(&mut rng, len);
        let mut b = ByteBuf::new(&inner);
        let seq = out.seal(&mut b).unwrap();
        match i % 4 {
            0 => {
                let n = rng.below(b.data().len() as u64) as usize;
                b = ByteBuf::new(&b.data()[..n]);
                want.push(None);
            }
            1 => {
                let at = 16 + rng.below(b.data().len() as u64 - 16) as usize;
                b.data_mut()[at] ^= 0x80;
                want.push(Some(Err(EspError::AuthFailed)));
            }
            _ => want.push(Some(Ok((seq, inner)))),
        }
        bufs.push(b);
    }
    let mut res = vec![Err(EspError::UnknownSpi); bufs.len()];
    inb.open_batch(&mut bufs, &mut res);
    for (i, (r, w)) in res.iter().zip(&want).enumerate() {
        match w {
            None => assert!(r.is_err(), "{opener:?} {i}"),
            Some(Err(e)) => assert_eq!(r.as_ref().err(), Some(e), "{opener:?} {i}"),
            Some(Ok((seq, inner))) => {
                let o = r.as_ref().unwrap_or_else(|e| panic!("{opener:?} {i}: {e}"));
                assert_eq!(o.seq, *seq);
                assert_eq!(&bufs[i].data()[o.inner.clone()], &inner[..]);
            }
        }
    }
    assert_eq!(inb.counters.packets, 50);
}
