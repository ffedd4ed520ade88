//! Scenario types of the application protocols that run over TCP (`sim/world/protocols.rs`):
//! a heartbeat client, and a message sender and sink with or without resume-after-reconnect.

use super::draw::DurDraw;
use super::types::{OptValue, SockOpt};
use super::units::DurSpec;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A client that connects to `to` (an echo server) and, every `interval`, sends one byte and
/// expects it back; after `misses` unanswered heartbeats in a row it declares the peer dead
/// and closes. Without `interval` it sends nothing (an idle connection: keepalive's case).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatSpec {
    pub host: String,
    pub to: String,
    #[serde(default)]
    pub at: Option<DurSpec>,
    #[serde(default)]
    pub interval: Option<DurSpec>,
    /// Unanswered heartbeats that mean the peer is dead (0: never declared by the app).
    #[serde(default)]
    pub misses: u32,
    #[serde(default)]
    pub sockopts: BTreeMap<SockOpt, OptValue>,
}

/// How a message sender copes with failures.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MsgProtocol {
    /// Numbered messages, acknowledged by the receiver; after any failure (an error, EOF, no
    /// acknowledgement for `ack_timeout`) the sender reconnects, learns the receiver's next
    /// expected number and resends from there; the receiver drops duplicates.
    #[default]
    Resume,
    /// Each message sent once; a successful send() is taken as delivery. After an error the
    /// sender reconnects and goes on with the next message.
    Naive,
}

impl MsgProtocol {
    /// The name as written in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            MsgProtocol::Resume => "resume",
            MsgProtocol::Naive => "naive",
        }
    }
}

/// Sends `messages` numbered 16-byte messages to `to`, one every `interval` from `at`
/// (none during the quiet period `quiet_at` .. `quiet_at + quiet`, both drawn per run).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MessengerSpec {
    pub host: String,
    pub to: String,
    #[serde(default)]
    pub at: Option<DurSpec>,
    pub messages: u32,
    pub interval: DurSpec,
    #[serde(default)]
    pub protocol: MsgProtocol,
    /// No acknowledgement progress for this long while messages are outstanding: the
    /// connection is abandoned (default 5s; resume only).
    #[serde(default)]
    pub ack_timeout: Option<DurSpec>,
    /// Wait before reconnecting (default 1s).
    #[serde(default)]
    pub retry: Option<DurSpec>,
    #[serde(default)]
    pub quiet_at: Option<DurDraw>,
    #[serde(default)]
    pub quiet: Option<DurDraw>,
}

/// Listens on `port` and takes messages from a [`MessengerSpec`] sender; its log of delivered
/// messages survives a crash of its host (it is the application's durable state), and it
/// listens again once the host is back.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageSinkSpec {
    pub host: String,
    pub port: u16,
    #[serde(default)]
    pub protocol: MsgProtocol,
}
