//! Borrowing the values of a CPU tensor in place, for the loops that do not go through
//! candle's ops (`decode`, `attention`).
use candle_core::{Result, Storage, StorageRef, Tensor};

/// A contiguous CPU f32 tensor's values, borrowed from its storage.
pub(crate) struct View<'a> {
    storage: StorageRef<'a>,
    start: usize,
    end: usize,
}

impl<'a> View<'a> {
    pub(crate) fn of(t: &'a Tensor) -> Result<Self> {
        let (storage, layout) = t.storage_and_layout();
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("a tensor of shape {:?} is not contiguous", t.shape());
        };
        Ok(Self {
            storage,
            start,
            end,
        })
    }

    pub(crate) fn slice(&self) -> Result<&[f32]> {
        match &*self.storage {
            Storage::Cpu(s) => Ok(&s.as_slice::<f32>()?[self.start..self.end]),
            _ => candle_core::bail!("a tensor is not on the CPU"),
        }
    }

    /// The values of `view`, or none.
    pub(crate) fn slice_or_empty<'v>(view: Option<&'v View<'_>>) -> Result<&'v [f32]> {
        view.map_or(Ok(&[]), View::slice)
    }
}
