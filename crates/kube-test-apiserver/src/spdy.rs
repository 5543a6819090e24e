//! `pods/portforward` as kubectl 1.31+ speaks it by default: a websocket with subprotocol
//! `SPDY/3.1+portforward.k8s.io` whose binary messages carry a SPDY/3.1 connection. kubectl opens, per
//! local connection, an `error` and a `data` stream (headers `streamtype`, `port`, `requestid`); this
//! server answers every stream and echoes what arrives on a data stream, as if each pod port ran an echo
//! server. Only what that needs: SYN_STREAM/SYN_REPLY, DATA, PING, GOAWAY; no flow control.
//!
//! SPDY compresses header blocks with one zlib stream per direction and a preset dictionary, hence the
//! small inflater below (RFC 1951). The headers sent back are "compressed" as stored blocks, which any
//! zlib reader accepts.

use axum::extract::ws::{Message, WebSocket};

/// The SPDY/3 header dictionary, as the SPDY/3 specification defines it (1423 bytes).
const DICTIONARY: &[u8] = include_bytes!("spdy3.dict");

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const FLAG_FIN: u8 = 1;

/// The websocket subprotocol kubectl asks for.
pub const PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";

/// Serves one port-forward connection until the client leaves.
pub async fn port_forward(mut socket: WebSocket) {
    let mut session = Session { inflater: Inflater::new(), headers_started: false, streams: Vec::new() };
    let mut buffered: Vec<u8> = Vec::new();
    while let Some(Ok(message)) = socket.recv().await {
        match message {
            Message::Binary(bytes) => buffered.extend_from_slice(&bytes),
            Message::Close(_) => return,
            _ => continue,
        }
        while let Some(length) = frame_length(&buffered) {
            let frame: Vec<u8> = buffered.drain(..length).collect();
            let answers = match session.handle(&frame) {
                Ok(answers) => answers,
                Err(e) => {
                    tracing::debug!(error = %e, "kube-test-apiserver: port-forward protocol error");
                    return;
                }
            };
            for answer in answers {
                if answer.is_empty() {
                    return; // GOAWAY
                }
                if socket.send(Message::Binary(answer.into())).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// The length of the first whole frame in `buffer`, if it holds one.
fn frame_length(buffer: &[u8]) -> Option<usize> {
    let header = buffer.get(..8)?;
    let length = 8 + u32::from_be_bytes([0, header[5], header[6], header[7]]) as usize;
    (buffer.len() >= length).then_some(length)
}

struct Stream {
    id: u32,
    kind: String,
    request: String,
}

struct Session {
    inflater: Inflater,
    headers_started: bool,
    streams: Vec<Stream>,
}

impl Session {
    /// The frames to send for one received frame (an empty one: close the connection).
    fn handle(&mut self, frame: &[u8]) -> Result<Vec<Vec<u8>>, String> {
        let word = |at: usize| frame.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])).ok_or("a short frame");
        let flags = frame[4];
        if frame[0] & 0x80 == 0 {
            // DATA: echo it; a FIN from the client ends the stream both ways, and its error stream too
            let id = word(0)? & 0x7fff_ffff;
            let Some(stream) = self.streams.iter().find(|s| s.id == id) else { return Ok(Vec::new()) };
            if stream.kind != "data" {
                return Ok(Vec::new());
            }
            let mut answers = Vec::new();
            if frame.len() > 8 {
                answers.push(data_frame(id, &frame[8..], 0));
            }
            if flags & FLAG_FIN != 0 {
                answers.push(data_frame(id, &[], FLAG_FIN));
                let request = stream.request.clone();
                for error in self.streams.iter().filter(|s| s.kind == "error" && s.request == request) {
                    answers.push(data_frame(error.id, &[], FLAG_FIN));
                }
                self.streams.retain(|s| s.request != request);
            }
            return Ok(answers);
        }
        match u16::from_be_bytes([frame[2], frame[3]]) {
            SYN_STREAM => {
                let id = word(8)? & 0x7fff_ffff;
                let block = frame.get(18..).ok_or("a short SYN_STREAM")?;
                let headers = name_values(&self.inflater.inflate(block)?)?;
                let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).unwrap_or_default();
                tracing::debug!(id, ?headers, "kube-test-apiserver: port-forward stream");
                self.streams.push(Stream { id, kind: header("streamtype"), request: header("requestid") });
                let mut payload = id.to_be_bytes().to_vec();
                payload.extend(self.empty_header_block());
                Ok(vec![control_frame(SYN_REPLY, 0, &payload)])
            }
            PING => Ok(vec![frame.to_vec()]),
            GOAWAY => Ok(vec![Vec::new()]),
            _ => Ok(Vec::new()), // SETTINGS, WINDOW_UPDATE, RST_STREAM, HEADERS
        }
    }

    /// A header block of no headers, as a stored deflate block in this direction's zlib stream.
    fn empty_header_block(&mut self) -> Vec<u8> {
        let mut block = Vec::new();
        if !self.headers_started {
            block.extend([0x78, 0x01]); // zlib header, no preset dictionary
            self.headers_started = true;
        }
        let data = [0u8; 4]; // zero name/value pairs
        block.push(0); // not final, stored
        block.extend((data.len() as u16).to_le_bytes());
        block.extend((!(data.len() as u16)).to_le_bytes());
        block.extend(data);
        // a sync flush's empty stored block: Go's inflater hands out a stored block's bytes only when
        // the next block starts, so without it they would wait for the next header block
        block.extend([0, 0, 0, 0xff, 0xff]);
        block
    }
}

