//! Type erasure of processors: a [`Node`] takes raw bytes and decodes them for its typed
//! processor.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::processor::{Context, Processor, Punctuation};
use crate::shared_decode::DecodeCache;
use crate::{DecodeError, ProcessError};

/// Decoder from a source topic's value bytes to a processor input (with the record's
/// shared decodes, see [`crate::SharedDecoder`]).
pub(crate) type Decoder<I> =
    Arc<dyn Fn(&[u8], &mut DecodeCache) -> Result<I, DecodeError> + Send + Sync>;

/// A processor with its decoders, behind a trait object.
pub(crate) trait Node: Send {
    fn init(&mut self, ctx: &mut Context<'_>) -> Result<(), ProcessError>;
    fn process(
        &mut self,
        ctx: &mut Context<'_>,
        topic: &str,
        key: &str,
        value: &[u8],
        decoded: &mut DecodeCache,
    ) -> Result<(), ProcessError>;
    fn punctuate(&mut self, ctx: &mut Context<'_>, p: &Punctuation<'_>)
        -> Result<(), ProcessError>;
    fn flush(&mut self, ctx: &mut Context<'_>) -> Result<(), ProcessError>;
    fn recover(
        &mut self,
        ctx: &mut Context<'_>,
        key: &str,
        value: &[u8],
    ) -> Result<(), ProcessError>;
}

pub(crate) struct TypedNode<P: Processor> {
    pub processor: P,
    pub decoders: FxHashMap<String, Decoder<P::Input>>,
}

impl<P: Processor> Node for TypedNode<P> {
    fn init(&mut self, ctx: &mut Context<'_>) -> Result<(), ProcessError> {
        self.processor.init(ctx)
    }

    fn process(
        &mut self,
        ctx: &mut Context<'_>,
        topic: &str,
        key: &str,
        value: &[u8],
        decoded: &mut DecodeCache,
    ) -> Result<(), ProcessError> {
        let decoder = self
            .decoders
            .get(topic)
            .ok_or_else(|| ProcessError::Failed(format!("no decoder for topic `{topic}`")))?;
        let input = decoder(value, decoded)?;
        self.processor.process(ctx, key, input)
    }

    fn punctuate(
        &mut self,
        ctx: &mut Context<'_>,
        p: &Punctuation<'_>,
    ) -> Result<(), ProcessError> {
        self.processor.punctuate(ctx, p)
    }

    fn flush(&mut self, ctx: &mut Context<'_>) -> Result<(), ProcessError> {
        self.processor.flush(ctx)
    }

    fn recover(
        &mut self,
        ctx: &mut Context<'_>,
        key: &str,
        value: &[u8],
    ) -> Result<(), ProcessError> {
        self.processor.recover(ctx, key, value)
    }
}
