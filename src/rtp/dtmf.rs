//! RFC 4733 telephone-events for DTMF: the 4-byte payload, the digit codes,
//! and the schedule of one digit string as the sender plays it.
//!
//! By hand: the payload is four bytes (event, E/R/volume, duration), and the
//! `rtp` crate has no telephone-event type.
//!
//! One digit, as [`DtmfPlayer`] schedules it (20 ms packets, 8 kHz clock):
//! `tone_frames - 1` updates with durations 160, 320, … (the first with the
//! RTP marker bit), then the end packet (E bit, the full duration) three times
//! (RFC 4733 §2.5.1.4), all with the event's one timestamp, each with its own
//! sequence number; then `gap_frames` of ordinary audio before the next digit.

use std::fmt;
use std::time::Duration;

use super::tone::FRAME;

/// The volume we send events at: -10 dBm0 (the field is the power in -dBm0).
pub const DEFAULT_VOLUME: u8 = 10;
/// Longest tone per digit: the 16-bit duration field holds 65535/8000 s; we
/// stop at 400 frames (8 s).
pub const MAX_TONE_FRAMES: u32 = 400;
/// How many times the end packet is sent.
pub const END_REPEATS: u32 = 3;

/// The RFC 4733 §3.2 event code of a DTMF digit (`0-9 * # A-D`, case-blind).
pub fn event_code(digit: char) -> Option<u8> {
    match digit.to_ascii_uppercase() {
        d @ '0'..='9' => Some(d as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        d @ 'A'..='D' => Some(d as u8 - b'A' + 12),
        _ => None,
    }
}

/// The digit of an event code 0–15, `None` for other events (flash, tones).
pub fn event_digit(code: u8) -> Option<char> {
    match code {
        0..=9 => Some((b'0' + code) as char),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some((b'A' + code - 12) as char),
        _ => None,
    }
}

/// One telephone-event payload (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// The event code (0–15 for DTMF).
    pub event: u8,
    /// The E bit: this packet ends the event.
    pub end: bool,
    /// The power level in -dBm0 (0–63).
    pub volume: u8,
    /// The duration so far, in RTP timestamp units (1/8000 s).
    pub duration: u16,
}

impl TelephoneEvent {
    /// The 4 bytes of the payload.
    pub fn to_bytes(&self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            (u8::from(self.end) << 7) | (self.volume & 0x3F),
            d[0],
            d[1],
        ]
    }

    /// Reads a payload; `None` if shorter than 4 bytes. Only the first event
    /// of a (redundant, RFC 4733 §2.6) multi-event payload is read.
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let b = payload.get(..4)?;
        Some(TelephoneEvent {
            event: b[0],
            end: b[1] & 0x80 != 0,
            volume: b[1] & 0x3F,
            duration: u16::from_be_bytes([b[2], b[3]]),
        })
    }
}

/// A digit string with a character that is no DTMF digit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtmfError {
    /// The offending character.
    pub found: char,
}

impl fmt::Display for DtmfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not a DTMF digit (0-9 * # A-D)", self.found)
    }
}

impl std::error::Error for DtmfError {}

/// What the sender sends in one 20 ms slot while a digit string plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfSlot {
    /// A telephone-event packet; `first` is the event's first packet (the
    /// marker bit, and a new timestamp).
    Event {
        /// The payload.
        event: TelephoneEvent,
        /// The first packet of this event.
        first: bool,
    },
    /// An ordinary audio frame between two digits.
    Gap,
}

/// The schedule of a digit string, one slot at a time.
#[derive(Debug, Clone)]
pub struct DtmfPlayer {
    digits: Vec<u8>,
    tone_frames: u32,
    gap_frames: u32,
    volume: u8,
    /// Index into `digits` of the digit playing.
    digit: usize,
    /// Slot within the digit: tone updates, end repeats, then the gap.
    slot: u32,
}

