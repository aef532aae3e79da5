package build

import (
	"context"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/olmhq/olm/internal/flock"
)

// testHookLockWait, when set (by tests), is called once when lockFile finds
// the lock held and starts to wait.
var testHookLockWait func()

// lockFile takes an exclusive flock(2) on path, creating the file, and waits
// until it is free or ctx ends. flock locks belong to an open file, so two
// goroutines of one process exclude each other as two processes do, and a
// process that dies releases its locks. Call the returned function (once)
// to release the lock; it removes the file first, so nothing is left behind.
// A waiter that then gets the lock on the removed file sees that path no
// longer names it and starts again on a new file. exclusive is false on a
// file system without flock, where the caller goes on unlocked.
func lockFile(ctx context.Context, path string) (unlock func(), exclusive bool, err error) {
	waited := false
	onWait := func() {
		if !waited && testHookLockWait != nil {
			testHookLockWait()
		}
		waited = true
	}
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, false, fmt.Errorf("open lock: %w", err)
		}
		err = flock.Wait(ctx, f, unix.LOCK_EX, onWait)
		if ctx.Err() != nil {
			f.Close()
			return nil, false, ctx.Err()
		}
		if err == unix.ENOLCK || err == unix.EOPNOTSUPP || err == unix.ENOSYS {
			// A file system without flock (some network mounts): go on
			// unlocked. Unpackings stay correct (each writes its own
			// temporary file and renames it), only not deduplicated.
			return func() { f.Close() }, false, nil
		}
		if err != nil {
			f.Close()
			return nil, false, fmt.Errorf("lock %s: %w", path, err)
		}
		held, err1 := f.Stat()
		now, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(held, now) {
			return func() {
				os.Remove(path)
				unix.Flock(int(f.Fd()), unix.LOCK_UN)
				f.Close()
			}, true, nil
		}
		// The holder before us removed the file as it released it.
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}
}
