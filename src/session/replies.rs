//! Matching server replies to the statements that caused them, so that a
//! statement's reply plan is applied to *its* CommandComplete — through
//! multi-statement queries, pipelined extended-protocol batches, portals
//! executed in pieces, and errors that make the server skip to the next
//! Sync.
//!
//! The client-to-server half pushes one [`Expect`] per message that will
//! end in a CommandComplete or ReadyForQuery, *before* forwarding it; the
//! server-to-client half feeds every server message to
//! [`ReplyTracker::on_server`]. Pure bookkeeping: no I/O.

use std::collections::VecDeque;

use crate::wire::extended::{command_complete, command_tag};
use crate::wire::{Frame, tag};

/// A change to a statement's reply: the command tag's verb is renamed,
/// keeping the count (`UPDATE 3` → `DELETE 3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagRename {
    pub from: &'static str,
    pub to: &'static str,
}

impl TagRename {
    /// Applies the rename to a CommandComplete; other tags pass unchanged.
    pub fn apply(&self, frame: Frame) -> Frame {
        let Ok(text) = command_tag(&frame) else {
            return frame;
        };
        let from = self.from.as_bytes();
        if text.len() > from.len() && text.starts_with(from) && text[from.len()] == b' ' {
            let mut renamed = self.to.as_bytes().to_vec();
            renamed.extend_from_slice(&text[from.len()..]);
            return command_complete(&renamed);
        }
        frame
    }
}

/// What the server owes for one client message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Execute: one of CommandComplete, EmptyQueryResponse,
    /// PortalSuspended or ErrorResponse; or nothing if an earlier error
    /// made the server skip to Sync.
    Execute(Option<TagRename>),
    /// Query: per statement a CommandComplete (or an ErrorResponse that
    /// ends the list), then ReadyForQuery.
    Query(VecDeque<Option<TagRename>>),
    /// Sync or FunctionCall: ReadyForQuery.
    Ready,
}

/// The server side's view of what is outstanding.
#[derive(Debug, Default)]
pub struct ReplyTracker {
    queue: VecDeque<Expect>,
}

impl ReplyTracker {
    /// Records what a message just sent to the server will be answered by.
    pub fn expect(&mut self, e: Expect) {
        self.queue.push_back(e);
    }

    /// Number of outstanding expectations (for tests and metrics).
    pub fn outstanding(&self) -> usize {
        self.queue.len()
    }

    /// Takes one server message and returns what the client gets.
    pub fn on_server(&mut self, frame: Frame) -> Frame {
        match frame.tag() {
            tag::COMMAND_COMPLETE => match self.finish_statement() {
                Some(rename) => rename.apply(frame),
                None => frame,
            },
            // EmptyQueryResponse, PortalSuspended: a statement or Execute
            // ended without a tag to change.
            b'I' | b's' => {
                self.finish_statement();
                frame
            }
            tag::ERROR_RESPONSE => {
                self.failed();
                frame
            }
            tag::READY_FOR_QUERY => {
                while let Some(e) = self.queue.pop_front() {
                    if matches!(e, Expect::Ready | Expect::Query(_)) {
                        break;
                    }
                }
                frame
            }
            _ => frame,
        }
    }

    /// The statement at the front finished; returns its rename, if any.
    fn finish_statement(&mut self) -> Option<TagRename> {
        match self.queue.front_mut() {
            Some(Expect::Execute(plan)) => {
                let plan = *plan;
                self.queue.pop_front();
                plan
            }
            Some(Expect::Query(plans)) => plans.pop_front().flatten(),
            _ => None,
        }
    }

