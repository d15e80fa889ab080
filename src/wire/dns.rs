//! Wire layer: the few DNS messages (RFC 1035) the VPC resolver reads and writes: a query's
//! header and first question, and a response that echoes the question with A records. Views
//! over the caller's bytes; responses are written into the caller's buffer. No allocation.

use std::net::IpAddr;

/// The fixed header every message starts with.
pub const HEADER_LEN: usize = 12;
/// Longest name on the wire, length bytes and the root label included (RFC 1035 §3.1).
pub const MAX_NAME: usize = 255;
/// Largest message a client without EDNS accepts over UDP (RFC 1035 §4.2.1).
pub const MAX_UDP_MESSAGE: usize = 512;

pub const TYPE_A: u16 = 1;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_ANY: u16 = 255;
pub const CLASS_IN: u16 = 1;
pub const CLASS_ANY: u16 = 255;

/// The answer's code in the header (RFC 1035 §4.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Rcode {
    NoError = 0,
    FormErr = 1,
    ServFail = 2,
    NxDomain = 3,
    NotImp = 4,
    Refused = 5,
}

/// Why a message is not a query this codec can answer (it is then ignored, as a resolver
/// ignores garbage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error("DNS message of {0} bytes is shorter than its 12-byte header")]
    Short(usize),
    #[error("DNS message is a response, not a query")]
    Response,
    #[error("DNS question name is malformed at byte {0}")]
    BadName(usize),
    #[error("DNS question ends at byte {0}, before its type and class")]
    TruncatedQuestion(usize),
}

/// A question: its name as on the wire (length-prefixed labels, the root's 0 included), its
/// type and its class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Question<'a> {
    pub name: &'a [u8],
    pub qtype: u16,
    pub qclass: u16,
}

/// What a query asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query<'a> {
    pub id: u16,
    pub opcode: u8,
    pub recursion_desired: bool,
    /// The first question of a standard query (opcode 0); None for other opcodes and for a
    /// standard query that asks nothing (which deserves FORMERR).
    pub question: Option<Question<'a>>,
}

/// Reads a query's header and, for a standard query, its first question. Later questions and
/// the other sections (an EDNS OPT record, say) are not read.
pub fn parse_query(msg: &[u8]) -> Result<Query<'_>, DnsError> {
    if msg.len() < HEADER_LEN {
        return Err(DnsError::Short(msg.len()));
    }
    let word = |at: usize| u16::from_be_bytes([msg[at], msg[at + 1]]);
    let flags = word(2);
    if flags & 0x8000 != 0 {
        return Err(DnsError::Response);
    }
    let opcode = ((flags >> 11) & 0x0f) as u8;
    let question = if opcode == 0 && word(4) > 0 {
        Some(parse_question(msg, HEADER_LEN)?)
    } else {
        None
    };
    Ok(Query {
        id: word(0),
        opcode,
        recursion_desired: flags & 0x0100 != 0,
        question,
    })
}

fn parse_question(msg: &[u8], start: usize) -> Result<Question<'_>, DnsError> {
    let mut at = start;
    loop {
        let Some(&len) = msg.get(at) else {
            return Err(DnsError::BadName(at));
        };
        // 0xc0 is a compression pointer, 0x40 and 0x80 are reserved: none starts a label of a
        // query's first name.
        if len & 0xc0 != 0 {
            return Err(DnsError::BadName(at));
        }
        at += 1 + usize::from(len);
        if at - start > MAX_NAME {
            return Err(DnsError::BadName(start));
        }
        if len == 0 {
            break;
        }
    }
    let Some(tail) = msg.get(at..at + 4) else {
        return Err(DnsError::TruncatedQuestion(msg.len()));
    };
    Ok(Question {
        name: &msg[start..at],
        qtype: u16::from_be_bytes([tail[0], tail[1]]),
        qclass: u16::from_be_bytes([tail[2], tail[3]]),
    })
}

impl Question<'_> {
    /// The name in lowercase dotted form without the final dot (`""` for the root), written
    /// into `out`. None when a label holds a byte other than a letter, a digit, `-` or `_`:
    /// no name the resolver knows has one, and a label holding a dot would read as two.
    pub fn name_text<'b>(&self, out: &'b mut [u8; MAX_NAME]) -> Option<&'b str> {
        let mut n = 0;
        let mut at = 0;
        // `name` ends with the root's 0 (parse_question made sure), so `at` stays in bounds.
        while let Some(&len) = self.name.get(at).filter(|&&len| len != 0) {
            let label = self.name.get(at + 1..at + 1 + usize::from(len))?;
            if n > 0 {
                *out.get_mut(n)? = b'.';
                n += 1;
            }
            for &byte in label {
                if !(byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_') {
                    return None;
                }
                *out.get_mut(n)? = byte.to_ascii_lowercase();
                n += 1;
            }
            at += 1 + usize::from(len);
        }
        std::str::from_utf8(&out[..n]).ok()
    }
}

