//! A small authoritative DNS server on 127.0.0.1 (UDP and TCP on one free
//! port) for the zone `runproof.test`, so tests never ask the machine's own
//! resolver. Everything outside the zone — `*.invalid` included — is NXDOMAIN.
//!
//! The zone:
//!
//! | name | records |
//! | --- | --- |
//! | `runproof.test` | MX `10 mail.runproof.test`, TXT `v=spf1 -all`, CAA `0 issue "letsencrypt.org"` |
//! | `www.runproof.test` | A 127.0.0.1, AAAA ::1 |
//! | `v4.runproof.test` | A 127.0.0.1 (HTTP fixtures listen here) |
//! | `mail.runproof.test` | A 127.0.0.2 |
//! | `alias.runproof.test` | CNAME `www.runproof.test` |
//! | `big.runproof.test` | TXT of 40 × 100 bytes: too big for UDP, so truncated there and served over TCP |
//!
//! A name of the zone without the asked type answers NOERROR with no records.
#![allow(dead_code)]

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{caa::KeyValue, A, AAAA, CAA, CNAME, MX, SOA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

/// The zone's apex.
pub const ZONE: &str = "runproof.test.";

/// One query the server received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Lower case, without the final dot.
    pub name: String,
    pub record_type: RecordType,
    pub tcp: bool,
}

/// The running server; it stops when dropped.
pub struct DnsFixture {
    /// UDP and TCP listen here.
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    _runtime: tokio::runtime::Runtime,
}