fn control_frame(kind: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x80, 3];
    frame.extend(kind.to_be_bytes());
    frame.push(flags);
    frame.extend(&(payload.len() as u32).to_be_bytes()[1..]);
    frame.extend(payload);
    frame
}

fn data_frame(id: u32, data: &[u8], flags: u8) -> Vec<u8> {
    let mut frame = (id & 0x7fff_ffff).to_be_bytes().to_vec();
    frame.push(flags);
    frame.extend(&(data.len() as u32).to_be_bytes()[1..]);
    frame.extend(data);
    frame
}

/// A decompressed SPDY header block: a count, then length-prefixed names and values.
fn name_values(block: &[u8]) -> Result<Vec<(String, String)>, String> {
    let mut at = 0;
    let mut next = |len: usize| -> Result<&[u8], String> {
        let bytes = block.get(at..at + len).ok_or("a short header block")?;
        at += len;
        Ok(bytes)
    };
    let word = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let count = word(next(4)?);
    let mut headers = Vec::new();
    for _ in 0..count {
        let len = word(next(4)?);
        let name = String::from_utf8_lossy(next(len)?).into_owned();
        let len = word(next(4)?);
        let value = String::from_utf8_lossy(next(len)?).into_owned();
        headers.push((name, value));
    }
    Ok(headers)
}

const LENGTH_BASE: [u16; 29] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
const LENGTH_EXTRA: [u8; 29] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
const DISTANCE_BASE: [u16; 30] =
    [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577];
const DISTANCE_EXTRA: [u8; 30] = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];
const CODE_LENGTH_ORDER: [usize; 19] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

/// A canonical Huffman code: how many codes of each length, and the symbols in code order.
struct Huffman {
    count: [u16; 16],
    symbol: Vec<u16>,
}

impl Huffman {
    fn new(lengths: &[u8]) -> Huffman {
        let mut count = [0u16; 16];
        for &l in lengths {
            count[l as usize] += 1;
        }
        count[0] = 0;
        let mut offset = [0u16; 16];
        for len in 1..15 {
            offset[len + 1] = offset[len] + count[len];
        }
        let mut symbol = vec![0u16; lengths.len()];
        for (s, &l) in lengths.iter().enumerate() {
            if l != 0 {
                symbol[offset[l as usize] as usize] = s as u16;
                offset[l as usize] += 1;
            }
        }
        Huffman { count, symbol }
    }
}

/// One direction's zlib stream of header blocks: each block decompresses against what came before
/// (starting with the dictionary), and ends at a sync flush.
struct Inflater {
    history: Vec<u8>,
    header_read: bool,
}

struct Bits<'a> {
    input: &'a [u8],
    at: usize,
    buffer: u32,
    count: u32,
}

impl Bits<'_> {
    fn take(&mut self, n: u32) -> Result<u32, String> {
        while self.count < n {
            let byte = *self.input.get(self.at).ok_or("the compressed header block ends early")?;
            self.buffer |= (byte as u32) << self.count;
            self.at += 1;
            self.count += 8;
        }
        let value = self.buffer & ((1u64 << n) - 1) as u32;
        self.buffer = if n == 32 { 0 } else { self.buffer >> n };
        self.count -= n;
        Ok(value)
    }

    fn decode(&mut self, h: &Huffman) -> Result<u16, String> {
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for len in 1..16 {
            code |= self.take(1)? as i32;
            let count = h.count[len] as i32;
            if code - count < first {
                return Ok(h.symbol[(index + code - first) as usize]);
            }
            index += count;
            first += count;
            first <<= 1;
            code <<= 1;
        }
        Err("a bad Huffman code".into())
    }
}

impl Inflater {
    fn new() -> Inflater {
        Inflater { history: DICTIONARY.to_vec(), header_read: false }
    }

