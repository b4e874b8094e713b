//! A terminal's side of the protocol: what `replay`, `loadgen` and the
//! integration tests use to talk to a switch.

use std::time::Duration;

use bytes::Bytes;
use clubswitch_wire::{
    decode, CardAad, CardData, Frame, FrameCodec, LengthHeader, Message, Mti, Stan, TerminalId,
    TerminalKeys, Tmk, TransmissionTime,
};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("framing: {0}")]
    Frame(#[from] clubswitch_wire::FrameError),
    #[error("the switch closed the connection")]
    Closed,
    #[error("no response within {0:?}")]
    Timeout(Duration),
    #[error("undecodable response: {0}")]
    Decode(#[from] clubswitch_wire::DecodeError),
    #[error("{0}")]
    Build(String),
}

/// A terminal: its id and keys, and a STAN counter.
#[derive(Clone)]
pub struct Terminal {
    pub id: TerminalId,
    pub keys: TerminalKeys,
    stan: u32,
}

impl Terminal {
    pub fn new(id: TerminalId, tmk: &Tmk) -> Terminal {
        Terminal {
            id,
            keys: TerminalKeys::derive(tmk),
            stan: 0,
        }
    }

    /// Starts the STAN counter at `n` (so several runs do not collide).
    pub fn with_stan(mut self, n: u32) -> Terminal {
        self.stan = n % 1_000_000;
        self
    }

    pub fn set_key(&mut self, tmk: &Tmk) {
        self.keys = TerminalKeys::derive(tmk);
    }

    /// A request with DE 7 (now + `skew` seconds), DE 11 (next STAN) and
    /// DE 41 set.
    pub fn request(&mut self, mti: Mti, skew: i64) -> Message {
        self.stan = (self.stan + 1) % 1_000_000;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let mut m = Message::new(mti);
        m.set_transmission_time(TransmissionTime::from_unix(now + skew));
        m.set_stan(Stan::new(self.stan).unwrap_or(Stan::new(0).unwrap_or_else(|| unreachable!())));
        m.set_terminal_id(self.id);
        m
    }

    /// Seals `card` into DE 120 (DE 41, 11, 7 must be set).
    pub fn seal_card(&self, m: &mut Message, card: &CardData) -> Result<(), ClientError> {
        let aad = CardAad::of(m).map_err(|e| ClientError::Build(e.to_string()))?;
        m.set(120, self.keys.seal_card(card, &aad).into_bytes())
            .map_err(|e| ClientError::Build(e.to_string()))
    }

    /// Encodes with the MAC.
    pub fn sign(&self, m: &mut Message) -> Bytes {
        self.keys.sign(m)
    }
}

/// A connection to the switch.
pub struct Connection {
    framed: Framed<TcpStream, FrameCodec>,
    pub timeout: Duration,
}

impl Connection {
    pub async fn connect(addr: &str, header: LengthHeader) -> Result<Connection, ClientError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(ClientError::Connect)?;
        let _ = stream.set_nodelay(true);
        Ok(Connection {
            framed: Framed::new(stream, FrameCodec::new(header, header.limit())),
            timeout: Duration::from_secs(10),
        })
    }

    pub async fn send_raw(&mut self, raw: Bytes) -> Result<(), ClientError> {
        self.framed.send(raw).await?;
        Ok(())
    }

    /// The next response frame, raw and decoded.
    pub async fn recv(&mut self) -> Result<(Bytes, Message), ClientError> {
        loop {
            let next = tokio::time::timeout(self.timeout, self.framed.next())
                .await
                .map_err(|_| ClientError::Timeout(self.timeout))?;
            match next {
                None => return Err(ClientError::Closed),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(Frame::KeepAlive)) => continue,
                Some(Ok(Frame::Message(raw))) => {
                    let m = decode(&raw)?;
                    return Ok((raw, m));
                }
            }
        }
    }

    /// Sends `raw` and waits for the response whose DE 11 and DE 7 match
    /// `req` (others, from pipelined requests, are an error here).
    pub async fn exchange(
        &mut self,
        raw: Bytes,
        req: &Message,
    ) -> Result<(Bytes, Message), ClientError> {
        self.send_raw(raw).await?;
        let (resp_raw, resp) = self.recv().await?;
        if resp.get(11) != req.get(11) || resp.get(7) != req.get(7) {
            return Err(ClientError::Build(
                "response does not match the request's DE 11 and DE 7".into(),
            ));
        }
        Ok((resp_raw, resp))
    }
}
