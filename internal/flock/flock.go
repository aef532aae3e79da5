// Package flock waits for flock(2) locks in a way a context can end.
//
// flock has no wait with a deadline, so a blocked attempt is retried every
// Poll. Locks belong to an open file: two opens of one file exclude each
// other within a process as between processes, and a process that dies
// releases its locks.
package flock

import (
	"context"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Poll is how often a blocked attempt is retried.
const Poll = 20 * time.Millisecond

// Wait takes the lock of kind how (unix.LOCK_SH or unix.LOCK_EX) on f and
// waits until it is free or ctx ends (then it returns ctx.Err()). onWait, if
// not nil, is called once when the lock is found held. Any other failure is
// flock's own error (such as unix.ENOLCK on a file system without locks),
// for the caller to judge.
func Wait(ctx context.Context, f *os.File, how int, onWait func()) error {
	waited := false
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err != unix.EWOULDBLOCK && err != unix.EINTR {
			return err
		}
		if !waited && onWait != nil {
			onWait()
		}
		waited = true
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(Poll):
		}
	}
}
