package flock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestWait(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	open := func() *os.File {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	a, b, c := open(), open(), open()
	if err := Wait(context.Background(), a, unix.LOCK_SH, nil); err != nil {
		t.Fatal(err)
	}
	if err := Wait(context.Background(), b, unix.LOCK_SH, nil); err != nil {
		t.Fatalf("a second shared lock: %v", err)
	}

	// An exclusive lock waits for both shared ones; cancelling ends the wait.
	ctx, cancel := context.WithCancel(context.Background())
	waiting := make(chan struct{})
	done := make(chan error)
	go func() { done <- Wait(ctx, c, unix.LOCK_EX, func() { close(waiting) }) }()
	<-waiting
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}

	// Once the shared holders let go, the exclusive lock is taken.
	go func() { done <- Wait(context.Background(), c, unix.LOCK_EX, nil) }()
	unix.Flock(int(a.Fd()), unix.LOCK_UN)
	b.Close()
	if err := <-done; err != nil {
		t.Fatalf("exclusive lock after release: %v", err)
	}
}
