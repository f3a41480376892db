//! Taking a lock whose holder panicked.
//!
//! The runtime's locks guard maps, caches and counters that each critical
//! section updates in one step, and no handler code runs under them; a
//! panic elsewhere on the holding thread (a handler's is caught, see
//! `service::runner::handler`) leaves their data whole. A poisoned lock is
//! therefore taken as it is, rather than failing every later call of a
//! service that is otherwise sound. The examples, the monitor and the
//! chaos harness take their locks the same way, through this trait.

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A [`Mutex`] taken even when poisoned (see the module's docs).
pub trait Recover<T: ?Sized> {
    /// Locks, taking a poisoned lock's data as it is.
    fn locked(&self) -> MutexGuard<'_, T>;
}

impl<T: ?Sized> Recover<T> for Mutex<T> {
    fn locked(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// [`Recover`] for a [`RwLock`]'s two sides.
pub trait RecoverRw<T: ?Sized> {
    /// Read-locks, taking a poisoned lock's data as it is.
    fn read_locked(&self) -> RwLockReadGuard<'_, T>;
    /// Write-locks, taking a poisoned lock's data as it is.
    fn write_locked(&self) -> RwLockWriteGuard<'_, T>;
}

impl<T: ?Sized> RecoverRw<T> for RwLock<T> {
    fn read_locked(&self) -> RwLockReadGuard<'_, T> {
        self.read().unwrap_or_else(PoisonError::into_inner)
    }
    fn write_locked(&self) -> RwLockWriteGuard<'_, T> {
        self.write().unwrap_or_else(PoisonError::into_inner)
    }
}