/// Writes the response to `query` into `out`: the question echoed as it was asked, `rcode`,
/// and one A record per IPv4 address of `answers` (AAAA per IPv6 one), each with `ttl` seconds. Recursion is said to be
/// available, as the Amazon resolver says. Returns the length written, or None when `out`
/// cannot hold it.
pub fn write_response(
    query: &Query<'_>,
    rcode: Rcode,
    answers: &[IpAddr],
    ttl: u32,
    out: &mut [u8],
) -> Option<usize> {
    let answers = if query.question.is_some() {
        answers
    } else {
        &[] // an answer points at the question's name
    };
    let question_len = query.question.map_or(0, |q| q.name.len() + 4);
    let record_len = |a: &IpAddr| if a.is_ipv6() { 28 } else { 16 };
    let len = HEADER_LEN + question_len + answers.iter().map(record_len).sum::<usize>();
    let out = out.get_mut(..len)?;
    let mut flags: u16 = 0x8000 | (u16::from(query.opcode & 0x0f) << 11) | 0x0080;
    if query.recursion_desired {
        flags |= 0x0100;
    }
    flags |= rcode as u16;
    out[0..2].copy_from_slice(&query.id.to_be_bytes());
    out[2..4].copy_from_slice(&flags.to_be_bytes());
    out[4..6].copy_from_slice(&u16::from(query.question.is_some()).to_be_bytes());
    out[6..8].copy_from_slice(&(answers.len() as u16).to_be_bytes());
    out[8..12].fill(0);
    let mut at = HEADER_LEN;
    if let Some(q) = &query.question {
        out[at..at + q.name.len()].copy_from_slice(q.name);
        at += q.name.len();
        out[at..at + 2].copy_from_slice(&q.qtype.to_be_bytes());
        out[at + 2..at + 4].copy_from_slice(&q.qclass.to_be_bytes());
        at += 4;
    }
    for addr in answers {
        let record = &mut out[at..at + record_len(addr)];
        // The name: a pointer to the question's, at offset 12.
        record[0..2].copy_from_slice(&[0xc0, HEADER_LEN as u8]);
        let (kind, data) = match addr {
            IpAddr::V4(a) => (TYPE_A, &a.octets()[..]),
            IpAddr::V6(a) => (TYPE_AAAA, &a.octets()[..]),
        };
        record[2..4].copy_from_slice(&kind.to_be_bytes());
        record[4..6].copy_from_slice(&CLASS_IN.to_be_bytes());
        record[6..10].copy_from_slice(&ttl.to_be_bytes());
        record[10..12].copy_from_slice(&(data.len() as u16).to_be_bytes());
        record[12..].copy_from_slice(data);
        at += record.len();
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// `dig WEB1` as dig 9.18 sends it: RD and AD set, an EDNS OPT record with a cookie.
    const DIG_WEB1: &str = "7cf1012000010000000000010457454231000001000100002904d000000000000c\
                            000a00084da3ab2981d7d89d";
    /// `dig +noedns +nocookie ip-10-0-1-10.ec2.internal AAAA`.
    const DIG_AAAA: &str = "288d012000010000000000000c69702d31302d302d312d31300365633208696e74\
                            65726e616c00001c0001";

    #[test]
    fn parses_the_header_and_question_dig_sends() {
        let bytes = hex(DIG_WEB1);
        let query = parse_query(&bytes).unwrap();
        assert_eq!(
            (query.id, query.opcode, query.recursion_desired),
            (0x7cf1, 0, true)
        );
        let q = query.question.unwrap();
        assert_eq!(q.name, b"\x04WEB1\x00");
        assert_eq!((q.qtype, q.qclass), (TYPE_A, CLASS_IN));
        let mut text = [0u8; MAX_NAME];
        assert_eq!(q.name_text(&mut text), Some("web1"));

        let bytes = hex(DIG_AAAA);
        let q = parse_query(&bytes).unwrap().question.unwrap();
        assert_eq!(q.qtype, TYPE_AAAA);
        assert_eq!(q.name_text(&mut text), Some("ip-10-0-1-10.ec2.internal"));
    }

    #[test]
    fn writes_an_answer_that_echoes_the_question() {
        let bytes = hex(DIG_WEB1);
        let query = parse_query(&bytes).unwrap();
        let mut out = [0u8; MAX_UDP_MESSAGE];
        let addr = IpAddr::from([10, 0, 0, 10]);
        let n = write_response(&query, Rcode::NoError, &[addr], 60, &mut out).unwrap();
        let expected = hex(concat!(
            "7cf1",
            "8180",
            "0001",
            "0001",
            "0000",
            "0000", // id, QR RD RA, counts
            "0457454231",
            "00",
            "0001",
            "0001", // the question as asked
            "c00c",
            "0001",
            "0001",
            "0000003c",
            "0004",
            "0a00000a", // WEB1 A 10.0.0.10, ttl 60
        ));
        assert_eq!(&out[..n], &expected[..]);
    }

    #[test]
    fn nxdomain_and_nodata_carry_no_answer() {
        let bytes = hex(DIG_AAAA);
        let query = parse_query(&bytes).unwrap();
        let mut out = [0u8; MAX_UDP_MESSAGE];
        let n = write_response(&query, Rcode::NxDomain, &[], 60, &mut out).unwrap();
        assert_eq!(n, bytes.len());
        assert_eq!(&out[2..4], &[0x81, 0x83], "QR RD RA, NXDOMAIN");
        assert_eq!(&out[4..8], &[0, 1, 0, 0]);
        assert_eq!(&out[12..n], &bytes[12..]);
        let n = write_response(&query, Rcode::NoError, &[], 60, &mut out).unwrap();
        assert_eq!((&out[2..4], &out[6..8]), (&[0x81, 0x80][..], &[0, 0][..]));
        assert_eq!(n, bytes.len());
    }

    #[test]
    fn other_opcodes_get_no_question_and_no_answer() {
        // A NOTIFY (opcode 4) with one question.
        let mut bytes = hex(DIG_AAAA);
        bytes[2] = 0x20;
        let query = parse_query(&bytes).unwrap();
        assert_eq!((query.opcode, query.question), (4, None));
        let mut out = [0u8; MAX_UDP_MESSAGE];
        let addr = IpAddr::from([192, 0, 2, 1]);
        let n = write_response(&query, Rcode::NotImp, &[addr], 60, &mut out).unwrap();
        assert_eq!(n, HEADER_LEN);
        assert_eq!(&out[..n], &hex("288da0840000000000000000")[..]);
        // A buffer too small is refused, not overrun.
        let bytes = hex(DIG_WEB1);
        let query = parse_query(&bytes).unwrap();
        assert_eq!(
            write_response(&query, Rcode::NoError, &[addr], 60, &mut out[..30]),
            None
        );
    }

    #[test]
    fn malformed_messages_are_errors_not_panics() {
        let good = hex(DIG_AAAA);
        assert_eq!(parse_query(&good[..5]), Err(DnsError::Short(5)));
        let mut response = good.clone();
        response[2] |= 0x80;
        assert_eq!(parse_query(&response), Err(DnsError::Response));
        // Cut anywhere in the question: an error, never a panic.
        for len in HEADER_LEN..good.len() {
            assert!(parse_query(&good[..len]).is_err(), "{len} bytes");
        }
        // A compression pointer, a label running past the end, a name over 255 bytes.
        let mut pointer = good.clone();
        pointer[12] = 0xc0;
        assert_eq!(parse_query(&pointer), Err(DnsError::BadName(12)));
        let mut long_label = good[..12].to_vec();
        long_label.extend([63u8; 1]);
        assert_eq!(parse_query(&long_label), Err(DnsError::BadName(76)));
        let mut huge = good[..12].to_vec();
        for _ in 0..5 {
            huge.push(63);
            huge.extend([b'a'; 63]);
        }
        huge.extend([0, 0, 1, 0, 1]);
        assert_eq!(parse_query(&huge), Err(DnsError::BadName(12)));
        // Every byte string of a few lengths parses or fails without panicking.
        let mut noise = [0u8; 40];
        for seed in 0u32..2000 {
            for (i, b) in noise.iter_mut().enumerate() {
                *b = (seed.wrapping_mul(2_654_435_761).rotate_left(i as u32) >> 7) as u8;
            }
            noise[2] &= 0x7f;
            if let Ok(q) = parse_query(&noise) {
                let mut out = [0u8; MAX_UDP_MESSAGE];
                let _ = q
                    .question
                    .map(|q| q.name_text(&mut [0u8; MAX_NAME]).is_some());
                let _ = write_response(
                    &q,
                    Rcode::NoError,
                    &[IpAddr::from([127, 0, 0, 1])],
                    1,
                    &mut out,
                );
            }
        }
    }

    #[test]
    fn names_with_odd_bytes_have_no_text() {
        // "a.b" as one label, and a space.
        let mut msg = hex("000001000001000000000000");
        msg.extend(b"\x03a.b\x00\x00\x01\x00\x01");
        let q = parse_query(&msg).unwrap().question.unwrap();
        assert_eq!(q.name_text(&mut [0u8; MAX_NAME]), None);
        let mut root = hex("000001000001000000000000");
        root.extend([0, 0, 1, 0, 1]);
        let q = parse_query(&root).unwrap().question.unwrap();
        assert_eq!(q.name_text(&mut [0u8; MAX_NAME]), Some(""));
    }
}