    /// An ErrorResponse: the failing Execute and every Execute after it up
    /// to the next Sync are skipped by the server; in a Query, the rest of
    /// its statements are.
    fn failed(&mut self) {
        match self.queue.front_mut() {
            Some(Expect::Query(plans)) => plans.clear(),
            Some(Expect::Execute(_)) => {
                while matches!(self.queue.front(), Some(Expect::Execute(_))) {
                    self.queue.pop_front();
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOFT: Option<TagRename> = Some(TagRename {
        from: "UPDATE",
        to: "DELETE",
    });

    fn cc(t: &str) -> Frame {
        command_complete(t.as_bytes())
    }
    fn tag_of(f: &Frame) -> String {
        String::from_utf8_lossy(command_tag(f).unwrap()).into_owned()
    }
    fn error() -> Frame {
        Frame::new(b'E', b"SERROR\0C23503\0Mx\0\0")
    }
    fn ready() -> Frame {
        Frame::new(b'Z', b"I")
    }

    #[test]
    fn rename_keeps_the_count_and_ignores_other_verbs() {
        let r = SOFT.unwrap();
        assert_eq!(tag_of(&r.apply(cc("UPDATE 17"))), "DELETE 17");
        assert_eq!(tag_of(&r.apply(cc("SELECT 1"))), "SELECT 1");
        assert_eq!(tag_of(&r.apply(cc("UPDATED 1"))), "UPDATED 1");
    }

    #[test]
    fn multi_statement_query_applies_each_plan_to_its_statement() {
        let mut t = ReplyTracker::default();
        t.expect(Expect::Query([None, SOFT, None].into()));
        assert_eq!(tag_of(&t.on_server(cc("UPDATE 2"))), "UPDATE 2");
        assert_eq!(tag_of(&t.on_server(cc("UPDATE 5"))), "DELETE 5");
        assert_eq!(tag_of(&t.on_server(cc("UPDATE 1"))), "UPDATE 1");
        t.on_server(ready());
        assert_eq!(t.outstanding(), 0);
    }

    #[test]
    fn error_in_a_query_drops_its_remaining_plans() {
        let mut t = ReplyTracker::default();
        t.expect(Expect::Query([None, SOFT].into()));
        t.expect(Expect::Query([SOFT].into()));
        t.on_server(error());
        t.on_server(ready());
        assert_eq!(tag_of(&t.on_server(cc("UPDATE 4"))), "DELETE 4");
        t.on_server(ready());
        assert_eq!(t.outstanding(), 0);
    }

    #[test]
    fn pipeline_with_an_error_skips_to_sync() {
        let mut t = ReplyTracker::default();
        // Batch 1: Execute(plain), Execute(soft, fails), Execute(soft, skipped), Sync.
        t.expect(Expect::Execute(None));
        t.expect(Expect::Execute(SOFT));
        t.expect(Expect::Execute(SOFT));
        t.expect(Expect::Ready);
        // Batch 2: Execute(soft), Sync.
        t.expect(Expect::Execute(SOFT));
        t.expect(Expect::Ready);
        assert_eq!(tag_of(&t.on_server(cc("UPDATE 1"))), "UPDATE 1");
        t.on_server(error());
        t.on_server(ready());
        assert_eq!(tag_of(&t.on_server(cc("UPDATE 9"))), "DELETE 9");
        t.on_server(ready());
        assert_eq!(t.outstanding(), 0);
    }

    #[test]
    fn suspended_portal_and_repeated_execute() {
        let mut t = ReplyTracker::default();
        t.expect(Expect::Execute(None));
        t.expect(Expect::Execute(SOFT));
        t.expect(Expect::Ready);
        t.on_server(Frame::new(b'D', b"\0\0"));
        t.on_server(Frame::new(b's', b""));
        assert_eq!(tag_of(&t.on_server(cc("UPDATE 3"))), "DELETE 3");
        t.on_server(ready());
        assert_eq!(t.outstanding(), 0);
    }

    #[test]
    fn error_from_parse_before_execute_skips_the_batch() {
        let mut t = ReplyTracker::default();
        // Parse fails; the Execute after it is skipped by the server.
        t.expect(Expect::Execute(SOFT));
        t.expect(Expect::Ready);
        t.expect(Expect::Execute(None));
        t.expect(Expect::Ready);
        t.on_server(error());
        t.on_server(ready());
        assert_eq!(tag_of(&t.on_server(cc("UPDATE 2"))), "UPDATE 2");
        t.on_server(ready());
        assert_eq!(t.outstanding(), 0);
    }

    #[test]
    fn asynchronous_messages_change_nothing() {
        let mut t = ReplyTracker::default();
        t.expect(Expect::Execute(SOFT));
        t.on_server(Frame::new(b'N', b"SNOTICE\0Mhi\0\0"));
        t.on_server(Frame::new(b'A', b"\0\0\0\x01c\0p\0"));
        t.on_server(Frame::new(b'S', b"TimeZone\0UTC\0"));
        assert_eq!(tag_of(&t.on_server(cc("UPDATE 1"))), "DELETE 1");
    }
}
