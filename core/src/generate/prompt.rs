//! A chat turn rendered into the arena: its text, and where the template's
//! markers are in it.

use core::fmt;
use core::ops::Range;

use crate::chat::ChatSink;

/// Most markers one rendered turn holds (a system turn, a user turn and the
/// generation prompt take five; [`ChatTemplate::render_next`] four).
///
/// [`ChatTemplate::render_next`]: crate::chat::ChatTemplate::render_next
const MAX_MARKERS: usize = 8;

/// A [`ChatSink`] writing into a fixed buffer. Text past its end is
/// counted, not written, so the caller can say how long the turn was.
pub(super) struct Rendered<'b> {
    buf: &'b mut [u8],
    /// Bytes the rendering produced (written or not).
    len: usize,
    markers: heapless::Vec<Range<usize>, MAX_MARKERS>,
}

impl<'b> Rendered<'b> {
    pub(super) fn new(buf: &'b mut [u8]) -> Rendered<'b> {
        Rendered {
            buf,
            len: 0,
            markers: heapless::Vec::new(),
        }
    }

    /// Bytes the rendering produced.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The text and its markers, if the text fitted.
    pub(super) fn parts(&self) -> Option<(&[u8], &[Range<usize>])> {
        Some((self.buf.get(..self.len)?, &self.markers))
    }

    fn push(&mut self, s: &str) -> Range<usize> {
        let start = self.len;
        self.len = self.len.saturating_add(s.len());
        if let Some(dst) = self.buf.get_mut(start..self.len) {
            dst.copy_from_slice(s.as_bytes());
        }
        start..self.len
    }
}

impl ChatSink for Rendered<'_> {
    fn marker(&mut self, marker: &'static str) -> fmt::Result {
        let at = self.push(marker);
        self.markers.push(at).map_err(|_| fmt::Error)
    }

    fn text(&mut self, text: &str) -> fmt::Result {
        self.push(text);
        Ok(())
    }
}