impl DtmfPlayer {
    /// A player for `digits`, each lasting `tone` (rounded to whole 20 ms
    /// frames, 1 to [`MAX_TONE_FRAMES`]) followed by `gap` of audio.
    pub fn new(digits: &str, tone: Duration, gap: Duration) -> Result<Self, DtmfError> {
        let digits = digits
            .chars()
            .map(|c| event_code(c).ok_or(DtmfError { found: c }))
            .collect::<Result<Vec<_>, _>>()?;
        let frames = |d: Duration| (d.as_micros() / FRAME.as_micros()) as u32;
        Ok(DtmfPlayer {
            digits,
            tone_frames: frames(tone).clamp(1, MAX_TONE_FRAMES),
            gap_frames: frames(gap),
            volume: DEFAULT_VOLUME,
            digit: 0,
            slot: 0,
        })
    }

    /// Appends more digits to play after the ones queued.
    pub fn extend(&mut self, more: DtmfPlayer) {
        self.digits.extend(more.digits);
    }

    /// True once every digit and its gap has been played.
    pub fn is_done(&self) -> bool {
        self.digit >= self.digits.len()
    }

    /// The next slot, `None` when done.
    pub fn next_slot(&mut self) -> Option<DtmfSlot> {
        let &event = self.digits.get(self.digit)?;
        let updates = self.tone_frames - 1;
        let s = self.slot;
        let out = if s < updates + END_REPEATS {
            let end = s >= updates;
            let frames = if end { self.tone_frames } else { s + 1 };
            DtmfSlot::Event {
                event: TelephoneEvent {
                    event,
                    end,
                    volume: self.volume,
                    duration: (frames * 160) as u16,
                },
                first: s == 0,
            }
        } else {
            DtmfSlot::Gap
        };
        self.slot += 1;
        if self.slot >= updates + END_REPEATS + self.gap_frames {
            self.slot = 0;
            self.digit += 1;
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_dtmf_codes() {
        let all = "0123456789*#ABCD";
        for (i, c) in all.chars().enumerate() {
            assert_eq!(event_code(c), Some(i as u8));
            assert_eq!(event_digit(i as u8), Some(c));
        }
        assert_eq!(event_code('a'), Some(12));
        assert_eq!(event_code('E'), None);
        assert_eq!(event_digit(16), None);
    }

    #[test]
    fn rtp_dtmf_payload_round_trips() {
        let e = TelephoneEvent {
            event: 11,
            end: true,
            volume: 10,
            duration: 800,
        };
        assert_eq!(e.to_bytes(), [11, 0x8A, 0x03, 0x20]);
        assert_eq!(TelephoneEvent::parse(&e.to_bytes()), Some(e));
        assert_eq!(TelephoneEvent::parse(&[1, 2, 3]), None);
    }

    #[test]
    fn rtp_dtmf_schedule_of_two_digits() {
        let ms = Duration::from_millis;
        let mut p = DtmfPlayer::new("1#", ms(100), ms(40)).unwrap();
        let mut slots = Vec::new();
        while let Some(s) = p.next_slot() {
            slots.push(s);
        }
        // Per digit: 4 updates + 3 end packets + 2 gap frames.
        assert_eq!(slots.len(), 2 * 9);
        let durations: Vec<(u16, bool, bool)> = slots[..7]
            .iter()
            .map(|s| match s {
                DtmfSlot::Event { event, first } => (event.duration, event.end, *first),
                DtmfSlot::Gap => panic!("gap inside a digit"),
            })
            .collect();
        assert_eq!(
            durations,
            [
                (160, false, true),
                (320, false, false),
                (480, false, false),
                (640, false, false),
                (800, true, false),
                (800, true, false),
                (800, true, false),
            ]
        );
        assert_eq!(slots[7], DtmfSlot::Gap);
        assert!(matches!(slots[9], DtmfSlot::Event { event, first: true } if event.event == 11));
        assert!(p.is_done());
        assert_eq!(
            DtmfPlayer::new("12x", ms(100), ms(0)).unwrap_err(),
            DtmfError { found: 'x' }
        );
    }

    #[test]
    fn rtp_dtmf_one_frame_digit_is_end_packets_only() {
        let mut p = DtmfPlayer::new("5", Duration::ZERO, Duration::ZERO).unwrap();
        let slots: Vec<_> = std::iter::from_fn(|| p.next_slot()).collect();
        assert_eq!(slots.len(), 3);
        assert!(
            matches!(slots[0], DtmfSlot::Event { event, first: true } if event.end && event.duration == 160)
        );
    }
}
