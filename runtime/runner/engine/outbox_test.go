package engine

import (
	"context"
	"testing"
	"time"
)

// TestOutboxLinger: a reader lingering for more events wakes when the
// outbox closes or its context ends, not only when the time is up.
func TestOutboxLinger(t *testing.T) {
	o := newOutbox[int]()
	var tm *time.Timer
	go func() {
		o.push(1)
		o.push(2)
		o.close()
	}()
	o.linger(context.Background(), time.Hour, &tm) // a hang here is the failure
	evs, done, err := o.next(context.Background())
	if err != nil || !done || len(evs) != 2 {
		t.Fatalf("next after close: %v %v %v", evs, done, err)
	}
	o.close() // idempotent

	o = newOutbox[int]()
	ctx, cancel := context.WithCancel(context.Background())
	go cancel()
	o.linger(ctx, time.Hour, &tm)
	if _, _, err := o.next(ctx); err == nil {
		t.Fatal("next on a cancelled context returned no error")
	}
	o.push(3)
	o.linger(context.Background(), time.Millisecond, &tm) // the timer is reused
	if evs, done, _ := o.next(context.Background()); len(evs) != 1 || done {
		t.Fatalf("next = %v %v", evs, done)
	}
}
