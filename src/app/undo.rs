//! Undo and redo over small snapshots (egui's `Undoer` idea: changes close in time form one
//! step). A snapshot holds the draft, the running preset and the session with only its latest
//! record, never the history: undo joins the history the window kept up to the snapshot's
//! step to it, and the steps after it go with the redo entry. Only a change that throws the
//! history away (a rebuild, a load, a reset) moves it into its snapshot, and only the newest
//! [`KEPT_HISTORIES`] snapshots keep one.

use std::hash::{BuildHasher, BuildHasherDefault};
use std::path::PathBuf;

use crate::core::experiment::StepRecord;
use crate::preset::{DataRoot, Preset};
use crate::session::Session;

/// Undo steps kept.
pub const UNDO_DEPTH: usize = 64;
/// Snapshots that may hold a history thrown away by a rebuild, load or reset.
pub const KEPT_HISTORIES: usize = 4;
/// Changes of one widget within this many seconds form one undo step.
const GROUP_SECONDS: f64 = 0.7;

/// The lab as it was before a change (or after it, on the redo stack).
#[derive(Clone)]
pub struct Snapshot {
    /// The preset the controls edit.
    pub draft: Preset,
    /// The preset the session ran.
    pub running: Preset,
    /// The session, its history cut to its latest record unless it was thrown away after.
    pub session: Session,
    /// Where relative CSV paths resolved.
    pub root: DataRoot,
    /// The file Save wrote to.
    pub path: Option<PathBuf>,
}

/// The window's parts a snapshot restores, borrowed.
pub struct Current<'a> {
    /// The preset the controls edit.
    pub draft: &'a mut Preset,
    /// The preset the session runs.
    pub running: &'a mut Preset,
    /// The session.
    pub session: &'a mut Session,
    /// Where relative CSV paths resolve.
    pub root: &'a mut DataRoot,
    /// The file Save writes to.
    pub path: &'a mut Option<PathBuf>,
}

impl Snapshot {
    /// Bytes this snapshot holds on the heap of its own (data shared with the window's
    /// session, such as the points, are not counted).
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.session.experiment().owned_heap_bytes() + preset_heap_bytes(&self.draft) + preset_heap_bytes(&self.running)
    }
}

/// A generous estimate of a preset's heap (its RON text's length bounds its numbers' storage
/// from below; inline data dominate when present).
fn preset_heap_bytes(p: &Preset) -> usize {
    crate::preset::to_ron(p).len() * 2
}

/// Both stacks and the grouping of continuous changes.
#[derive(Default)]
pub struct UndoStack {
    undo: Vec<Snapshot>,
    redo: Vec<Snapshot>,
    last_change: Option<(u64, f64)>,
}

impl UndoStack {
    /// Undo steps available.
    #[must_use]
    pub fn undo_depth(&self) -> usize {
        self.undo.len()
    }

    /// Redo steps available.
    #[must_use]
    pub fn redo_depth(&self) -> usize {
        self.redo.len()
    }

    /// The newest undo snapshot (tests).
    #[must_use]
    pub fn latest(&self) -> Option<&Snapshot> {
        self.undo.last()
    }

    /// Records `snapshot` before a change made by the widget (or action) `key` at time `now`
    /// (seconds), unless it continues the previous change of the same widget. A new change
    /// clears the redo stack. Returns whether a snapshot was taken.
    pub fn before_change(&mut self, key: impl std::hash::Hash, now: f64, snapshot: impl FnOnce() -> Snapshot) -> bool {
        let id = BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(key);
        let continuing = self
            .last_change
            .is_some_and(|(last, t)| last == id && now - t < GROUP_SECONDS);
        self.last_change = Some((id, now));
        if continuing {
            return false;
        }
        self.undo.push(snapshot());
        if self.undo.len() > UNDO_DEPTH {
            self.undo.remove(0);
        }
        self.redo.clear();
        true
    }

    /// The history of the run the newest snapshot was taken from, which a rebuild, load or
    /// reset is about to throw away: it joins that snapshot, so undo brings it back.
    pub fn keep_history(&mut self, lineage: u64, history: Vec<StepRecord>) {
        if let Some(top) = self.undo.last_mut()
            && top.session.experiment().lineage() == lineage
        {
            top.session.experiment_mut().prepend_history(history);
        }
        let holding: Vec<usize> = (0..self.undo.len())
            .rev()
            .filter(|&i| self.undo[i].session.experiment().trace().len() > 1)
            .collect();
        for &i in holding.iter().skip(KEPT_HISTORIES) {
            let e = self.undo[i].session.experiment_mut();
            let latest = e.latest().step;
            drop(e.take_history_before(latest));
        }
    }

    /// The session took steps: what undo took back can no longer be redone on top of them (the
    /// histories would interleave), as after any new change.
    pub fn stepped(&mut self) {
        self.redo.clear();
    }

    /// The document was saved under `to` (Save As): undo states that were saved as `from` save
    /// to `to` too; those of other files (before a load) keep theirs.
    pub fn moved(&mut self, from: Option<&std::path::Path>, to: &std::path::Path) {
        for s in self.undo.iter_mut().chain(self.redo.iter_mut()) {
            if s.path.as_deref() == from {
                s.path = Some(to.to_path_buf());
            }
        }
    }

    /// Swaps `current` for the newest undo snapshot; `current` goes onto the redo stack.
    /// Returns `false` (changing nothing) when there is nothing to undo.
    pub fn undo(&mut self, current: Current<'_>) -> bool {
        let Some(mut target) = self.undo.pop() else {
            return false;
        };
        swap(current, &mut target);
        self.redo.push(target);
        self.last_change = None;
        true
    }

    /// Swaps `current` for the newest redo entry; `current` goes back onto the undo stack.
    /// Returns `false` when there is nothing to redo.
    pub fn redo(&mut self, current: Current<'_>) -> bool {
        let Some(mut target) = self.redo.pop() else {
            return false;
        };
        swap(current, &mut target);
        self.undo.push(target);
        self.last_change = None;
        true
    }
}

/// Puts `target` in place of `current`, leaving what was there in `target`. Within one run's
/// line of steps the records before the target's first one move over with it, so neither side
/// copies the history: an undo target holds one record, the one it restores, and receives those
/// before; the side left behind keeps the records from there on (what a redo brings back).
fn swap(current: Current<'_>, target: &mut Snapshot) {
    std::mem::swap(current.draft, &mut target.draft);
    std::mem::swap(current.running, &mut target.running);
    std::mem::swap(current.session, &mut target.session);
    std::mem::swap(current.root, &mut target.root);
    std::mem::swap(current.path, &mut target.path);
    let (now, before) = (current.session, &mut target.session);
    if now.experiment().lineage() == before.experiment().lineage() {
        let first = now.experiment().trace()[0].step;
        let earlier = before.experiment_mut().take_history_before(first);
        now.experiment_mut().prepend_history(earlier);
    }
}
