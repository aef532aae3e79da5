package engine

import (
	"context"
	"sync"
	"time"
)

// outbox carries events from the decode loop to one request's HTTP
// handler. push never blocks, so a slow client cannot stall the loop for
// the other slots.
type outbox[T any] struct {
	mu     sync.Mutex
	queue  []T
	closed bool
	signal chan struct{} // capacity 1: "something changed"
	done   chan struct{} // closed by close
}

func newOutbox[T any]() *outbox[T] {
	return &outbox[T]{signal: make(chan struct{}, 1), done: make(chan struct{})}
}

// push queues ev for the reader.
func (o *outbox[T]) push(ev T) {
	o.mu.Lock()
	o.queue = append(o.queue, ev)
	o.mu.Unlock()
	o.notify()
}

// close marks the end of the events.
func (o *outbox[T]) close() {
	o.mu.Lock()
	if !o.closed {
		o.closed = true
		close(o.done)
	}
	o.mu.Unlock()
	o.notify()
}

func (o *outbox[T]) notify() {
	select {
	case o.signal <- struct{}{}:
	default:
	}
}

// next waits for queued events and returns them; done reports that the
// outbox is closed and no more events will come.
func (o *outbox[T]) next(ctx context.Context) (evs []T, done bool, err error) {
	for {
		o.mu.Lock()
		evs, o.queue = o.queue, nil
		done = o.closed
		o.mu.Unlock()
		if len(evs) > 0 || done {
			return evs, done, nil
		}
		select {
		case <-o.signal:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// linger waits until the outbox is closed, ctx ends or d has passed,
// without waking for each push: the reader lets events pile up to send
// them together. tm is the caller's timer, created on first use.
func (o *outbox[T]) linger(ctx context.Context, d time.Duration, tm **time.Timer) {
	if *tm == nil {
		*tm = time.NewTimer(d)
	} else {
		(*tm).Reset(d)
	}
	select {
	case <-(*tm).C:
	case <-o.done:
		(*tm).Stop()
	case <-ctx.Done():
		(*tm).Stop()
	}
}