impl DnsFixture {
    /// Starts the server on a free port of 127.0.0.1.
    pub fn start() -> DnsFixture {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("dns fixture runtime");
        let (udp, tcp) = runtime.block_on(bind_pair());
        let addr = udp.local_addr().expect("udp addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        runtime.spawn(serve_udp(udp, seen.clone()));
        runtime.spawn(serve_tcp(tcp, seen.clone()));
        DnsFixture {
            addr,
            seen,
            _runtime: runtime,
        }
    }

    /// `127.0.0.1:PORT`, as `--resolver` takes it.
    pub fn resolver(&self) -> String {
        self.addr.to_string()
    }

    /// Every query so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Queries so far for `name` (any type, any transport).
    pub fn queries_for(&self, name: &str) -> usize {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        self.seen().iter().filter(|s| s.name == name).count()
    }
}

/// A UDP socket and a TCP listener on the same free port.
async fn bind_pair() -> (UdpSocket, TcpListener) {
    for _ in 0..20 {
        let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
        let port = udp.local_addr().expect("udp addr").port();
        if let Ok(tcp) = TcpListener::bind(("127.0.0.1", port)).await {
            return (udp, tcp);
        }
    }
    panic!("no port free for both UDP and TCP on 127.0.0.1");
}

async fn serve_udp(socket: UdpSocket, seen: Arc<Mutex<Vec<Seen>>>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((len, peer)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let Some(mut reply) = answer(&buf[..len], false, &seen) else {
            continue;
        };
        // Classic 512-byte limit (EDNS is not honoured on purpose): a bigger
        // answer goes back empty with TC set, and the client retries over TCP.
        let mut bytes = reply.to_vec().expect("encode reply");
        if bytes.len() > 512 {
            reply.answers.clear();
            reply.authorities.clear();
            reply.additionals.clear();
            reply.metadata.truncation = true;
            bytes = reply.to_vec().expect("encode truncated reply");
        }
        let _ = socket.send_to(&bytes, peer).await;
    }
}

async fn serve_tcp(listener: TcpListener, seen: Arc<Mutex<Vec<Seen>>>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let seen = seen.clone();
        tokio::spawn(async move {
            loop {
                let mut len = [0u8; 2];
                if stream.read_exact(&mut len).await.is_err() {
                    return;
                }
                let mut query = vec![0u8; u16::from_be_bytes(len) as usize];
                if stream.read_exact(&mut query).await.is_err() {
                    return;
                }
                let Some(reply) = answer(&query, true, &seen) else {
                    return;
                };
                let bytes = reply.to_vec().expect("encode reply");
                let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(&bytes);
                if stream.write_all(&framed).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// The reply to one query message (`None` for garbage).
fn answer(bytes: &[u8], tcp: bool, seen: &Mutex<Vec<Seen>>) -> Option<Message> {
    let request = Message::from_vec(bytes).ok()?;
    if request.metadata.message_type != MessageType::Query {
        return None;
    }
    let query = request.queries.first()?.clone();
    let qname = query.name().to_ascii().to_ascii_lowercase();
    let qtype = query.query_type();
    seen.lock().unwrap().push(Seen {
        name: qname.trim_end_matches('.').to_string(),
        record_type: qtype,
        tcp,
    });

    let mut reply = Message::response(request.metadata.id, request.metadata.op_code);
    reply.metadata.authoritative = true;
    reply.metadata.recursion_desired = request.metadata.recursion_desired;
    reply.add_query(query.clone());
    match zone(&qname) {
        None => {
            reply.metadata.response_code = ResponseCode::NXDomain;
            reply.add_authority(soa());
        }
        Some(records) => {
            let owner = query.name().clone();
            let cname = records.iter().find_map(|r| match r {
                RData::CNAME(c) => Some(c.clone()),
                _ => None,
            });
            let wanted: Vec<RData> = records
                .iter()
                .filter(|r| r.record_type() == qtype)
                .cloned()
                .collect();
            if wanted.is_empty() {
                if let (Some(cname), true) = (cname, qtype != RecordType::CNAME) {
                    // Follow the alias inside the zone, as an authoritative server does.
                    reply.add_answer(Record::from_rdata(
                        owner.clone(),
                        60,
                        RData::CNAME(cname.clone()),
                    ));
                    let target = cname.0.to_ascii().to_ascii_lowercase();
                    for data in zone(&target).unwrap_or_default() {
                        if data.record_type() == qtype {
                            reply.add_answer(Record::from_rdata(cname.0.clone(), 60, data));
                        }
                    }
                } else {
                    reply.add_authority(soa());
                }
            }
            for data in wanted {
                reply.add_answer(Record::from_rdata(owner.clone(), 60, data));
            }
        }
    }
    Some(reply)
}

/// The records of `name` (lower case, with the final dot), or `None` when
/// the name does not exist.
fn zone(name: &str) -> Option<Vec<RData>> {
    let n = |s: &str| Name::from_ascii(s).expect("fixture name");
    let records = match name {
        "runproof.test." => vec![
            RData::MX(MX::new(10, n("mail.runproof.test."))),
            RData::TXT(TXT::new(vec!["v=spf1 -all".to_string()])),
            RData::CAA(CAA::new_issue(
                false,
                Some(n("letsencrypt.org")),
                Vec::<KeyValue>::new(),
            )),
        ],
        "www.runproof.test." => vec![
            RData::A(A(Ipv4Addr::LOCALHOST)),
            RData::AAAA(AAAA(Ipv6Addr::LOCALHOST)),
        ],
        "v4.runproof.test." => vec![RData::A(A(Ipv4Addr::LOCALHOST))],
        "mail.runproof.test." => vec![RData::A(A(Ipv4Addr::new(127, 0, 0, 2)))],
        "alias.runproof.test." => vec![RData::CNAME(CNAME(n("www.runproof.test.")))],
        "big.runproof.test." => vec![RData::TXT(TXT::new(
            (0..40)
                .map(|i| format!("{i:02}{}", "x".repeat(98)))
                .collect(),
        ))],
        _ => return None,
    };
    Some(records)
}

fn soa() -> Record {
    let n = |s: &str| Name::from_ascii(s).expect("fixture name");
    Record::from_rdata(
        n(ZONE),
        60,
        RData::SOA(SOA::new(
            n("ns.runproof.test."),
            n("hostmaster.runproof.test."),
            1,
            3600,
            600,
            86_400,
            // Negative answers are not to be cached (RFC 2308 minimum).
            0,
        )),
    )
}
