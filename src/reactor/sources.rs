//! I/O sources: the slab of registered descriptors and their handlers, the
//! tokens that name them, and the dispatch of one event.
//!
//! A token is a slab key: the slot's index in its low bits, the slot's
//! generation above them. When a source is unregistered its slot's
//! generation moves on, so an event still queued for it, or a stale token
//! held somewhere, never reaches the source that later reuses the slot.

use std::any::{Any, TypeId};
use std::io;
use std::os::fd::RawFd;

use super::failure::{guarded, Failure, Origin};
use super::slab::Slab;
use super::Context;
use crate::{Event, Token};

/// A handler that gets the event only.
pub(crate) type IoFn = Box<dyn FnMut(&mut Context, Event) -> io::Result<()>>;
/// A handler that also gets the object registered with the source, as
/// `&mut dyn Any` of the type it was written for.
pub(crate) type OwnedFn = Box<dyn FnMut(&mut Context, &mut dyn Any, Event) -> io::Result<()>>;

/// Bits of a token that hold the slab index; the rest hold the generation.
const INDEX_BITS: u32 = if usize::BITS >= 64 { 32 } else { 20 };
const INDEX_MASK: usize = (1 << INDEX_BITS) - 1;
pub(crate) const GENERATION_MASK: u32 = (usize::MAX >> INDEX_BITS) as u32;
/// The most slots the source slab hands out: one short of `INDEX_MASK`,
/// which [`SIGNAL_TOKEN`] takes.
pub(crate) const MAX_SOURCES: u32 = INDEX_MASK as u32;
/// The reactor's own token for its signalfd: an index the slab never hands
/// out, generation 0. Distinct from [`Token::RESERVED`], whose generation
/// bits are all ones.
pub(crate) const SIGNAL_TOKEN: Token = Token(INDEX_MASK);

pub(crate) fn encode(index: u32, generation: u32) -> Token {
    Token(((generation & GENERATION_MASK) as usize) << INDEX_BITS | index as usize)
}

pub(crate) fn decode(token: Token) -> (u32, u32) {
    (
        (token.0 & INDEX_MASK) as u32,
        (token.0 >> INDEX_BITS) as u32 & GENERATION_MASK,
    )
}

/// What runs when a source is ready.
pub(crate) enum Handler {
    Plain(IoFn),
    Owned(OwnedFn),
}

/// Wraps a handler written for an object of type `S` so that it takes the
/// object as `&mut dyn Any`.
pub(crate) fn owned_handler<S, F>(mut handler: F) -> Handler
where
    S: 'static,
    F: FnMut(&mut Context, &mut S, Event) -> io::Result<()> + 'static,
{
    Handler::Owned(Box::new(move |ctx, object, event| {
        match object.downcast_mut::<S>() {
            Some(object) => handler(ctx, object, event),
            // modify_owned checks the type before installing a handler.
            None => Err(io::Error::new(
                io::ErrorKind::Other,
                "the source's object is not of the handler's type",
            )),
        }
    }))
}

/// A registered descriptor.
pub(crate) struct Source {
    pub(crate) fd: RawFd,
    /// Out of the slot while the handler runs.
    pub(crate) handler: Option<Handler>,
    /// What [`register_owned`](Context::register_owned) was given, dropped
    /// (closing the descriptor) after the poller stopped watching it. Out of
    /// the slot while an [`Handler::Owned`] runs.
    pub(crate) object: Option<Box<dyn Any>>,
    /// The type of `object`, kept while the object is out.
    pub(crate) object_type: Option<TypeId>,
}

/// The slab of sources.
pub(crate) fn new_slab() -> Slab<Source> {
    Slab::new(MAX_SOURCES, GENERATION_MASK)
}

impl Context {
    /// Runs the handler `event` is for, if its source is still registered.
    /// A handler that fails loses its source and is reported. Returns how
    /// many handlers ran.
    #[inline(always)]
    pub(crate) fn dispatch_io(&mut self, event: Event) -> usize {
        let token = event.token();
        let (index, generation) = decode(token);
        let Some(source) = self.sources.get_mut(index, generation) else {
            return 0; // unregistered since the wait: a stale event
        };
        let fd = source.fd;
        let origin = Origin::Source { fd, token };
        match source.handler.take() {
            Some(Handler::Plain(mut f)) => {
                let result = guarded(origin, || f(self, event));
                self.after_call(index, generation, origin, result, Handler::Plain(f), None);
            }
            Some(Handler::Owned(mut f)) => {
                let Some(mut object) = source.object.take() else {
                    // An owned handler always has its object (it is only out
                    // while that handler runs).
                    source.handler = Some(Handler::Owned(f));
                    return 0;
                };
                let result = guarded(origin, || f(self, &mut *object, event));
                let handler = Handler::Owned(f);
                self.after_call(index, generation, origin, result, handler, Some(object));
            }
            // Out only while it runs, and no turn runs inside a callback.
            None => return 0,
        }
        1
    }

    #[inline]
    fn after_call(
        &mut self,
        index: u32,
        generation: u32,
        origin: Origin,
        result: Result<(), Failure>,
        handler: Handler,
        object: Option<Box<dyn Any>>,
    ) {
        match result {
            Ok(()) => self.put_back(index, generation, origin, handler, object),
            Err(failure) => self.lose(origin, failure, handler, object),
        }
    }

    /// A handler failed: its source goes, and the failure is queued.
    #[cold]
    #[inline(never)]
    fn lose(
        &mut self,
        origin: Origin,
        failure: Failure,
        handler: Handler,
        object: Option<Box<dyn Any>>,
    ) {
        self.fail(failure);
        if let Origin::Source { token, .. } = origin {
            // Gone from the poller either way: an error here is only the
            // source's own.
            let _ = self.unregister(token);
        }
        self.drop_guarded(origin, handler);
        self.drop_guarded(origin, object);
    }

    /// Puts a handler (and the object it was given) back in its slot after
    /// it ran. A handler that unregistered its source, or replaced itself,
    /// is dropped instead; so is an object whose source is gone.
    #[inline]
    fn put_back(
        &mut self,
        index: u32,
        generation: u32,
        origin: Origin,
        handler: Handler,
        object: Option<Box<dyn Any>>,
    ) {
        let Some(source) = self.sources.get_mut(index, generation) else {
            self.drop_guarded(origin, handler);
            self.drop_guarded(origin, object);
            return;
        };
        if object.is_some() {
            source.object = object;
        }
        if source.handler.is_none() {
            source.handler = Some(handler);
        } else {
            self.drop_guarded(origin, handler);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_avoid_reserved_ones() {
        for (index, generation) in [(0, 0), (1, 7), (MAX_SOURCES - 1, GENERATION_MASK)] {
            let token = encode(index, generation);
            assert_eq!(decode(token), (index, generation));
            assert_ne!(token, Token::RESERVED);
            assert_ne!(token, SIGNAL_TOKEN);
        }
        assert_ne!(SIGNAL_TOKEN, Token::RESERVED);
    }
}