    fn inflate(&mut self, input: &[u8]) -> Result<Vec<u8>, String> {
        let start = self.history.len();
        let mut bits = Bits { input, at: 0, buffer: 0, count: 0 };
        if !self.header_read {
            let (cmf, flg) = (bits.take(8)?, bits.take(8)?);
            if cmf & 0x0f != 8 {
                return Err("not a deflate stream".into());
            }
            if flg & 0x20 != 0 {
                let id = (0..4).try_fold(0u32, |id, _| Ok::<_, String>((id << 8) | bits.take(8)?))?;
                if id != adler32(DICTIONARY) {
                    return Err(format!("the client's dictionary {id:08x} is not SPDY/3's"));
                }
            }
            self.header_read = true;
        }
        while !(bits.count == 0 && bits.at == input.len()) {
            let last = bits.take(1)?;
            match bits.take(2)? {
                0 => {
                    bits.take(bits.count % 8)?;
                    let len = bits.take(16)?;
                    let _nlen = bits.take(16)?;
                    for _ in 0..len {
                        let byte = bits.take(8)? as u8;
                        self.history.push(byte);
                    }
                }
                1 => {
                    let mut lengths = [0u8; 288];
                    lengths[..144].fill(8);
                    lengths[144..256].fill(9);
                    lengths[256..280].fill(7);
                    lengths[280..].fill(8);
                    self.codes(&mut bits, &Huffman::new(&lengths), &Huffman::new(&[5; 30]))?;
                }
                2 => {
                    let literals = bits.take(5)? as usize + 257;
                    let distances = bits.take(5)? as usize + 1;
                    let code_lengths = bits.take(4)? as usize + 4;
                    let mut lengths = [0u8; 19];
                    for &i in &CODE_LENGTH_ORDER[..code_lengths] {
                        lengths[i] = bits.take(3)? as u8;
                    }
                    let code = Huffman::new(&lengths);
                    let mut all = Vec::with_capacity(literals + distances);
                    while all.len() < literals + distances {
                        let (value, times) = match bits.decode(&code)? {
                            s @ 0..=15 => (s as u8, 1),
                            16 => (*all.last().ok_or("a repeat with nothing before")?, 3 + bits.take(2)?),
                            17 => (0, 3 + bits.take(3)?),
                            _ => (0, 11 + bits.take(7)?),
                        };
                        all.extend(std::iter::repeat_n(value, times as usize));
                    }
                    all.truncate(literals + distances);
                    self.codes(&mut bits, &Huffman::new(&all[..literals]), &Huffman::new(&all[literals..]))?;
                }
                _ => return Err("a bad deflate block type".into()),
            }
            if last == 1 {
                break;
            }
        }
        let out = self.history[start..].to_vec();
        // what later blocks may refer back to: the last 32 KiB
        if self.history.len() > 64 * 1024 {
            self.history.drain(..self.history.len() - 32 * 1024);
        }
        Ok(out)
    }

    fn codes(&mut self, bits: &mut Bits, literals: &Huffman, distances: &Huffman) -> Result<(), String> {
        loop {
            let symbol = bits.decode(literals)? as usize;
            match symbol {
                0..=255 => self.history.push(symbol as u8),
                256 => return Ok(()),
                _ => {
                    let i = symbol - 257;
                    let len = *LENGTH_BASE.get(i).ok_or("a bad length")? as usize + bits.take(LENGTH_EXTRA[i] as u32)? as usize;
                    let d = bits.decode(distances)? as usize;
                    let dist = *DISTANCE_BASE.get(d).ok_or("a bad distance")? as usize + bits.take(DISTANCE_EXTRA[d] as u32)? as usize;
                    let from = self.history.len().checked_sub(dist).ok_or("a distance too far back")?;
                    for k in 0..len {
                        let byte = self.history[from + k];
                        self.history.push(byte);
                    }
                }
            }
        }
    }
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + byte as u32) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inflates_a_header_block_compressed_against_the_dictionary() {
        // zlib (level 9, the SPDY/3 dictionary, sync flush) of one pair, streamtype = data, then of streamtype = error
        let compressed = [
            0x78, 0xf9, 0xe3, 0xc6, 0xa7, 0xc2, 0x02, 0xa6, 0x23, 0x46, 0x70, 0x3a, 0x2b, 0x29, 0x4a, 0x4d, 0xcc, 0x45, 0x2a, 0x4a, 0x12, 0x01, 0x00, 0x00,
            0x00, 0xff, 0xff,
        ];
        let next = [0xc2, 0x2a, 0xc3, 0x9a, 0x0a, 0x8a, 0x02, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff];
        let mut inflater = Inflater::new();
        let block = inflater.inflate(&compressed).expect("inflates");
        assert_eq!(name_values(&block).unwrap(), [("streamtype".to_string(), "data".to_string())]);
        // the next block refers back to the first
        let block = inflater.inflate(&next).expect("inflates");
        assert_eq!(name_values(&block).unwrap(), [("streamtype".to_string(), "error".to_string())]);
        assert_eq!(DICTIONARY.len(), 1423);
    }
}
